"""Residual convolutional encoder and decoder (`--arch resnet`) that scale with the image.

The encoder is a 3x3 stem at full resolution, then stages of `blocks` pre-activation residual blocks (He et al.
2016, "Identity mappings"), each stage but the last followed by a stride-2 convolution that halves H and W and
doubles the width, down to a side of 4 (8 for images of 128 pixels or more); then dense layers to
`out_features`, like `nets.ConvEncoder`. The decoder mirrors it: dense layers to the smallest feature map, then per
stage residual blocks and a nearest-neighbour upsampling to the encoder's size at that stage (odd sides
included: 28 -> 14 -> 7 is undone exactly) with a 3x3 convolution that halves the width, and a 3x3 convolution
to the likelihood's output channels. Normalization is GroupNorm (Wu & He 2018): it does not depend on the batch,
so a model trained at batch 256 evaluates the same at batch 16 or 1.

The latent is dense (a vector of `latent_dim`): every consumer of vaelab's VAEs (IWAE, the latent grids, the
explorer) works with it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from vaelab.errors import ConfigError
from vaelab.nets import ACTIVATIONS, dense_stack

MAX_STAGE_WIDTH = 512  # the width stops doubling here


def smallest_side(size: int) -> int:
    """The side the stages stop at: 4, or 8 for images of 128 pixels or more."""
    return 8 if size >= 128 else 4


def stage_sizes(h: int, w: int) -> list[tuple[int, int]]:
    """The (H, W) of each stage: halved (floored) while the smaller side stays at or above its smallest side."""
    stop = smallest_side(min(h, w))
    sizes = [(h, w)]
    while min(sizes[-1]) // 2 >= stop:
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    return sizes


def stage_widths(width: int, stages: int) -> list[int]:
    """`width` doubled per stage, up to `MAX_STAGE_WIDTH` (or `width`, if that is larger)."""
    return [min(width * 2**i, max(width, MAX_STAGE_WIDTH)) for i in range(stages)]


def default_width(shape: Sequence[int]) -> int:
    """The base width for an image: 16 up to 64 pixels a side, then 8 (a stage at full resolution costs as much as
    all the others together; the README's table says what each costs on a CPU)."""
    return 16 if max(shape[1:]) <= 64 else 8


def groups(channels: int) -> int:
    """GroupNorm's groups: 8 where the width allows (Wu & He's 32 is for widths of 64 and up)."""
    return math.gcd(channels, 8)


class ResidualBlock(nn.Module):
    """x + conv(act(norm(conv(act(norm(x)))))), the last convolution zero-initialized so each block starts as
    the identity (Goyal et al. 2017), which keeps deep stacks trainable from the first step."""

    def __init__(self, channels: int, activation: str):
        super().__init__()
        self.residual = nn.Sequential(
            nn.GroupNorm(groups(channels), channels),
            ACTIVATIONS[activation](),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups(channels), channels),
            ACTIVATIONS[activation](),
            nn.Conv2d(channels, channels, 3, padding=1),
        )
        nn.init.zeros_(self.residual[-1].weight)
        nn.init.zeros_(self.residual[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)


def _check(shape: Sequence[int], blocks: int) -> list[tuple[int, int]]:
    sizes = stage_sizes(shape[1], shape[2])
    if min(shape[1:]) < 4:
        raise ConfigError(f"arch resnet: an image side of {min(shape[1:])} is too small (at least 4); use --arch mlp")
    if blocks < 0:
        raise ConfigError(f"blocks: must be >= 0, got {blocks}")
    return sizes


class ResNetEncoder(nn.Module):
    """`[N, C, H, W]` -> `[N, out_features]`. For 3x32x32, width 32: 32 x 32 x 32 -> 64 x 16 x 16 ->
    128 x 8 x 8 -> 256 x 4 x 4 -> hidden -> out_features."""

    def __init__(
        self,
        shape: Sequence[int],
        width: int,
        blocks: int,
        hidden: Sequence[int],
        out_features: int,
        activation: str = "relu",
    ):
        super().__init__()
        sizes = _check(shape, blocks)
        widths = stage_widths(width, len(sizes))
        layers: list[nn.Module] = [nn.Conv2d(shape[0], widths[0], 3, padding=1)]
        for i, w in enumerate(widths):
            layers += [ResidualBlock(w, activation) for _ in range(blocks)]
            if i < len(widths) - 1:
                layers.append(nn.Conv2d(w, widths[i + 1], 4, stride=2, padding=1))  # halves H and W (floored)
        layers += [nn.GroupNorm(groups(widths[-1]), widths[-1]), ACTIVATIONS[activation]()]
        self.features = nn.Sequential(*layers)
        flat = widths[-1] * sizes[-1][0] * sizes[-1][1]
        dims = [flat, *hidden]
        self.head = nn.Sequential(nn.Flatten(), *dense_stack(dims, activation), nn.Linear(dims[-1], out_features))

    memory_format = torch.channels_last  # oneDNN's fastest layout on CPU, as in nets.ConvEncoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.contiguous(memory_format=self.memory_format)))


class ResNetDecoder(nn.Module):
    """`[N, latent_dim]` -> `[N, C_out, H, W]` (C_out: the likelihood's output channels), mirroring the encoder."""

    def __init__(
        self,
        shape: Sequence[int],
        width: int,
        blocks: int,
        hidden: Sequence[int],
        latent_dim: int,
        activation: str = "relu",
    ):
        super().__init__()
        sizes = _check(shape, blocks)
        widths = stage_widths(width, len(sizes))
        self.start = (widths[-1], *sizes[-1])
        dims = [latent_dim, *reversed(hidden), math.prod(self.start)]
        self.head = nn.Sequential(*dense_stack(dims, activation), nn.Unflatten(1, self.start))
        layers: list[nn.Module] = []
        for i in reversed(range(len(widths))):
            layers += [ResidualBlock(widths[i], activation) for _ in range(blocks)]
            if i > 0:
                layers += [
                    nn.Upsample(size=sizes[i - 1], mode="nearest"),
                    nn.Conv2d(widths[i], widths[i - 1], 3, padding=1),
                ]
        layers += [
            nn.GroupNorm(groups(widths[0]), widths[0]),
            ACTIVATIONS[activation](),
            nn.Conv2d(widths[0], shape[0], 3, padding=1),
        ]
        self.features = nn.Sequential(*layers)

    memory_format = torch.channels_last

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.features(self.head(z).contiguous(memory_format=self.memory_format)).contiguous()
