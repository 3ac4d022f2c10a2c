"""Walks through a trained model's latent space: interpolations, manifold grids, principal planes.

Pure computations on a model and images; `plots` draws what these return.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vaelab import data
from vaelab.errors import ConfigError
from vaelab.models import VAE


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation, `[S, D]` for S values of t."""
    return a[None] + t[:, None] * (b - a)[None]


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985), which keeps the norm typical of N(0, I) samples in high
    dimension (White 2016); falls back to lerp for (nearly) parallel vectors."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp(min=1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if omega.abs() < 1e-4:
        return lerp(a, b, t)
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so)[:, None] * a[None] + (torch.sin(t * omega) / so)[:, None] * b[None]


def interpolate(
    model: VAE, images: torch.Tensor, pairs: list[tuple[int, int]], steps: int = 10, spherical: bool = False
) -> torch.Tensor:
    """Decoded images along the path between the posterior means of each pair: `[P, steps, C, H, W]`.
    The first and last columns are the decoded endpoints; `images` is uint8."""
    device = next(model.parameters()).device
    t = torch.linspace(0, 1, steps, device=device)
    rows = []
    with torch.no_grad():
        for i, j in pairs:
            means = model.encode(data.to_float(images[[i, j]]).to(device)).mean
            path = (slerp if spherical else lerp)(means[0], means[1], t)
            rows.append(model.sample(steps, z=path))
    return torch.stack(rows)


@dataclass
class Plane:
    """A 2-D plane of the latent space: z = origin + u * axes[0] + v * axes[1]."""

    origin: torch.Tensor  # [D]
    axes: torch.Tensor  # [2, D]
    labels: tuple[str, str]
    description: str


def coordinate_plane(latent_dim: int, dims: tuple[int, int]) -> Plane:
    i, j = dims
    axes = torch.zeros(2, latent_dim)
    axes[0, i], axes[1, j] = 1.0, 1.0
    rest = "" if latent_dim == 2 else ", other dimensions at 0"
    return Plane(torch.zeros(latent_dim), axes, (f"z[{i}]", f"z[{j}]"), f"latent dimensions {i} and {j}{rest}")


def principal_plane(means: torch.Tensor) -> Plane:
    """The plane through the mean of the posterior means spanned by their two principal components."""
    centre = means.mean(0)
    _, singular, vh = torch.linalg.svd(means - centre, full_matrices=False)
    share = (singular[:2] ** 2).sum() / (singular**2).sum()
    return Plane(
        centre,
        vh[:2],
        ("PC1", "PC2"),
        f"principal plane (PC1, PC2) of the test posterior means, {share:.0%} of their variance",
    )


def posterior_means(model: VAE, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    device = next(model.parameters()).device
    with torch.no_grad():
        return torch.cat([model.encode(x).mean.cpu() for x, _ in data.batches(images, batch_size, device=device)])


def default_plane(model: VAE, images: torch.Tensor, dims: tuple[int, int] | None = None, encoder: bool = True) -> Plane:
    """The chosen `dims`; else dimensions (0, 1) of a 2-D latent space or of a model without an `encoder`
    (a GAN's generator: no posterior means to take principal components of); else the principal plane."""
    if dims is not None:
        if max(dims) >= model.latent_dim or min(dims) < 0 or dims[0] == dims[1]:
            raise ConfigError(f"dims: need two different dimensions in 0..{model.latent_dim - 1}, got {list(dims)}")
        return coordinate_plane(model.latent_dim, dims)
    if model.latent_dim == 1:
        raise ConfigError("a latent manifold needs a latent dimension of at least 2")
    if model.latent_dim == 2 or not encoder:
        return coordinate_plane(model.latent_dim, (0, 1))
    return principal_plane(posterior_means(model, images))


def manifold(model: VAE, plane: Plane, lo: float = -1.5, hi: float = 1.5, n: int = 15) -> torch.Tensor:
    """Decode an n x n grid over [lo, hi]^2 of the plane: `[n * n, C, H, W]`, rows from top (v = hi) down."""
    u = torch.linspace(lo, hi, n)
    v = torch.linspace(hi, lo, n)
    vv, uu = torch.meshgrid(v, u, indexing="ij")  # row-major: each row one v, columns increasing u
    z = plane.origin + uu.reshape(-1, 1) * plane.axes[0] + vv.reshape(-1, 1) * plane.axes[1]
    return model.sample(n * n, z=z)


def project(means: torch.Tensor, plane: Plane) -> torch.Tensor:
    """Coordinates `[N, 2]` of posterior means in the plane (orthogonal projection)."""
    return (means - plane.origin) @ plane.axes.T


def traverse(model: VAE, base: torch.Tensor, dims: list[int], values: torch.Tensor) -> torch.Tensor:
    """Latent traversals: for each of `dims`, that dimension of `base` `[D]` set to each of `values` `[S]` (the
    others kept), decoded: `[len(dims), S, C, H, W]`."""
    z = base.reshape(1, 1, -1).repeat(len(dims), len(values), 1)  # [R, S, D]
    for row, d in enumerate(dims):
        z[row, :, d] = values
    images = model.sample(z.shape[0] * z.shape[1], z=z.reshape(-1, z.shape[-1]))
    return images.reshape(len(dims), len(values), *images.shape[1:]).cpu()
