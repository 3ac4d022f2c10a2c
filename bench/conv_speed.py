"""Benchmark: the default convolutional VAE's training speed and quality, by memory layout and precision.

Default conv model (channels 32,64, hidden 256, latent 10), batch 128, Adam 1e-3, on `mnist-mini`. Contenders,
in one invocation, taking turns one epoch each so that all see the same machine load:
- fp32 with contiguous (NCHW) activations: vaelab 0.2.0's training step, the reference of the ratios;
- fp32 with channels-last activations (today's default);
- `--precision bf16` with contiguous activations (0.2.0's bf16) and with channels-last ones (today's bf16).
Speed: images/s, median of epochs 2..E. Share of the ceiling: images/s x the training FLOPs per image (forward and
backward, counted by torch) / the measured matmul throughput (fp32 or bf16).

Quality: each precision trains `--quality-epochs` (default 20, as `vaelab train`) for each of `--seeds` and the
test -ELBO is compared: bf16 must land within 1 nat of fp32 on the mean over seeds (the seeds' own spread is shown).

    python bench/conv_speed.py [--epochs 6] [--quality-epochs 20] [--seeds 0,1,2] [--threads 2]
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
    def __init__(self, dataset: data.Dataset, precision: str, channels_last: bool, seed: int = 0):
        self.config = kinds.make_config({"arch": "conv", "precision": precision, "seed": seed, "quiet": True})
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
        quality(dataset, args.quality_epochs, [int(s) for s in args.seeds.split(",")])


def race(dataset: data.Dataset, epochs: int) -> None:
    contenders = {
        "fp32, contiguous (0.2.0)": Contender(dataset, "fp32", channels_last=False),
        "fp32, channels-last": Contender(dataset, "fp32", channels_last=True),
        "bf16, contiguous (0.2.0)": Contender(dataset, "bf16", channels_last=False),
        "bf16, channels-last": Contender(dataset, "bf16", channels_last=True),
    }
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
    reference = statistics.median(speeds["fp32, contiguous (0.2.0)"][1:] or speeds["fp32, contiguous (0.2.0)"])
    print(f"{'contender':<26} {'images/s':>9} {'vs 0.2.0 fp32':>14} {'MFLOP/img':>10} {'of ceiling':>11}")
    for name, contender in contenders.items():
        ips = statistics.median(speeds[name][1:] or speeds[name])
        flops = contender.flops_per_image()
        share = ips * flops / ceilings[name.split(",")[0]]
        print(f"{name:<26} {ips:9.0f} {ips / reference:13.2f}x {flops / 1e6:10.2f} {share:10.1%}", flush=True)


def quality(dataset: data.Dataset, epochs: int, seeds: list[int]) -> None:
    print(f"test -ELBO after {epochs} epochs (channels-last), seeds {', '.join(map(str, seeds))}:")
    losses = {}
    for precision in ("fp32", "bf16"):
        losses[precision] = []
        for seed in seeds:
            run = Contender(dataset, precision, channels_last=True, seed=seed)
            for _ in range(epochs):
                run.epoch()
            losses[precision].append(run.test_loss())
        values = ", ".join(f"{v:.2f}" for v in losses[precision])
        print(f"  {precision}: mean {statistics.mean(losses[precision]):.2f}  ({values})", flush=True)
    print(f"  bf16 - fp32: {statistics.mean(losses['bf16']) - statistics.mean(losses['fp32']):+.2f} nats")


if __name__ == "__main__":
    main()
