"""The metrics of `vaelab eval` that need q(z|x): how the latent space is used, and how well images come back.

- `latents`: the KL per dimension, the active units (Burda et al. 2016, sec. 5.2) and a collapse warning;
- `reconstruction`: the mean squared error per pixel and the PSNR of reconstructions from the posterior means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vaelab import data
from vaelab.evaluate.latents import active_units, collapse_warning, posterior_stats
from vaelab.evaluate.metric import Context, Metric, Section


@dataclass
class LatentsResult(Section):
    latent_dim: int
    active_units: int
    kl_per_dim: list[float]
    activity: list[float]  # Cov_x(E_q[z_u | x]) per dimension
    warning: str | None = None


@dataclass
class ReconstructionResult(Section):
    mse: float  # per pixel, images in [0, 1]
    psnr_db: float  # peak 1


def measure_latents(ctx: Context) -> tuple[LatentsResult, list[str]]:
    stats = posterior_stats(ctx.model, ctx.images, device=ctx.device)
    n_active, activity = active_units(stats["means"])
    warning = collapse_warning(n_active, ctx.model.latent_dim, stats["kl_per_dim"])
    result = LatentsResult(
        latent_dim=ctx.model.latent_dim,
        active_units=n_active,
        kl_per_dim=stats["kl_per_dim"].tolist(),
        activity=activity.tolist(),
        warning=warning,
    )
    return result, [warning] if warning else []


def reconstruction_error(model, images, device) -> ReconstructionResult:
    """MSE per pixel and PSNR (dB, peak 1) of reconstructions from the posterior means."""
    sq, count = 0.0, 0
    for x, _ in data.batches(images, 1000, device=device):
        sq += float((model.reconstruct(x) - x).double().pow(2).sum())
        count += x.numel()
    mse = sq / count
    return ReconstructionResult(mse=mse, psnr_db=10 * math.log10(1.0 / mse) if mse > 0 else math.inf)


def latents_rows(lat: LatentsResult) -> list[tuple[str, str]]:
    kl = " ".join(f"{v:.2f}" for v in lat.kl_per_dim[:16]) + (" ..." if lat.latent_dim > 16 else "")
    return [("active units", f"{lat.active_units} of {lat.latent_dim}"), ("KL per dimension", kl)]


LATENTS = Metric(
    name="latents",
    result=LatentsResult,
    measure=measure_latents,
    rows=latents_rows,
    needs=("encoder",),
    columns=("active units",),
    cells=lambda lat: [f"{lat.active_units}/{lat.latent_dim}"],
)
RECONSTRUCTION = Metric(
    name="reconstruction",
    result=ReconstructionResult,
    measure=lambda ctx: (reconstruction_error(ctx.model, ctx.images, ctx.device), []),
    rows=lambda rec: [("reconstruction MSE / PSNR", f"{rec.mse:.5f} / {rec.psnr_db:.2f} dB")],
    needs=("encoder",),
    columns=("MSE",),
    cells=lambda rec: [rec.mse],
)
