"""Independent Bernoulli pixels with the decoder's logits: the course's binary cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vaelab.models.likelihoods.base import PIXELS, Likelihood


def log_prob(logits: torch.Tensor, x: torch.Tensor, log_sigma: torch.Tensor | None = None) -> torch.Tensor:
    """log p(x|z) for independent Bernoulli pixels with the given logits, summed per image.

    Computed from logits, log p = x * l - softplus(l), with softplus(l) = logaddexp(l, 0): exact and stable
    for any l (taking the sigmoid first and then the log would lose everything below float precision).
    Sums over the last three dimensions (C, H, W), so `logits` `[K, N, C, H, W]` broadcast against `x`.
    """
    # sum(x * l) as an einsum: one fused pass with no [..., C, H, W] temporary (it broadcasts x like `*` does)
    x_dot_l = torch.einsum("...p,...p->...", logits.flatten(-3), x.flatten(-3))
    zero = torch.zeros((), device=logits.device, dtype=logits.dtype)
    return x_dot_l - torch.logaddexp(logits, zero).sum(PIXELS)


def sample(
    logits: torch.Tensor, log_sigma: torch.Tensor, channels: int, generator: torch.Generator | None
) -> torch.Tensor:
    u = torch.rand(logits.shape, generator=generator, device=logits.device)
    return (u < torch.sigmoid(logits)).to(logits.dtype)


def note(binarized: bool) -> str | None:
    if binarized:
        return None
    return (
        "Bernoulli likelihood on grey-level pixels: the ELBO and NLL are cross-entropies, not a normalized "
        "likelihood of the data (train with --binarize for the standard binarized-MNIST protocol)"
    )


BERNOULLI = Likelihood(
    name="bernoulli",
    help="bernoulli (cross-entropy)",
    outputs=lambda mixtures: 1,
    log_prob=log_prob,
    mean=lambda logits, channels: torch.sigmoid(logits),
    sample=sample,
    note=note,
    browser="sigmoid",
    # torch's fused cross-entropy with logits, whose backward is cheaper than the per-image form's
    batch_nll=lambda logits, x: F.binary_cross_entropy_with_logits(logits, x, reduction="sum"),
)
