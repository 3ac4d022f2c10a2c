"""Benchmark: the default convolutional VAE's training speed and quality, by kernel, memory layout and precision.

Default conv model (channels 32,64, hidden 256, latent 10), batch 128, Adam 1e-3, on `mnist-mini`. Contenders,
in one invocation, taking turns one epoch each so that all see the same machine load:
- the first release's step: kernel 4, fp32, contiguous (NCHW) activations: the reference of the ratios;
- kernel 4 in bf16 with channels-last activations (`--kernel 4 --precision bf16`, the fastest before 2026-11-30);
- kernel 3 in fp32 (`--precision fp32`) and in bf16: today's default on a CPU with bf16 units (`--precision auto`).
Speed: images/s, median of epochs 2..E. Share of the ceiling: images/s x the training FLOPs per image (forward and
backward, counted by torch) / the measured matmul throughput (fp32 or bf16).

Quality: the first release's model and today's default each train `--quality-epochs` (default 20, as
`vaelab train`) for each of `--seeds`, and their test -ELBO is compared on the mean over seeds (the seeds' own
spread is shown); `--quality-extra` adds kernel 3 in fp32.

    python bench/conv_speed.py [--epochs 6] [--quality-epochs 20] [--seeds 0,1,2] [--threads 2] [--quality-extra]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics

import torch
from torch.utils.flop_counter import FlopCounterMode
from train_speed import matmul_ceiling  # bench/ is the script's directory: on sys.path

from vaelab import data, kinds
from vaelab.device import World
from vaelab.losses import batch_sums
from vaelab.training.loop import train_epoch
from vaelab.training.split import split_terms


class Contender:
    def __init__(self, dataset: data.Dataset, precision: str, channels_last: bool, seed: int = 0, kernel: int = 3):
        options = {"arch": "conv", "precision": precision, "kernel": kernel, "seed": seed, "quiet": True}
        self.config = kinds.make_config({**options, "threads": torch.get_num_threads()})
        torch.manual_seed(seed)
        self.trainer = kinds.get("vae").trainer(self.config, dataset.shape, torch.device("cpu"), World())
        self.model = self.trainer.model
        if not channels_last:
            self.model.encoder.memory_format = self.model.decoder.memory_format = torch.contiguous_format
        self.order = torch.Generator().manual_seed(seed)
        self.noise = torch.Generator().manual_seed(seed + 1)
        self.dataset, self.done = dataset, 0

    def epoch(self) -> float:
        self.done += 1
        _, seconds = train_epoch(
            self.trainer,
            self.dataset.train.images,
            None,
            self.config,
            self.done,
            self.order,
            self.noise,
            World(),
            torch.device("cpu"),
        )
        return len(self.dataset.train) / seconds

    def test_loss(self) -> float:
        return split_terms(self.model, self.dataset.test.images, seed=123)["loss"]

    def flops_per_image(self, batch: int = 128) -> float:
        x = data.to_float(self.dataset.test.images[:batch])
        with FlopCounterMode(display=False) as counter:
            out = self.model(x)
            sums = batch_sums(self.model.likelihood, out.output, x, out.posterior, self.model.log_sigma)
            (sums["recon"] + sums["kl"]).backward()
        self.trainer.optimizers["adam"].zero_grad()
        return counter.get_total_flops() / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6, help="epochs per contender in the speed race (0: skip it)")
    parser.add_argument("--quality-epochs", type=int, default=20, help="epochs of each quality run (0: skip)")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the quality runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quality-extra", action="store_true", help="also the quality of kernel 3 in fp32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = data.load("mnist-mini")
    print(
        f"default conv VAE on mnist-mini ({len(dataset.train)} training images), batch 128, {args.threads} threads, "
        f"torch {torch.__version__}, {platform.machine()}, {datetime.date.today()}"
    )
    if args.epochs:
        race(dataset, args.epochs)
    if args.quality_epochs:
        quality(dataset, args.quality_epochs, [int(s) for s in args.seeds.split(",")], args.quality_extra)


CONTENDERS = {  # name: (precision, channels-last, kernel)
    "k4 fp32 contiguous (first)": ("fp32", False, 4),
    "k4 bf16 channels-last": ("bf16", True, 4),
    "k3 fp32 channels-last": ("fp32", True, 3),
    "k3 bf16 channels-last (today)": ("bf16", True, 3),
}
REFERENCE = "k4 fp32 contiguous (first)"


def race(dataset: data.Dataset, epochs: int) -> None:
    contenders = {name: Contender(dataset, p, cl, kernel=k) for name, (p, cl, k) in CONTENDERS.items()}
    ceilings = {"fp32": matmul_ceiling(dtype=torch.float32), "bf16": matmul_ceiling(dtype=torch.bfloat16)}
    speeds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(epochs):
        for name, contender in contenders.items():
            speeds[name].append(contender.epoch())
    ceilings = {
        "fp32": max(ceilings["fp32"], matmul_ceiling(dtype=torch.float32)),
        "bf16": max(ceilings["bf16"], matmul_ceiling(dtype=torch.bfloat16)),
    }
    print(f"matmul ceiling: fp32 {ceilings['fp32'] / 1e9:.0f} GFLOP/s, bf16 {ceilings['bf16'] / 1e9:.0f} GFLOP/s")
    reference = statistics.median(speeds[REFERENCE][1:] or speeds[REFERENCE])
    print(f"{'contender':<30} {'images/s':>9} {'vs first':>9} {'MFLOP/img':>10} {'of ceiling':>11}")
    for name, contender in contenders.items():
        ips = statistics.median(speeds[name][1:] or speeds[name])
        flops = contender.flops_per_image()
        share = ips * flops / ceilings[contender.config.precision]
        print(f"{name:<30} {ips:9.0f} {ips / reference:8.2f}x {flops / 1e6:10.2f} {share:10.1%}", flush=True)


def quality(dataset: data.Dataset, epochs: int, seeds: list[int], extra: bool) -> None:
    print(f"test -ELBO after {epochs} epochs, seeds {', '.join(map(str, seeds))}:")
    names = [REFERENCE, "k3 bf16 channels-last (today)"] + (["k3 fp32 channels-last"] if extra else [])
    losses = {}
    for name in names:
        precision, channels_last, kernel = CONTENDERS[name]
        losses[name] = []
        for seed in seeds:
            run = Contender(dataset, precision, channels_last, seed=seed, kernel=kernel)
            for _ in range(epochs):
                run.epoch()
            losses[name].append(run.test_loss())
        values = ", ".join(f"{v:.2f}" for v in losses[name])
        mean, spread = statistics.mean(losses[name]), statistics.stdev(losses[name]) if len(seeds) > 1 else 0.0
        print(f"  {name:<30} mean {mean:.2f} ± {spread:.2f}  ({values})", flush=True)
    for name in names[1:]:
        print(f"  {name} - first: {statistics.mean(losses[name]) - statistics.mean(losses[REFERENCE]):+.2f} nats")


if __name__ == "__main__":
    main()
