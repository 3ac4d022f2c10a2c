"""The variational autoencoder: encode -> posterior, reparameterize, decode -> logits (or Gaussian means)."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from vaelab.config import ACTIVATIONS, ARCHS, LIKELIHOODS, MAX_WIDTH
from vaelab.models import likelihoods
from vaelab.models.likelihoods.logistic import MAX_MIXTURES
from vaelab.models.posterior import DiagonalGaussian, standard_normal_log_prob
from vaelab.nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from vaelab.nets_resnet import ResNetDecoder, ResNetEncoder, default_width

MAX_SIDE, MAX_CHANNELS = 4096, 64  # an image larger than this is no image vaelab can train on

# Clamp log-variances so exp() can neither overflow nor underflow to a zero variance (as diffusers does).
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0

DEFAULT_HIDDEN = {"mlp": (400,), "conv": (256,), "resnet": (256,)}
DEFAULT_BLOCKS = 1  # resnet: residual blocks per stage
KERNEL_BEFORE = 4  # conv: the kernel of every run saved before `kernel` was an option (vaelab <= 2026-11-29)


@dataclass
class VAEConfig:
    """Everything needed to rebuild a VAE; saved as `config.json["model"]`."""

    shape: tuple[int, int, int]
    arch: str = "mlp"
    latent_dim: int = 10
    hidden: tuple[int, ...] | None = None  # None: the architecture's default (mlp 400; conv 256)
    channels: tuple[int, ...] = (32, 64)  # conv only
    kernel: int | None = None  # conv only: 3 or 4 (None: 4, as every conv run saved before the option existed)
    activation: str = "relu"
    likelihood: str = "bernoulli"
    sigma: float = math.sqrt(0.5)  # Gaussian only: -log p(x|z) = ||x - x_hat||^2 + const, as in the course
    learn_sigma: bool = False
    mixtures: int = 0  # logistic only: components per pixel and channel (0: the likelihood's default)
    width: int | None = None  # resnet only: the first stage's width (None: chosen from the image size)
    blocks: int | None = None  # resnet only: residual blocks per stage (None: DEFAULT_BLOCKS)

    def __post_init__(self):
        """Checks every value, so that a damaged config.json is an error, not a traceback (ValueError)."""

        def ints(name, values, low, high):
            ok = isinstance(values, (list, tuple)) and all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) and low <= v <= high for v in values
            )
            if not ok:
                raise ValueError(f"{name}: expected integers in {low}..{high}, got {values!r}")
            return tuple(int(v) for v in values)

        self.shape = ints("shape", self.shape, 1, MAX_SIDE)  # type: ignore[assignment]
        if len(self.shape) != 3 or self.shape[0] > MAX_CHANNELS:
            raise ValueError(f"shape: expected (C, H, W) with C <= {MAX_CHANNELS}, got {list(self.shape)}")
        for name, value, choices in (
            ("arch", self.arch, ARCHS),
            ("activation", self.activation, ACTIVATIONS),
            ("likelihood", self.likelihood, LIKELIHOODS),
        ):
            if value not in choices:
                raise ValueError(f"{name}: must be one of {', '.join(choices)}, got {value!r}")
        ints("latent_dim", [self.latent_dim], 1, MAX_WIDTH)
        self.channels = ints("channels", self.channels, 1, MAX_WIDTH)
        if not self.channels:
            raise ValueError("channels: expected at least one value")
        self.hidden = ints("hidden", DEFAULT_HIDDEN[self.arch] if self.hidden is None else self.hidden, 1, MAX_WIDTH)
        if isinstance(self.sigma, bool) or not isinstance(self.sigma, (int, float)) or not 0 < self.sigma < math.inf:
            raise ValueError(f"sigma: expected a positive number, got {self.sigma!r}")
        if not isinstance(self.learn_sigma, bool):
            raise ValueError(f"learn_sigma: expected true or false, got {self.learn_sigma!r}")
        chosen = likelihoods.get(self.likelihood)
        if chosen.mixtures:
            self.mixtures = ints("mixtures", [self.mixtures or chosen.default_mixtures], 1, MAX_MIXTURES)[0]
        elif self.mixtures != 0:
            raise ValueError(f"mixtures: the {self.likelihood} likelihood has no mixture, got {self.mixtures!r}")
        if self.arch == "conv":
            self.kernel = ints("kernel", [KERNEL_BEFORE if self.kernel is None else self.kernel], 3, 4)[0]
        elif self.kernel is not None:
            raise ValueError(f"kernel: only for arch conv, got {self.kernel!r} for {self.arch}")
        if self.arch == "resnet":  # the one architecture with a width and blocks
            self.width = ints("width", [default_width(self.shape) if self.width is None else self.width], 1, 4096)[0]
            self.blocks = ints("blocks", [DEFAULT_BLOCKS if self.blocks is None else self.blocks], 0, 64)[0]
        elif self.width is not None or self.blocks is not None:
            raise ValueError(
                f"width, blocks: only for arch resnet, got {self.width!r}, {self.blocks!r} for {self.arch}"
            )

    def to_dict(self) -> dict:
        """The fields config.json saves; those a new version added are left out while unused, so that a run's
        config.json reads as it did before they existed."""
        added = {"mixtures": (0,), "width": (None,), "blocks": (None,), "kernel": (None, KERNEL_BEFORE)}
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in asdict(self).items()
            if k not in added or v not in added[k]
        }

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """The decoder's output `(C * outputs, H, W)`: the likelihood's parameters per image channel."""
        c, h, w = self.shape
        return (c * likelihoods.get(self.likelihood).outputs(self.mixtures), h, w)


def build_encoder(config: VAEConfig, out_features: int) -> nn.Module:
    if config.arch == "mlp":
        return MLPEncoder(config.shape, config.hidden, out_features, config.activation)
    if config.arch == "resnet":
        return ResNetEncoder(config.shape, config.width, config.blocks, config.hidden, out_features, config.activation)
    return ConvEncoder(config.shape, config.channels, config.hidden, out_features, config.activation, config.kernel)


def build_decoder(config: VAEConfig) -> nn.Module:
    """The decoder, to the likelihood's output channels (`config.output_shape`)."""
    out = config.output_shape
    if config.arch == "mlp":
        return MLPDecoder(out, config.hidden, config.latent_dim, config.activation)
    if config.arch == "resnet":
        return ResNetDecoder(out, config.width, config.blocks, config.hidden, config.latent_dim, config.activation)
    return ConvDecoder(out, config.channels, config.hidden, config.latent_dim, config.activation, config.kernel)


class VAEOutput(NamedTuple):
    posterior: DiagonalGaussian
    z: torch.Tensor  # [N, D]
    output: torch.Tensor  # [N, C * outputs, H, W]: logits (Bernoulli), means (Gaussian), mixtures (logistic)


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
        """Decoder output -> image in [0, 1]: the likelihood's mean (the Bernoulli's sigmoid(logits), the clamped
        Gaussian mean, the logistic mixture's clipped mean)."""
        return likelihoods.get(self.likelihood).mean(output, self.config.shape[0])

    def draw(self, output: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder output -> one image drawn from p(x|z), in [0, 1] (8-bit levels for the logistic likelihood)."""
        return likelihoods.get(self.likelihood).sample(output, self.log_sigma, self.config.shape[0], generator)

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
