"""Adversarial models built from the VAE's parts, by composition.

- `Generator`: the decoder architecture of a `VAEConfig` fed z ~ N(0, I) (a GAN's G; its output goes
  through a sigmoid like the Bernoulli VAE's, so a trained VAE decoder can start it).
- `Discriminator`: the encoder architecture ending in one real/fake logit (leaky ReLU, the usual choice for
  a GAN's D). It also returns the activations of one hidden layer: the learned feature space in which the
  VAE-GAN measures reconstructions (Larsen et al. 2016, sec. 2.2).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from vaelab.errors import RunError
from vaelab.models.vae import VAEConfig, build_decoder, build_encoder
from vaelab.nets import ConvEncoder
from vaelab.nets_resnet import ResNetEncoder


def _flat_layers(encoder: nn.Module) -> list[nn.Module]:
    if isinstance(encoder, (ConvEncoder, ResNetEncoder)):  # convolutional features, then dense layers
        return [*encoder.features, *encoder.head]
    return list(encoder)


class Discriminator(nn.Module):
    def __init__(self, config: VAEConfig, feature_layer: int = -1):
        super().__init__()
        self.layers = nn.ModuleList(_flat_layers(build_encoder(replace(config, activation="leaky_relu"), 1)))
        activations = [i for i, m in enumerate(self.layers) if isinstance(m, nn.LeakyReLU)]
        if not activations:
            raise RunError("the discriminator needs at least one hidden layer (give --hidden or conv --channels)")
        if not -len(activations) <= feature_layer < len(activations):
            raise RunError(f"disc_layer: the discriminator has {len(activations)} hidden layers, got {feature_layer}")
        self.feature_index = activations[feature_layer]  # the output of this layer is the feature space

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(real/fake logits `[N]`, features `[N, F]` of the chosen hidden layer)."""
        features = None
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == self.feature_index:
                features = x.flatten(1)
        return x.squeeze(1), features


class Generator(nn.Module):
    """G(z): the decoder architecture, with the same API as a VAE for sampling (no encoder)."""

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.decoder = build_decoder(config)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def likelihood(self) -> str:
        return "bernoulli"

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def to_image(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        if z is None:
            z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.forward(z.to(device))

    def encode(self, x: torch.Tensor):
        raise RunError(
            "a GAN has no encoder: reconstructions, interpolations between images and latent scatters need a VAE or VAE-GAN run"
        )

    reconstruct = encode

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`[n, D]` latents z ~ N(0, I), drawn on the generator's device, returned on the model's."""
        device = generator.device if generator is not None else None
        return torch.randn(n, self.latent_dim, generator=generator, device=device).to(next(self.parameters()).device)
