"""The approximate posterior q(z|x) = N(mean, diag(exp(logvar))) of a VAE."""

from __future__ import annotations

import math

import torch


class DiagonalGaussian:
    """A diagonal Gaussian over latent vectors; `mean` and `logvar` are `[N, D]`."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean
        self.logvar = logvar

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterized draw z = mean + std * eps, eps ~ N(0, I): gradients flow to mean and logvar."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl_per_dim(self) -> torch.Tensor:
        """KL(q || N(0, I)) per latent dimension, `[N, D]` (Kingma & Welling 2014, appendix B):
        0.5 * (mean^2 + var - 1 - logvar)."""
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per image, `[N]`."""
        return self.kl_per_dim().sum(dim=1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x), summed over dimensions. `z` is `[..., N, D]`, broadcast against `[N, D]`."""
        return -0.5 * (((z - self.mean) ** 2) / self.logvar.exp() + self.logvar + math.log(2 * math.pi)).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)
