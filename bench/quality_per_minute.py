"""Benchmark: the test NLL each contender reaches in the same wall-clock budget on mnist-mini.

Each contender trains from scratch for whole epochs while the next epoch still fits in the budget (20 s and
60 s by default), then its test NLL is measured the same way for all: IWAE with k = 1000 on the 2,000 test
images binarized with a fixed seed (the binarized-MNIST protocol; nats per image, lower is better). Contenders
take turns for each seed and budget, so they see the same machine.

- `recipe`: the pytorch/examples VAE recipe: an MLP 784-400-20, batch 128, Adam lr 1e-3, a DataLoader that
  converts one image at a time, binary cross-entropy on the grey levels (its published training data).
- `vaelab`: `vaelab train` with every option at its default (grey-level targets, like the recipe; `--variant
  bin:binarize=true` trains on dynamically binarized images instead).
- further contenders: `--variant NAME:option=value,option=value` (vaelab options, e.g. `b256:batch_size=256`).

    python bench/quality_per_minute.py [--budgets 20,60] [--seeds 3] [--variant b256:batch_size=256] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from vaelab import data, kinds, threads
from vaelab.device import World
from vaelab.evaluate.iwae import iwae_log_likelihood
from vaelab.evaluate.likelihood import binarized
from vaelab.kinds.base import networks
from vaelab.models import VAE
from vaelab.training.loop import train_epoch

CPU = torch.device("cpu")


class PerItemImages(Dataset):
    """The recipe's data: one image at a time, converted from uint8 to float on each access."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index].to(torch.float32).div(255.0)


class Recipe:
    """The pytorch/examples VAE, built as a vaelab VAE of the same layers so that one estimator measures both."""

    def __init__(self, dataset: data.Dataset, seed: int):
        torch.manual_seed(seed)
        config = kinds.make_config({"hidden": [400], "latent_dim": 20, "quiet": True})
        self.model = VAE(networks(config, dataset.shape))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(seed)
        self.loader = DataLoader(PerItemImages(dataset.train.images), batch_size=128, shuffle=True, generator=generator)

    def epoch(self) -> None:
        self.model.train()
        for x in self.loader:
            self.optimizer.zero_grad()
            out = self.model(x)
            bce = F.binary_cross_entropy_with_logits(out.output, x, reduction="sum")
            mu, logvar = out.posterior.mean, out.posterior.logvar
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            ((bce + kl) / x.shape[0]).backward()
            self.optimizer.step()


class Vaelab:
    """vaelab's own trainer and loop (the ones `vaelab train` runs)."""

    def __init__(self, dataset: data.Dataset, seed: int, **options):
        self.config = kinds.make_config({"quiet": True, "seed": seed, **options})
        threads.govern(self.config.threads)
        torch.manual_seed(seed)
        self.trainer = kinds.get(self.config.kind).trainer(self.config, dataset.shape, CPU, World())
        self.model = self.trainer.model
        self.order = torch.Generator().manual_seed(seed)
        self.noise = torch.Generator().manual_seed(seed + 1)
        self.images, self.done = dataset.train.images, 0

    def epoch(self) -> None:
        self.done += 1
        train_epoch(self.trainer, self.images, None, self.config, self.done, self.order, self.noise, World(), CPU)


def within_budget(contender, budget: float) -> tuple[int, float]:
    """Whole epochs while the next one (as long as the last) still fits; returns (epochs, seconds)."""
    start = time.perf_counter()
    epochs, last = 0, 0.0
    while time.perf_counter() - start + last <= budget:
        began = time.perf_counter()
        contender.epoch()
        last = time.perf_counter() - began
        epochs += 1
    return epochs, time.perf_counter() - start


def variant(text: str) -> tuple[str, dict]:
    name, _, options = text.partition(":")
    values = {}
    for pair in filter(None, options.split(",")):
        key, _, value = pair.partition("=")
        values[key] = json.loads(value) if value[:1] in "[0123456789-" or value in ("true", "false") else value
    return name, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="20,60", help="seconds, comma-separated")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--variant", action="append", default=[], help="NAME:option=value,... (vaelab options)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    dataset = data.load("mnist-mini")
    test = binarized(dataset.test.images, 0)
    makers = {"recipe": lambda seed: Recipe(dataset, seed), "vaelab": lambda seed: Vaelab(dataset, seed)}
    for text in args.variant:
        name, options = variant(text)
        makers[name] = lambda seed, options=options: Vaelab(dataset, seed, **options)
    budgets = [float(b) for b in args.budgets.split(",")]
    results: dict[str, dict[str, list[dict]]] = {name: {f"{b:g}": [] for b in budgets} for name in makers}
    for budget in budgets:
        for seed in range(args.seeds):
            for name, make in makers.items():
                contender = make(seed)
                epochs, seconds = within_budget(contender, budget)
                model = contender.model.eval()
                nll = float(-iwae_log_likelihood(model, test, k=args.k, seed=0).mean())
                results[name][f"{budget:g}"].append({"seed": seed, "epochs": epochs, "seconds": seconds, "nll": nll})
                print(f"{budget:g} s seed {seed} {name:12s} {epochs:3d} epochs  NLL {nll:7.2f}", file=sys.stderr)
    print(f"\n{'contender':14s}" + "".join(f" {f'{b:g} s: NLL':>16s} {'epochs':>7s}" for b in budgets))
    for name, by_budget in results.items():
        cells = []
        for b in budgets:
            rows = by_budget[f"{b:g}"]
            nlls = [r["nll"] for r in rows]
            spread = statistics.stdev(nlls) if len(nlls) > 1 else 0.0
            cells.append(
                f" {statistics.mean(nlls):9.2f} ± {spread:4.2f} {statistics.mean(r['epochs'] for r in rows):7.1f}"
            )
        print(f"{name:14s}" + "".join(cells))
    if args.json:
        when = datetime.datetime.now().isoformat(timespec="seconds")
        Path(args.json).write_text(
            json.dumps({"when": when, "machine": platform.platform(), "runs": results}, indent=2)
        )


if __name__ == "__main__":
    main()
