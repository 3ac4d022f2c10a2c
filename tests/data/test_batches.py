"""Batches of an epoch (vaelab.data.batches): the whole epoch covered, shards of several processes disjoint."""

import torch

from vaelab import data


def test_batches_cover_the_epoch_and_shard_disjointly():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    seen = []
    for rank in range(2):
        gen = torch.Generator().manual_seed(3)
        seen.append(
            torch.cat(
                [x.flatten() for x, _ in data.batches(images, 3, shuffle=True, generator=gen, rank=rank, world_size=2)]
            )
        )
    assert set((seen[0] * 255).round().int().tolist()).isdisjoint((seen[1] * 255).round().int().tolist())
    assert len(seen[0]) == len(seen[1]) == 5
    whole = torch.cat([x for x, _ in data.batches(images, 4)])
    assert whole.dtype == torch.float32 and torch.allclose(whole.flatten() * 255, torch.arange(10.0))
