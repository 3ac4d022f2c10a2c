"""The variational autoencoder: encode -> posterior, reparameterize, decode -> logits (or Gaussian means)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from vaelab.models.posterior import DiagonalGaussian, standard_normal_log_prob
from vaelab.nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

# Clamp log-variances so exp() can neither overflow nor underflow to a zero variance (as diffusers does).
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0

DEFAULT_HIDDEN = {"mlp": (400,), "conv": (256,)}


@dataclass
class VAEConfig:
    """Everything needed to rebuild a VAE; saved as `config.json["model"]`."""

    shape: tuple[int, int, int]
    arch: str = "mlp"
    latent_dim: int = 10
    hidden: tuple[int, ...] | None = None  # None: the architecture's default (mlp 400; conv 256)
    channels: tuple[int, ...] = (32, 64)  # conv only
    activation: str = "relu"
    likelihood: str = "bernoulli"
    sigma: float = math.sqrt(0.5)  # Gaussian only: -log p(x|z) = ||x - x_hat||^2 + const, as in the course
    learn_sigma: bool = False

    def __post_init__(self):
        self.shape = tuple(int(s) for s in self.shape)  # type: ignore[assignment]
        self.channels = tuple(self.channels)
        self.hidden = tuple(DEFAULT_HIDDEN[self.arch] if self.hidden is None else self.hidden)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def build_encoder(config: VAEConfig, out_features: int) -> nn.Module:
    if config.arch == "mlp":
        return MLPEncoder(config.shape, config.hidden, out_features, config.activation)
    return ConvEncoder(config.shape, config.channels, config.hidden, out_features, config.activation)


def build_decoder(config: VAEConfig) -> nn.Module:
    if config.arch == "mlp":
        return MLPDecoder(config.shape, config.hidden, config.latent_dim, config.activation)
    return ConvDecoder(config.shape, config.channels, config.hidden, config.latent_dim, config.activation)


ARCHS = ("mlp", "conv")


class VAEOutput(NamedTuple):
    posterior: DiagonalGaussian
    z: torch.Tensor  # [N, D]
    output: torch.Tensor  # [N, C, H, W]: logits (Bernoulli) or means (Gaussian)


class VAE(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.encoder = build_encoder(config, 2 * config.latent_dim)
        self.decoder = build_decoder(config)
        log_sigma = torch.tensor(math.log(config.sigma))
        if config.learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def likelihood(self) -> str:
        return self.config.likelihood

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x) for images `x` (float in [0, 1], `[N, C, H, W]`)."""
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return DiagonalGaussian(mean, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """`[N, D]` latents -> `[N, C, H, W]` logits (Bernoulli) or means (Gaussian)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        posterior = self.encode(x)
        z = posterior.sample(generator)
        return VAEOutput(posterior, z, self.decode(z))

    def to_image(self, output: torch.Tensor) -> torch.Tensor:
        """Decoder output -> image in [0, 1]: the Bernoulli mean sigmoid(logits), or the clamped Gaussian mean."""
        return torch.sigmoid(output) if self.likelihood == "bernoulli" else output.clamp(0.0, 1.0)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
        """Images decoded from z ~ N(0, I) (or from the given `z`), in [0, 1]."""
        device = next(self.parameters()).device
        if z is None:
            z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.to_image(self.decode(z.to(device)))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images decoded from the posterior means of `x`, in [0, 1]."""
        return self.to_image(self.decode(self.encode(x).mean))

    # The prior p(z), asked for by IWAE, sampling, the sample grids and the explorer (a kind with a learned
    # prior, such as the VampPrior, overrides both).
    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = log N(z; 0, I), summed over the last dimension: `[..., D]` -> `[...]`."""
        return standard_normal_log_prob(z)

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`[n, D]` latents z ~ p(z), drawn on the generator's device, returned on the model's."""
        device = generator.device if generator is not None else None
        return torch.randn(n, self.latent_dim, generator=generator, device=device).to(next(self.parameters()).device)
