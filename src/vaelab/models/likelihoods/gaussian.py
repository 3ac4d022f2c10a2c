"""A Gaussian of fixed or learned standard deviation around the decoder's means: the course's squared error."""

from __future__ import annotations

import math

import torch

from vaelab.models.likelihoods.base import PIXELS, Likelihood


def log_prob(mean: torch.Tensor, x: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, sigma^2 I) summed per image. With sigma^2 = 1/2 this is -||x - mean||^2 - const:
    the squared error of the course, as a proper log-density. `log_sigma` is a scalar tensor."""
    d = mean[0].numel() if mean.dim() == 4 else mean[0, 0].numel()
    sq = (x - mean).pow(2).sum(PIXELS)
    return -0.5 * sq * torch.exp(-2 * log_sigma) - d * (log_sigma + 0.5 * math.log(2 * math.pi))


def sample(
    mean: torch.Tensor, log_sigma: torch.Tensor, channels: int, generator: torch.Generator | None
) -> torch.Tensor:
    noise = torch.randn(mean.shape, generator=generator, device=mean.device)
    return (mean + noise * log_sigma.exp()).clamp(0.0, 1.0)


GAUSSIAN = Likelihood(
    name="gaussian",
    help="gaussian (squared error)",
    outputs=lambda mixtures: 1,
    log_prob=log_prob,
    mean=lambda output, channels: output.clamp(0.0, 1.0),
    sample=sample,
    note=lambda binarized: (
        "Gaussian density of the grey levels in [0, 1]: a density, not a probability of the 8-bit pixels, so its "
        "bits/dim are not comparable with published ones (--likelihood logistic gives a true likelihood)"
    ),
    squared_error=True,
    browser="clamp",
)
