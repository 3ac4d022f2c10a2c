"""Benchmark: IWAE log-likelihood (k = 1000) on the 2,000 mnist-mini test images, MLP 400 / latent 10.

Compares, in one process and on the same trained model, a straightforward per-image estimator (one image at a
time, its k samples in one batch, cross-entropy per sample, logsumexp) with vaelab's batched estimator in fp32
and with a bf16 decoder. Prints seconds, the ratio to the reference, and the NLL of each (they must agree).

    python bench/iwae.py [--k 1000] [--images 2000] [--threads 2]
"""

from __future__ import annotations

import argparse
import datetime
import math
import tempfile
import time

import torch
import torch.nn.functional as F

from vaelab import data, kinds, load
from vaelab.evaluate.iwae import iwae_log_likelihood
from vaelab.pipeline import train_run


def reference_iwae(model, images: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """The straightforward estimator: a Python loop over images."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    with torch.no_grad():
        for i in range(images.shape[0]):
            x = images[i : i + 1].float() / 255
            q = model.encode(x)
            eps = torch.randn(k, model.latent_dim, generator=generator)
            z = q.mean + q.std * eps
            logits = model.decode(z)
            log_px = (
                -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").flatten(1).sum(1)
            )
            log_pz = -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
            log_qz = -0.5 * (eps.pow(2) + q.logvar + math.log(2 * math.pi)).sum(1)
            out.append(torch.logsumexp(log_px + log_pz - log_qz, 0) - math.log(k))
    return torch.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5, help="training epochs of the model evaluated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        config = {"epochs": args.epochs, "out": f"{tmp}/run", "quiet": True, "latent_dim": 10, "hidden": [400]}
        run = train_run(kinds.make_config(config))
        model = load(run)
    images = data.load("mnist-mini").test.images[: args.images]
    contenders = [
        ("per-image reference", lambda: reference_iwae(model, images, args.k, 0)),
        ("vaelab fp32", lambda: iwae_log_likelihood(model, images, args.k, seed=0)),
        ("vaelab bf16 decoder", lambda: iwae_log_likelihood(model, images, args.k, seed=0, precision="bf16")),
    ]
    print(f"IWAE k={args.k}, {images.shape[0]} mnist-mini test images, MLP 784-400-10, {args.threads} threads, "
          f"torch {torch.__version__}, {datetime.date.today()}")  # fmt: skip
    results = {}
    for name, fn in contenders:
        start = time.perf_counter()
        log_px = fn()
        results[name] = (time.perf_counter() - start, float(-log_px.mean()))
    ref_time = results["per-image reference"][0]
    print(f"{'estimator':<22} {'seconds':>8} {'speed-up':>9} {'NLL (nats)':>11}")
    for name, (seconds, nll) in results.items():
        print(f"{name:<22} {seconds:8.2f} {ref_time / seconds:8.2f}x {nll:11.3f}")


if __name__ == "__main__":
    main()
