"""How the model uses its latent space: KL per dimension and active units (Burda et al. 2016, sec. 5.2)."""

from __future__ import annotations

import torch

from vaelab import data
from vaelab.models import VAE

ACTIVE_THRESHOLD = 0.01  # a unit is active when Cov_x(E_q[z_u | x]) > 0.01


def posterior_stats(model: VAE, images: torch.Tensor, batch_size: int = 1000, device="cpu") -> dict[str, torch.Tensor]:
    """Posterior means `[N, D]` and the mean KL per dimension `[D]` over `images` (uint8)."""
    means, kl_sum = [], torch.zeros(model.latent_dim, dtype=torch.float64)
    model.eval()
    with torch.inference_mode():
        for x, _ in data.batches(images, batch_size, device=device):
            q = model.encode(x)
            means.append(q.mean.double().cpu())
            kl_sum += q.kl_per_dim().double().sum(0).cpu()
    return {"means": torch.cat(means), "kl_per_dim": kl_sum / images.shape[0]}


def active_units(means: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> tuple[int, torch.Tensor]:
    """(number of active units, the activity Cov_x(E_q[z]) of each dimension) from posterior means `[N, D]`."""
    activity = means.var(dim=0, unbiased=False)
    return int((activity > threshold).sum()), activity


def collapse_warning(n_active: int, latent_dim: int, kl_per_dim: torch.Tensor) -> str | None:
    if n_active == 0:
        return f"posterior collapse: none of the {latent_dim} latent dimensions is active (total KL {float(kl_per_dim.sum()):.3f} nats); the decoder ignores z"
    if n_active < latent_dim:
        return f"partial posterior collapse: {latent_dim - n_active} of {latent_dim} latent dimensions inactive (their q(z|x) stays at the prior)"
    return None
