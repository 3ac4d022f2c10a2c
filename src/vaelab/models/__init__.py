"""Models: the VAE (and, by composition, the adversarial models built on it)."""

from collections.abc import Callable

import torch

from vaelab.models.posterior import DiagonalGaussian, standard_normal_log_prob
from vaelab.models.vae import VAE, VAEConfig, VAEOutput, build_decoder, build_encoder


def parameter_count(make: Callable[[], torch.nn.Module]) -> int:
    """The parameters of the module `make()` builds, built on the meta device: no memory is allocated, so a
    size far past this machine's memory can be refused before anything is built for real."""
    with torch.device("meta"):
        return sum(p.numel() for p in make().parameters())


__all__ = [
    "VAE",
    "DiagonalGaussian",
    "VAEConfig",
    "VAEOutput",
    "build_decoder",
    "build_encoder",
    "parameter_count",
    "standard_normal_log_prob",
]
