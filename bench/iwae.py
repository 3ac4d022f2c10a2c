"""Benchmark: IWAE log-likelihood on the 2,000 mnist-mini test images, MLP 400 / latent 10 (k = 1000) and the
default conv model / latent 10 (k = 100, as `vaelab compare` evaluates it).

Compares, in one process and on the same trained models, a straightforward per-image estimator (one image at a
time, its k samples in one batch, cross-entropy per sample, logsumexp) with vaelab's batched estimator: in fp32
with 8,192-row blocks (vaelab 0.2.0's fixed size), in fp32 with the default blocks (sized by the decoder's widest
activation), and with a bf16 decoder. Prints seconds, the ratio to the first row of each model, and the NLL of
each (they must agree to within the Monte Carlo error; bf16 within 0.05 nats of fp32).

    python bench/iwae.py [--k 1000] [--conv-k 100] [--images 2000] [--threads 2]
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
    parser.add_argument("--conv-k", type=int, default=100, help="k for the conv model (0: skip it)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs of the models evaluated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ("conv", "mlp") if args.conv_k else ("mlp",):  # conv first: a fresh process, as `vaelab eval`
            config = {"epochs": args.epochs, "out": f"{tmp}/{arch}", "quiet": True, "latent_dim": 10, "arch": arch}
            models[arch] = load(train_run(kinds.make_config(config)))
    images = data.load("mnist-mini").test.images[: args.images]
    print(
        f"IWAE on {images.shape[0]} mnist-mini test images, latent 10, {args.threads} threads, "
        f"torch {torch.__version__}, {datetime.date.today()}"
    )
    print(f"{'model':<16} {'estimator':<28} {'seconds':>8} {'speed-up':>9} {'NLL (nats)':>11}")
    for arch, model in models.items():
        k = args.k if arch == "mlp" else args.conv_k
        contenders = [
            ("vaelab fp32, 8192-row blocks", iwae_log_likelihood, {"rows": 8192}),
            ("vaelab fp32", iwae_log_likelihood, {}),
            ("vaelab bf16 decoder", iwae_log_likelihood, {"precision": "bf16"}),
        ]
        if arch == "mlp":
            contenders.insert(0, ("per-image reference", reference_iwae, {}))
        first = None
        for name, estimator, options in contenders:
            start = time.perf_counter()
            nll = float(-estimator(model, images, k, seed=0, **options).mean())
            seconds = time.perf_counter() - start
            first = first or seconds
            print(f"{arch + f' k={k}':<16} {name:<28} {seconds:8.2f} {first / seconds:8.2f}x {nll:11.3f}", flush=True)


if __name__ == "__main__":
    main()
