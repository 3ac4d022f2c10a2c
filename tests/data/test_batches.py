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


def test_flips_mirror_about_half_the_images_reproducibly():
    """`flip` mirrors each image left-right or leaves it whole (never anything else), about half of them, the same
    ones for the same generator state; without it, nothing is flipped."""
    images = torch.randint(0, 256, (400, 3, 4, 5), dtype=torch.uint8)
    plain = torch.cat([x for x, _ in data.batches(images, 64)])
    flipped = torch.cat([x for x, _ in data.batches(images, 64, flip=torch.Generator().manual_seed(3))])
    again = torch.cat([x for x, _ in data.batches(images, 64, flip=torch.Generator().manual_seed(3))])
    mirrored = (flipped == plain.flip(-1)).flatten(1).all(1)
    kept = (flipped == plain).flatten(1).all(1)
    assert (mirrored | kept).all() and torch.equal(flipped, again)
    assert 150 < int(mirrored.sum()) < 250
    assert torch.equal(plain, data.to_float(images))
