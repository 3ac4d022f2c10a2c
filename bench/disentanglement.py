"""Benchmark: the disentanglement section of `vaelab eval` on 10,000 dSprites test images (issue 23: under 60 s on
2 cores), and what dSprites costs to build.

The test split of `dsprites:100000` (10,000 images) is encoded by a fixed conv VAE with a 10-dimensional latent
space (the default network of `--arch conv`, seeded, trained for one epoch on the 9,000 training images of
`dsprites:10000` so that its codes are not collapsed and every estimator does its full work); then each estimator runs on those codes, and on
synthetic codes (the factors plus N(0, 0.1^2) noise, whose scores are known to be near the top). Each row gives
seconds and the ratio to the reference measured in the same invocation: encoding the same 10,000 images, a cost
`vaelab eval` pays anyway. The last row is the whole section as `vaelab eval` measures it (encoding included, with its
progress bar). `--build` also times rendering the whole set (737,280 images) into a temporary cache, and loading it.

    python bench/disentanglement.py [--threads 2] [--subset 100000] [--build]
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time

import numpy as np
import torch

from vaelab import data, kinds, load
from vaelab.data import dsprites
from vaelab.evaluate import disentanglement as dis
from vaelab.evaluate import disentanglement_section as section
from vaelab.evaluate.latents import posterior_stats
from vaelab.evaluate.metric import Context
from vaelab.pipeline import train_run


def timed(function, *args, **options):
    start = time.perf_counter()
    value = function(*args, **options)
    return value, time.perf_counter() - start


def estimators(codes: np.ndarray, factors: np.ndarray) -> list[tuple[str, object, float]]:
    rows = []
    for name, function in (
        ("MIG", dis.mig),
        ("DCI", lambda c, f: dis.dci(c, f)[:3]),
        ("SAP", dis.sap),
        ("FactorVAE score", dis.factorvae_score),
    ):
        value, seconds = timed(function, codes, factors)
        rows.append((name, value, seconds))
    return rows


def show(value) -> str:
    if isinstance(value, tuple):
        return " / ".join(f"{v:.3f}" for v in value)
    return f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--subset", type=int, default=100_000, help="dsprites:N whose test split (N/10) is measured")
    parser.add_argument("--build", action="store_true", help="also time building and loading the whole set")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs of the encoder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"disentanglement metrics, {args.threads} threads, torch {torch.__version__}, {datetime.date.today()}")
    dataset, seconds = timed(data.load, f"dsprites:{args.subset}")
    images, factors = dataset.test.images, dataset.test.factors.numpy()
    print(f"dsprites:{args.subset}: generated in {seconds:.2f} s; {len(images)} test images measured")
    with tempfile.TemporaryDirectory() as tmp:
        config = {"data": "dsprites:10000", "arch": "conv", "latent_dim": 10, "epochs": args.epochs}
        path, seconds = timed(train_run, kinds.make_config({**config, "out": f"{tmp}/run", "quiet": True}))
        model = load(path).eval()
    print(f"conv encoder: trained for {args.epochs} epoch(s) on dsprites:10000 in {seconds:.1f} s")
    stats, reference = timed(posterior_stats, model, images)
    codes = stats["means"].numpy()
    print(f"{'codes':<18} {'estimator':<16} {'seconds':>8} {'x encoding':>10}  score")
    print(f"{'conv encoder':<18} {'(encoding)':<16} {reference:8.2f} {1.0:10.2f}")
    synthetic = factors + np.random.default_rng(0).normal(0, 0.1, factors.shape)
    for label, z in (("conv encoder", codes), ("factors + noise", synthetic)):
        for name, value, seconds in estimators(z, factors):
            print(f"{label:<18} {name:<16} {seconds:8.2f} {seconds / reference:10.2f}  {show(value)}", flush=True)
    ctx = Context(None, model, dataset, images, "test", 0, 1, "fp32", torch.device("cpu"), None, False, False, {})
    (result, _), seconds = timed(section.measure, ctx)
    print(
        f"{'conv encoder':<18} {'whole section':<16} {seconds:8.2f} {seconds / reference:10.2f}  "
        f"MIG {result.mig:.3f}, DCI {result.dci_disentanglement:.3f}, SAP {result.sap:.3f}, "
        f"FactorVAE {result.factorvae:.3f} ({result.factorvae_active_dims} active dims)  (target: under 60 s)"
    )
    if args.build:
        with tempfile.TemporaryDirectory() as cache:
            _, built = timed(dsprites.cached_images, cache)
            whole, loaded = timed(data.load, "dsprites", cache_dir=cache)
            print(
                f"whole set: rendered and cached in {built:.1f} s, loaded from the cache in {loaded:.1f} s "
                f"({len(whole.train)} train / {len(whole.test)} test, "
                f"{whole.train.images.numel() + whole.test.images.numel():,} bytes of images)"
            )


if __name__ == "__main__":
    main()
