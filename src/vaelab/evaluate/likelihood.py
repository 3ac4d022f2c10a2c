"""The likelihood metrics of `vaelab eval`: the exact ELBO of the split, and the importance-sampled NLL (IWAE).

Both need p(x|z). A run trained on binarized images is measured on a seeded binarization of the split, the
standard binarized-MNIST protocol; a Bernoulli run on grey levels is measured as is, with a note saying that its
numbers are cross-entropies, not a normalized likelihood; each likelihood says what its numbers are
(`Likelihood.note`): the discretized logistic's are true bounds on the 8-bit data's code length, with no
dequantization correction (it is a probability of the integer pixels, so bits/dim = -log2 p / dims).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from vaelab import data
from vaelab.evaluate.iwae import iwae_log_likelihood
from vaelab.evaluate.metric import Context, Metric, Section, optional
from vaelab.losses import binarize as binarize_images
from vaelab.models import likelihoods
from vaelab.training.split import split_terms


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    """Convert nats per image to bits per dimension: nats / (D * ln 2)."""
    return nats_per_image / (dims * math.log(2))


def binarized(images: torch.Tensor, seed: int) -> torch.Tensor:
    """A seeded binarization of uint8 images (pixel on with probability grey / 255), as uint8 0 / 255."""
    on = binarize_images(data.to_float(images), torch.Generator().manual_seed(seed))
    return on.mul_(255).to(torch.uint8)


def measured_images(ctx: Context) -> torch.Tensor:
    """The images the likelihoods are measured on: the split, or its seeded binarization for a binarized run."""
    return binarized(ctx.images, ctx.seed) if ctx.binarize else ctx.images


@dataclass
class ElboResult(Section):
    elbo: float  # nats per image
    recon: float
    kl: float
    bits_per_dim: float  # of -ELBO
    sq_error: float | None = optional()  # a Gaussian likelihood's squared error


@dataclass
class IwaeResult(Section):
    k: int
    nll: float  # nats per image
    nll_se: float  # standard error over images
    bits_per_dim: float
    precision: str | None = optional()
    seconds: float | None = optional()


def measure_elbo(ctx: Context) -> tuple[ElboResult, list[str]]:
    terms = split_terms(ctx.model, measured_images(ctx), seed=ctx.seed, device=ctx.device)
    neg_elbo = terms["recon"] + terms["kl"]
    result = ElboResult(
        elbo=-neg_elbo,
        recon=terms["recon"],
        kl=terms["kl"],
        bits_per_dim=bits_per_dim(neg_elbo, ctx.images[0].numel()),
        sq_error=terms.get("sq_error"),
    )
    # what these numbers are, said by the likelihood: on binary data (binarized here, or already 0/255 like dSprites)
    # a Bernoulli likelihood is a normalized likelihood of the data
    binary = ctx.binarize or bool(((ctx.images == 0) | (ctx.images == 255)).all())
    note = likelihoods.get(ctx.model.likelihood).note(binary)
    notes = [note] if note else []
    if ctx.binarize:
        notes.append(
            f"likelihoods on a seeded binarization (seed {ctx.seed}) of the {ctx.split} split, the standard protocol"
        )
    return result, notes


def measure_iwae(ctx: Context) -> tuple[IwaeResult, list[str]]:
    started = time.perf_counter()
    nll = -iwae_log_likelihood(
        ctx.model,
        measured_images(ctx),
        ctx.iwae_k,
        seed=ctx.seed,
        device=ctx.device,
        precision=ctx.precision,
        quiet=ctx.quiet,
    )
    result = IwaeResult(
        k=ctx.iwae_k,
        nll=float(nll.mean()),
        nll_se=float(nll.std() / math.sqrt(len(nll))) if len(nll) > 1 else 0.0,
        bits_per_dim=bits_per_dim(float(nll.mean()), ctx.images[0].numel()),
        precision=ctx.precision,
        seconds=time.perf_counter() - started,
    )
    return result, []


def elbo_rows(e: ElboResult) -> list[tuple[str, str]]:
    rows = [("ELBO (nats/image)", f"{e.elbo:.2f}  (recon {e.recon:.2f}, KL {e.kl:.2f})")]
    if e.sq_error is not None:
        rows.append(("squared error ||x - x_hat||^2", f"{e.sq_error:.2f}"))
    return rows + [("-ELBO (bits/dim)", f"{e.bits_per_dim:.4f}")]


def iwae_rows(i: IwaeResult) -> list[tuple[str, str]]:
    return [
        (f"NLL, IWAE k={i.k} (nats/image)", f"{i.nll:.2f} +- {i.nll_se:.2f} (s.e.)"),
        ("NLL (bits/dim)", f"{i.bits_per_dim:.4f}"),
    ]


ELBO = Metric(name="elbo", result=ElboResult, measure=measure_elbo, rows=elbo_rows, needs=("likelihood",))
IWAE = Metric(
    name="iwae",
    result=IwaeResult,
    measure=measure_iwae,
    rows=iwae_rows,
    needs=("likelihood",),
    columns=("NLL (IWAE)", "k"),
    cells=lambda i: [i.nll, i.k],
)
