"""Benchmark: training the feature classifier (the feature space of FD / precision / recall) on 60,000 images.

No 60,000-image set can be fetched offline, so the benchmark builds one from `mnist-mini`'s 8,000 training digits:
each copied 7.5 times with a random shift of up to 2 pixels (the test split stays mnist-mini's 2,000 real digits).
In one invocation:
- vaelab 0.2.0's recipe (8 epochs whatever the size, contiguous activations, Adam's per-parameter loop): two
  epochs timed, the eight extrapolated;
- today's recipe (`evaluate.classifier.train_classifier`: epochs from the images seen, channels-last), timed whole,
  with its test accuracy;
- both recipes on mnist-mini itself (8 epochs each): seconds and test accuracy.

    python bench/classifier.py [--threads 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import datetime
import time

import torch

from vaelab import data
from vaelab.evaluate import classifier
from vaelab.training.common import fused_adam


def shifted_copies(split: data.Split, n: int, seed: int) -> data.Split:
    """`n` images: the split's images repeated, each shifted by up to 2 pixels in x and y (labels kept)."""
    generator = torch.Generator().manual_seed(seed)
    index = torch.arange(n) % len(split)
    images, labels = split.images[index].clone(), split.labels[index].clone()
    shifts = torch.randint(-2, 3, (n, 2), generator=generator)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            chosen = ((shifts[:, 0] == dy) & (shifts[:, 1] == dx)).nonzero().squeeze(1)
            images[chosen] = torch.roll(images[chosen], (dy, dx), dims=(2, 3))
    return data.Split(images, labels)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def old_recipe(dataset: data.Dataset, epochs: int, seed: int):
    """0.2.0: contiguous activations and Adam's per-parameter loop, for `epochs` epochs."""
    classifier.FeatureClassifier.memory_format = torch.contiguous_format
    classifier.fused_adam = lambda module, lr, betas: torch.optim.Adam(module.parameters(), lr=lr, betas=betas)
    try:
        return classifier.train_classifier(dataset, epochs=epochs, seed=seed)
    finally:
        classifier.FeatureClassifier.memory_format = torch.channels_last
        classifier.fused_adam = fused_adam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mini = data.load("mnist-mini")
    big = data.Dataset(
        name="mnist-mini x7.5 shifted",
        train=shifted_copies(mini.train, 60_000, args.seed),
        test=mini.test,
        classes=mini.classes,
    )
    print(f"feature classifier, {args.threads} threads, torch {torch.__version__}, {datetime.date.today()}")
    print(f"{'data':<28} {'recipe':<34} {'epochs':>6} {'seconds':>8} {'test accuracy':>14}")
    (_, _), two_epochs = timed(lambda: old_recipe(big, 2, args.seed))
    print(
        f"{'60,000 (shifted mnist-mini)':<28} {'0.2.0 (2 epochs timed, x4)':<34} {8:6d} {4 * two_epochs:8.1f} {'':>14}"
    )
    epochs = classifier.default_epochs(len(big.train))
    (_, accuracy), seconds = timed(lambda: classifier.train_classifier(big, seed=args.seed, quiet=False))
    print(f"{'60,000 (shifted mnist-mini)':<28} {'today':<34} {epochs:6d} {seconds:8.1f} {accuracy:14.2%}", flush=True)
    for name, fn in [
        ("0.2.0", lambda: old_recipe(mini, 8, args.seed)),
        ("today", lambda: classifier.train_classifier(mini, seed=args.seed)),
    ]:
        (_, accuracy), seconds = timed(fn)
        print(f"{'8,000 (mnist-mini)':<28} {name:<34} {8:6d} {seconds:8.1f} {accuracy:14.2%}", flush=True)


if __name__ == "__main__":
    main()
