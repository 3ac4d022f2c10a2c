"""Sample quality at equal training time: VAE against VAE-GAN and GAN on mnist-mini.

The VAE trains for `--vae-epochs` epochs; its training seconds (the sum of its epochs' `seconds`) are
the budget that each other model then trains for, epoch by epoch. Each model's samples are then scored
with `vaelab eval`'s sample-quality numbers: FD (classifier features), precision and recall, against the
2,000 test images. Several seeds, so that the spread is visible.

    python bench/adversarial_fd.py [--vae-epochs 60] [--seeds 0,1] [--arch mlp] [--threads 2]
"""

from __future__ import annotations

import argparse
import datetime
import statistics

import torch

from vaelab import data, kinds
from vaelab.device import World
from vaelab.evaluate import sample_quality
from vaelab.training.loop import train_epoch


def train_for(config, dataset, budget_s: float | None, epochs: int | None):
    """Train in memory (no run directory) for `epochs`, or until `budget_s` training seconds are spent."""
    torch.manual_seed(config.seed)
    trainer = kinds.get(config.kind).trainer(config, dataset.shape, torch.device("cpu"), World())
    order = torch.Generator().manual_seed(config.seed)
    noise = torch.Generator().manual_seed(config.seed + 1)
    spent, epoch = 0.0, 0
    while (epochs is not None and epoch < epochs) or (budget_s is not None and spent < budget_s):
        epoch += 1
        _, seconds = train_epoch(
            trainer, dataset.train.images, None, config, epoch, order, noise, World(), torch.device("cpu")
        )
        spent += seconds
    return trainer.model.eval(), spent, epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vae-epochs", type=int, default=60)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--arch", default="mlp")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = data.load("mnist-mini")
    results: dict[str, list[dict]] = {"vae": [], "vaegan": [], "gan": []}
    for seed in [int(s) for s in args.seeds.split(",")]:
        vae, budget, _ = train_for(kinds.make_config({"arch": args.arch, "seed": seed}), dataset, None, args.vae_epochs)
        models = {"vae": (vae, budget, args.vae_epochs)}
        for kind in ("vaegan", "gan"):
            models[kind] = train_for(
                kinds.make_config({"kind": kind, "arch": args.arch, "seed": seed}), dataset, budget, None
            )
        for kind, (model, spent, epochs) in models.items():
            quality = sample_quality(model, dataset, dataset.test.images, seed, None, "cpu")
            results[kind].append({"seed": seed, "seconds": spent, "epochs": epochs, **quality.to_dict()})
            print(
                f"seed {seed} {kind:<7} {epochs:3d} epochs {spent:6.1f} s  FD {quality.fd_classifier:8.2f}  "
                f"precision {quality.precision:.3f}  recall {quality.recall:.3f}",
                flush=True,
            )
    print(
        f"\nmnist-mini, arch {args.arch}, equal training time, {args.threads} threads, torch {torch.__version__}, {datetime.date.today()}"
    )
    print(f"{'model':<8} {'FD mean':>8} {'FD per seed':>24} {'precision':>10} {'recall':>8}")
    for kind, rows in results.items():
        fds = [r["fd_classifier"] for r in rows]
        print(
            f"{kind:<8} {statistics.mean(fds):8.2f} {', '.join(f'{f:.1f}' for f in fds):>24} "
            f"{statistics.mean(r['precision'] for r in rows):10.3f} {statistics.mean(r['recall'] for r in rows):8.3f}"
        )


if __name__ == "__main__":
    main()
