"""Models: the VAE (and, by composition, the adversarial models built on it)."""

from vaelab.models.posterior import DiagonalGaussian, standard_normal_log_prob
from vaelab.models.vae import VAE, VAEConfig, VAEOutput, build_decoder, build_encoder

__all__ = [
    "VAE",
    "DiagonalGaussian",
    "VAEConfig",
    "VAEOutput",
    "build_decoder",
    "build_encoder",
    "standard_normal_log_prob",
]
