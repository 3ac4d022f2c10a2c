"""Encoder and decoder stacks, fully connected (`mlp`) or convolutional (`conv`), for any image shape (C, H, W).

Encoders map `[N, C, H, W]` to `[N, out_features]` (a VAE asks for 2 x latent_dim: mean and log-variance;
a discriminator for 1 logit). Decoders map `[N, latent_dim]` to `[N, C, H, W]` pre-activation outputs
(logits for a Bernoulli likelihood, means for a Gaussian one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from vaelab.errors import ConfigError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


def dense_stack(sizes: Sequence[int], activation: str) -> list[nn.Module]:
    """Linear layers between consecutive `sizes`, each followed by the activation."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return layers


class MLPEncoder(nn.Sequential):
    def __init__(self, shape: Sequence[int], hidden: Sequence[int], out_features: int, activation: str = "relu"):
        sizes = [math.prod(shape), *hidden]
        super().__init__(nn.Flatten(), *dense_stack(sizes, activation), nn.Linear(sizes[-1], out_features))


class MLPDecoder(nn.Sequential):
    def __init__(self, shape: Sequence[int], hidden: Sequence[int], latent_dim: int, activation: str = "relu"):
        sizes = [latent_dim, *reversed(hidden)]
        super().__init__(
            *dense_stack(sizes, activation), nn.Linear(sizes[-1], math.prod(shape)), nn.Unflatten(1, tuple(shape))
        )


def conv_sizes(size: int, depth: int, kernel: int = 4) -> list[int]:
    """Spatial sizes through `depth` stride-2 convolutions of `kernel` (padding `padding(kernel)`): kernel 4 floors
    the size by 2 (28 -> 14 -> 7, 7 -> 3), kernel 3 rounds it up (7 -> 4). Each convolution must have a side of at
    least 2 to halve: kernel 3 would keep a side of 1 at 1, a layer that only mixes channels, and oneDNN's bf16
    transposed convolution whose output side is 1 returns non-finite weight gradients now and then (torch 2.13)."""
    sizes = [size]
    for _ in range(depth):
        if sizes[-1] < 2:
            smallest = 2**depth if kernel % 2 == 0 else 2 ** (depth - 1) + 1
            raise ConfigError(
                f"arch conv: an image side of {size} is too small for {depth} stride-2 convolutions (one per "
                f"--channels value; the side must be at least {smallest} with kernel {kernel}); give fewer "
                f"--channels, {'' if kernel % 2 else '--kernel 3 (which rounds odd sides up), '}or --arch mlp"
            )
        sizes.append(sizes[-1] // 2 if kernel % 2 == 0 else (sizes[-1] + 1) // 2)
    return sizes


def padding(kernel: int) -> int:
    """The padding of a stride-2 convolution of `kernel` (3 or 4): 1, so that each halves the side."""
    return (kernel - 1) // 2


class ConvEncoder(nn.Module):
    """Strided convolutions (kernel 3 or 4, stride 2: each halves H and W), then dense layers to `out_features`.

    For 1x28x28 and channels (32, 64): 32 x 14 x 14 -> 64 x 7 x 7 -> hidden -> out_features. Kernel 3 costs 9/16
    of kernel 4's multiply-adds per convolution (vaelab's default since 2026-11-30; README, Performance).
    """

    def __init__(
        self,
        shape: Sequence[int],
        channels: Sequence[int],
        hidden: Sequence[int],
        out_features: int,
        activation: str = "relu",
        kernel: int = 4,
    ):
        super().__init__()
        c, h, w = shape
        layers: list[nn.Module] = []
        for c_in, c_out in zip([c, *channels[:-1]], channels):
            layers += [nn.Conv2d(c_in, c_out, kernel, stride=2, padding=padding(kernel)), ACTIVATIONS[activation]()]
        self.features = nn.Sequential(*layers)
        flat = channels[-1] * conv_sizes(h, len(channels), kernel)[-1] * conv_sizes(w, len(channels), kernel)[-1]
        sizes = [flat, *hidden]
        self.head = nn.Sequential(nn.Flatten(), *dense_stack(sizes, activation), nn.Linear(sizes[-1], out_features))

    # channels-last activations: oneDNN's fastest convolution layout on CPU (and the tensor cores' on GPU);
    # bench/conv_speed.py sets torch.contiguous_format on an instance to measure the difference
    memory_format = torch.channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.contiguous(memory_format=self.memory_format)))


class ConvDecoder(nn.Module):
    """Dense layers up to a small feature map, then transposed convolutions back to (C, H, W).

    Mirrors `ConvEncoder`: each transposed convolution (stride 2) doubles the side, with the output padding that
    lands on the encoder's side exactly (28 -> 14 -> 7 is undone as 7 -> 14 -> 28; an odd side too).
    """

    def __init__(
        self,
        shape: Sequence[int],
        channels: Sequence[int],
        hidden: Sequence[int],
        latent_dim: int,
        activation: str = "relu",
        kernel: int = 4,
    ):
        super().__init__()
        c, h, w = shape
        hs, ws = conv_sizes(h, len(channels), kernel), conv_sizes(w, len(channels), kernel)
        self.start = (channels[-1], hs[-1], ws[-1])
        sizes = [latent_dim, *reversed(hidden), math.prod(self.start)]
        self.head = nn.Sequential(*dense_stack(sizes, activation), nn.Unflatten(1, self.start))
        layers: list[nn.Module] = []
        outs = [*reversed(channels[:-1]), c]
        for i, (c_in, c_out) in enumerate(zip(reversed(channels), outs)):
            level = len(channels) - 1 - i  # the encoder level this layer undoes
            # a transposed convolution makes 2 * (side - 1) - 2 * padding + kernel; the output padding adds the rest
            made = [2 * (side[level + 1] - 1) - 2 * padding(kernel) + kernel for side in (hs, ws)]
            pad = (hs[level] - made[0], ws[level] - made[1])
            layers.append(
                nn.ConvTranspose2d(c_in, c_out, kernel, stride=2, padding=padding(kernel), output_padding=pad)
            )
            if i < len(channels) - 1:
                layers.append(ACTIVATIONS[activation]())
        self.features = nn.Sequential(*layers)

    memory_format = torch.channels_last  # in the convolutions, as in the encoder; the output is contiguous

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.features(self.head(z).contiguous(memory_format=self.memory_format)).contiguous()
