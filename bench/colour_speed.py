"""Benchmark: training images/s on 64x64 colour images, vaelab's loop against a plain PyTorch loop of the same network.

For each architecture (`conv`, today's default stack, and `resnet` with its defaults for 64 pixels) and each
likelihood (`--likelihoods`, default logistic), in one invocation, taking turns one epoch each so that both see
the same machine load:
- vaelab's trainer and loop (the ones `vaelab train` runs): whole-batch indexing of the uint8 images, the fused
  Adam, channels-last activations where the kind uses them;
- a plain loop of the same model (built by vaelab from the same options, so the same layers and the same
  likelihood): a shuffled `DataLoader` over a `TensorDataset` of float images, `torch.optim.Adam`, the loss written
  out (reconstruction log-likelihood + KL).
The images are random 64x64 RGB (speed does not depend on what they show). images/s is the median of epochs 2..E.

    python bench/colour_speed.py [--images 2048] [--epochs 4] [--likelihoods logistic,bernoulli] [--batch 64]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from vaelab import data, kinds
from vaelab.device import World
from vaelab.losses import batch_sums
from vaelab.training.loop import train_epoch

CPU = torch.device("cpu")
SHAPE = (3, 64, 64)


class Vaelab:
    def __init__(self, images: torch.Tensor, **options):
        self.config = kinds.make_config({"quiet": True, **options})
        torch.manual_seed(0)
        self.trainer = kinds.get("vae").trainer(self.config, SHAPE, CPU, World())
        self.images, self.done = images, 0
        self.order, self.noise = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)

    def epoch(self) -> None:
        self.done += 1
        train_epoch(self.trainer, self.images, None, self.config, self.done, self.order, self.noise, World(), CPU)


class Plain:
    def __init__(self, images: torch.Tensor, **options):
        config = kinds.make_config({"quiet": True, **options})
        torch.manual_seed(0)
        self.model = kinds.get("vae").trainer(config, SHAPE, CPU, World()).model  # the same layers, fresh weights
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.uint8 = images
        self.loader = DataLoader(TensorDataset(data.to_float(images)), batch_size=config.batch_size, shuffle=True)

    def epoch(self) -> None:
        self.model.train()
        for (x,) in self.loader:
            out = self.model(x)
            # the same likelihood, on the same uint8-derived floats vaelab's loss reads
            sums = batch_sums(self.model.likelihood, out.output, x, out.posterior, self.model.log_sigma)
            loss = (sums["recon"] + sums["kl"]) / x.shape[0]
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--likelihoods", default="logistic")
    parser.add_argument("--archs", default="conv,resnet")
    args = parser.parse_args()
    images = torch.randint(0, 256, (args.images, *SHAPE), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    contenders = {}
    for arch in args.archs.split(","):
        for likelihood in args.likelihoods.split(","):
            options = {"arch": arch, "likelihood": likelihood, "batch_size": args.batch}
            contenders[f"{arch} {likelihood} vaelab"] = Vaelab(images, **options)
            contenders[f"{arch} {likelihood} plain"] = Plain(images, **options)
    seconds = {name: [] for name in contenders}
    for _ in range(args.epochs):
        for name, contender in contenders.items():
            start = time.perf_counter()
            contender.epoch()
            seconds[name].append(time.perf_counter() - start)
    print(
        f"# {datetime.datetime.now():%Y-%m-%d %H:%M}, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.images} images"
    )
    print(f"{'contender':28s} {'images/s':>9s} {'vs plain':>9s}")
    for name, times in seconds.items():
        rate = args.images / statistics.median(times[1:] or times)
        plain = name.replace(" vaelab", " plain")
        ratio = statistics.median(seconds[plain][1:] or seconds[plain]) / statistics.median(times[1:] or times)
        print(f"{name:28s} {rate:9.1f} {ratio:8.2f}x")


if __name__ == "__main__":
    main()
