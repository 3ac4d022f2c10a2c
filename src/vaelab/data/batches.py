"""Batches cut as whole slices out of in-memory uint8 tensors (no per-item loop, no float copy up front).

`batches` is the one place where an epoch's order is drawn and sharded, so data-parallel training only
has to pass its `rank` and `world_size`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 `[N, C, H, W]` in [0, 255] -> float32 in [0, 1]."""
    return images.to(torch.float32).mul_(1.0 / 255.0)


def random_flips(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image of `x` `[B, C, H, W]` mirrored left-right with probability 1/2: one draw per image from
    `generator` (on its own device), so a seeded run, and a resumed one, flips the same images."""
    mirror = torch.rand(x.shape[0], generator=generator, device=generator.device) < 0.5
    return torch.where(mirror.to(x.device)[:, None, None, None], x.flip(-1), x)


def epoch_order(n: int, generator: torch.Generator | None, shuffle: bool) -> torch.Tensor:
    return torch.randperm(n, generator=generator) if shuffle else torch.arange(n)


def batches(
    images: torch.Tensor,
    batch_size: int,
    *,
    labels: torch.Tensor | None = None,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    device: torch.device | str = "cpu",
    flip: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield `(x, y)`: x float32 in [0, 1] `[B, C, H, W]` on `device`, y the labels or None.

    With `world_size > 1`, every process draws the same permutation (same generator state) and takes
    every `world_size`-th index starting at `rank`, so the shards are disjoint and cover the epoch.
    With a `flip` generator, images are mirrored at random (`random_flips`): training only, never evaluation.
    """
    order = epoch_order(images.shape[0], generator, shuffle)
    if world_size > 1:
        usable = order.numel() - order.numel() % world_size  # equal shard sizes keep the processes in step
        order = order[rank:usable:world_size]
    stop = order.numel() - order.numel() % batch_size if drop_last else order.numel()
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        x = images[index] if shuffle or world_size > 1 else images[start : start + batch_size]
        x = to_float(x.to(device, non_blocking=True))
        if flip is not None:
            x = random_flips(x, flip)
        y = None if labels is None else labels[index].to(device, non_blocking=True)
        yield x, y
