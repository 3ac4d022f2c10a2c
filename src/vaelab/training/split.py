"""The ELBO and its terms over a whole split: exact means per image (sums over images / count).

Used for the test terms logged every epoch and by `vaelab eval`."""

from __future__ import annotations

from collections.abc import Callable

import torch

from vaelab import data
from vaelab.device import World, sum_across
from vaelab.losses import binarize as binarize_images
from vaelab.losses import vae_terms
from vaelab.models import VAE


def split_means(
    model: torch.nn.Module,
    images: torch.Tensor,
    terms_of: Callable[[torch.Tensor, torch.Tensor | None, torch.Generator], dict[str, torch.Tensor]],
    *,
    labels: torch.Tensor | None = None,
    binarize: bool = False,
    seed: int = 0,
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
    world: World | None = None,
) -> dict[str, float]:
    """Means per image, over all of `images` (uint8), of the per-image terms `terms_of(x, y, generator)` gives
    for a batch (in eval mode, no gradients); exact whatever the batch size, summed across processes.

    Deterministic for a seed: the model's draws and any binarization come from a generator seeded with it,
    and with `binarize` the images are binarized the same way whatever the batch size."""
    world = world or World()
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    sums: dict[str, torch.Tensor] = {}
    count = torch.zeros((), dtype=torch.float64, device=device)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for x, y in data.batches(
            images, batch_size, labels=labels, rank=world.rank, world_size=world.size, device=device
        ):
            if binarize:
                x = binarize_images(x, generator)
            for name, value in terms_of(x, y, generator).items():
                sums[name] = sums.get(name, torch.zeros((), dtype=torch.float64, device=device)) + value.double().sum()
            count += x.shape[0]
    model.train(was_training)
    sums = sum_across({**sums, "_count": count}, world)
    count = sums.pop("_count")
    return {name: float(value / count) for name, value in sums.items()}


def split_terms(
    model: VAE,
    images: torch.Tensor,
    *,
    beta: float = 1.0,
    binarize: bool = False,
    seed: int = 0,
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
    world: World | None = None,
) -> dict[str, float]:
    """Means per image, over all of `images` (uint8), of every loss term of the VAE (`loss`, `recon`, `kl`, ...)."""

    def terms_of(x: torch.Tensor, y, generator: torch.Generator) -> dict[str, torch.Tensor]:
        out = model(x, generator)
        return vae_terms(model.likelihood, out.output, x, out.posterior, model.log_sigma, beta)

    return split_means(
        model, images, terms_of, binarize=binarize, seed=seed, batch_size=batch_size, device=device, world=world
    )
