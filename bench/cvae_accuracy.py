"""How often a conditional VAE's samples are of the requested class, judged by eval's feature classifier.

PYTHONPATH=src python bench/cvae_accuracy.py RUN [--n 1000] [--seed 0]
"""

from __future__ import annotations

import argparse

import torch

from vaelab.evaluate import classifier
from vaelab.run import Run


def conditional_accuracy(run: Run, n_per_class: int = 100, seed: int = 0) -> dict:
    """Share of samples drawn for class c that the feature classifier puts in class c (overall and per class)."""
    net, info = classifier.load_or_train(run.dataset())
    generator = torch.Generator().manual_seed(seed)
    per_class = []
    for c in range(run.model.classes):
        images = run.model.sample(n_per_class, generator, labels=torch.full((n_per_class,), c, dtype=torch.long))
        with torch.inference_mode():
            per_class.append(float((net(images).argmax(1) == c).double().mean()))
    return {
        "accuracy": sum(per_class) / len(per_class),
        "per_class": per_class,
        "classifier_test_accuracy": info["test_accuracy"],
        "n_per_class": n_per_class,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    found = conditional_accuracy(Run.open(args.run), args.n, args.seed)
    print(
        f"{args.run}: {found['accuracy']:.1%} of samples are of the requested class "
        f"(per class: {' '.join(f'{a:.2f}' for a in found['per_class'])}; classifier test accuracy "
        f"{found['classifier_test_accuracy']:.3f})"
    )
