"""Benchmark: what one training image costs (forward + backward + Adam step) for `--arch conv` and `--arch resnet`
(each with its defaults for the size) at 32, 64 and 128 pixels, RGB, with the logistic likelihood.

Both architectures are measured in one invocation, taking turns `--rounds` times so that they see the same
machine load; the table gives the median images/s, the milliseconds per image and resnet's cost as a multiple of
conv's at the same size (the ratio is what carries over to another machine). Random images: speed does not depend
on what they show. Parameters are counted on the built models.

    python bench/resnet_cost.py [--sizes 32,64,128] [--batch 32] [--steps 3] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vaelab.losses import batch_sums
from vaelab.models import VAE, VAEConfig


def step_rate(model: VAE, images: torch.Tensor, steps: int) -> float:
    """Training images per second over `steps` optimizer steps (after one warm-up step)."""
    optimizer = torch.optim.Adam(model.parameters())

    def step() -> None:
        out = model(images)
        sums = batch_sums(model.likelihood, out.output, images, out.posterior, model.log_sigma)
        ((sums["recon"] + sums["kl"]) / images.shape[0]).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * images.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,64,128")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--likelihood", default="logistic")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, likelihood {args.likelihood}")
    print("| size | arch | width / blocks (or channels) | parameters | images/s | ms / image | x conv |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for side in [int(s) for s in args.sizes.split(",")]:
        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (args.batch, 3, side, side), generator=generator).float() / 255
        models = {
            arch: VAE(VAEConfig(shape=(3, side, side), arch=arch, likelihood=args.likelihood))
            for arch in ("conv", "resnet")
        }
        rates: dict[str, list[float]] = {arch: [] for arch in models}
        for _ in range(args.rounds):  # turns: both see the same load
            for arch, model in models.items():
                rates[arch].append(step_rate(model, images, args.steps))
        conv = statistics.median(rates["conv"])
        for arch, model in models.items():
            c = model.config
            shape = f"{c.width} / {c.blocks}" if arch == "resnet" else ",".join(map(str, c.channels))
            rate = statistics.median(rates[arch])
            params = sum(p.numel() for p in model.parameters())
            print(
                f"| {side} | {arch} | {shape} | {params / 1e6:.2f} M | {rate:.1f} | {1000 / rate:.1f} "
                f"| {conv / rate:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
