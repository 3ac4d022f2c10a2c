"""The seeded noise of a run: offsets that give each use its own stream, and the fixed sampling batch."""

from __future__ import annotations

import torch

EVAL_SEED_OFFSET = 10_000  # test-time noise and binarization use their own seeded generator
SAMPLE_SEED_OFFSET = 20_000  # the fixed N(0, I) batch behind every sample grid of a run
N_FIXED = 64


def fixed_noise(seed: int, latent_dim: int, n: int = N_FIXED) -> torch.Tensor:
    """The run's fixed batch of N(0, I) latents, so that sample grids are comparable across epochs and runs."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed + SAMPLE_SEED_OFFSET))


def fixed_generator(seed: int) -> torch.Generator:
    """The generator behind `fixed_noise`: `model.sample_prior(n, fixed_generator(seed))` draws the run's fixed
    batch from the model's own prior (for N(0, I), the very latents of `fixed_noise(seed, D, n)`)."""
    return torch.Generator().manual_seed(seed + SAMPLE_SEED_OFFSET)
