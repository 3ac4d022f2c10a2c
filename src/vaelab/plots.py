"""Every figure of vaelab; the only module that imports matplotlib.

Figures are drawn on `matplotlib.figure.Figure` with the Agg canvas directly (no pyplot, no global state,
no display needed). Plain image grids, written every epoch, go through Pillow, which is much faster.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from vaelab.checkpoint import atomic_write

TERM_TITLES = {
    "loss": "loss (recon + beta * KL)",
    "recon": "reconstruction, -log p(x|z) (nats)",
    "kl": "KL(q(z|x) || p(z)) (nats)",
    "sq_error": "squared error ||x - x_hat||^2",
    "feature_recon": "feature-space reconstruction 0.5||D_l(x) - D_l(x~)||^2",
    "d_loss": "discriminator loss",
    "g_loss": "generator (decoder) adversarial loss",
    "d_real": "mean D(x) on real images",
    "d_fake": "mean D(G(z)) on generated images",
    "d_updated": "share of steps that updated D (gating)",
    "dec_adv_updated": "share of steps with the decoder's GAN term",
}


def image_grid(images: torch.Tensor, nrow: int, pad: int = 2, value: float = 1.0) -> np.ndarray:
    """`[N, C, H, W]` floats in [0, 1] -> one uint8 `[rows*(H+pad)+pad, nrow*(W+pad)+pad, C]` mosaic."""
    images = images.detach().float().cpu().clamp(0, 1)
    n, c, h, w = images.shape
    rows = math.ceil(n / nrow)
    grid = torch.full((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), value)
    for i in range(n):
        r, k = divmod(i, nrow)
        grid[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = images[
            i
        ]
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def save_grid(path: str | Path, images: torch.Tensor, nrow: int, scale: int = 2) -> None:
    """A bare image grid as PNG (Pillow), upscaled `scale` times with nearest-neighbour for legibility."""
    array = image_grid(images, nrow)
    image = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    atomic_write(Path(path), lambda temp: image.save(temp, format="PNG"))


def _save(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    FigureCanvasAgg(fig)
    atomic_write(Path(path), lambda temp: fig.savefig(temp, dpi=dpi, format="png"))


def _show(ax, array: np.ndarray, title: str | None = None) -> None:
    ax.imshow(array[..., 0] if array.shape[2] == 1 else array, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


def plot_reconstructions(
    path: str | Path, originals: torch.Tensor, reconstructions: torch.Tensor, title: str = ""
) -> None:
    """Test images (top row of each pair) above their reconstructions."""
    n = originals.shape[0]
    per_row = min(n, 10)
    pairs = []
    for start in range(0, n, per_row):
        pairs += [originals[start : start + per_row], reconstructions[start : start + per_row]]
    array = image_grid(torch.cat(pairs), per_row)
    fig = Figure(figsize=(per_row * 0.75 + 0.5, len(pairs) * 0.75 + 0.6), layout="constrained")
    _show(fig.add_subplot(), array, title or "test images (odd rows) and their reconstructions (even rows)")
    _save(fig, path)


def plot_image_grid(path: str | Path, images: torch.Tensor, nrow: int, title: str) -> None:
    fig = Figure(figsize=(nrow * 0.6 + 0.5, math.ceil(images.shape[0] / nrow) * 0.6 + 0.6), layout="constrained")
    _show(fig.add_subplot(), image_grid(images, nrow), title)
    _save(fig, path)


def plot_curves(path: str | Path, epochs: Sequence[dict], title: str = "") -> None:
    """One panel per logged term, train against test, per epoch."""
    terms = [t for t in epochs[0].get("train", {}) if t in epochs[0].get("test", {}) or t in TERM_TITLES]
    cols = min(3, len(terms))
    rows = math.ceil(len(terms) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    x = [e["epoch"] for e in epochs]
    for i, term in enumerate(terms):
        ax = fig.add_subplot(rows, cols, i + 1)
        for split, style in (("train", "-"), ("test", "--")):
            values = [e.get(split, {}).get(term) for e in epochs]
            if any(v is not None for v in values):
                ax.plot(x, [np.nan if v is None else v for v in values], style, marker="o", markersize=3, label=split)
        ax.set_title(TERM_TITLES.get(term, term), fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_interpolations(
    path: str | Path, rows: torch.Tensor, pairs: Sequence[tuple[int, int]], spherical: bool
) -> None:
    """`rows` `[P, S, C, H, W]`: one row per pair of test images, endpoints at the ends."""
    n_pairs, steps = rows.shape[:2]
    fig = Figure(figsize=(steps * 0.7 + 1.2, n_pairs * 0.75 + 0.7), layout="constrained")
    ax = fig.add_subplot()
    _show(
        ax,
        image_grid(rows.flatten(0, 1), steps),
        f"{'spherical' if spherical else 'linear'} interpolation between posterior means",
    )
    h = rows.shape[-2] + 2
    ax.set_yticks([2 + h * r + h / 2 - 1 for r in range(n_pairs)], [f"{i} -> {j}" for i, j in pairs], fontsize=8)
    _save(fig, path)


def plot_manifold(
    path: str | Path, images: torch.Tensor, n: int, lo: float, hi: float, labels: Sequence[str], description: str
) -> None:
    """The n x n grid of decoded latent points, with the plane's coordinates on the axes."""
    array = image_grid(images, n, pad=0)
    fig = Figure(figsize=(7, 7.4), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(
        array[..., 0] if array.shape[2] == 1 else array, cmap="gray", extent=(lo, hi, lo, hi), interpolation="nearest"
    )
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(f"decoded grid over [{lo:g}, {hi:g}]^2\n{description}", fontsize=9)
    _save(fig, path)


def plot_latent_scatter(
    path: str | Path,
    coords: torch.Tensor,
    labels: torch.Tensor | None,
    names: Sequence[str] | None,
    axis_labels: Sequence[str],
    description: str,
) -> None:
    """Test posterior means in a plane, coloured by label."""
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.add_subplot()
    c = coords.numpy()
    if labels is None:
        ax.scatter(c[:, 0], c[:, 1], s=4, alpha=0.6)
    else:
        scatter = ax.scatter(c[:, 0], c[:, 1], c=labels.numpy(), cmap="tab10", s=4, alpha=0.7)
        classes = sorted(set(labels.tolist()))
        handles = [ax.scatter([], [], color=scatter.cmap(scatter.norm(k)), s=12) for k in classes]
        ax.legend(handles, [names[k] if names else str(k) for k in classes], fontsize=7, markerscale=1.5, loc="best")
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(f"test posterior means\n{description}", fontsize=9)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_kl_per_dim(path: str | Path, kl_per_dim: Sequence[float], active: Sequence[bool] | None = None) -> None:
    fig = Figure(figsize=(max(4.0, 0.35 * len(kl_per_dim) + 1.5), 3.2), layout="constrained")
    ax = fig.add_subplot()
    colors = None if active is None else ["tab:blue" if a else "tab:gray" for a in active]
    ax.bar(range(len(kl_per_dim)), kl_per_dim, color=colors)
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("mean KL (nats)")
    ax.set_title(
        "KL per latent dimension (grey: inactive)" if active is not None else "KL per latent dimension", fontsize=10
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _save(fig, path)


def plot_overlaid_curves(path: str | Path, members: dict[str, list[dict]], split: str = "test") -> None:
    """One panel per term; one line per member (a comparison study)."""
    terms = []
    for epochs in members.values():
        for t in epochs[0].get(split, {}):
            if t not in terms:
                terms.append(t)
    cols = min(3, len(terms))
    rows = math.ceil(len(terms) / cols)
    fig = Figure(figsize=(4.6 * cols, 3.4 * rows), layout="constrained")
    for i, term in enumerate(terms):
        ax = fig.add_subplot(rows, cols, i + 1)
        for name, epochs in members.items():
            values = [e.get(split, {}).get(term) for e in epochs]
            if any(v is not None for v in values):
                ax.plot(
                    [e["epoch"] for e in epochs],
                    [np.nan if v is None else v for v in values],
                    marker="o",
                    markersize=2,
                    label=name,
                )
        ax.set_title(f"{split}: {TERM_TITLES.get(term, term)}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save(fig, path)


def plot_side_by_side(path: str | Path, panels: dict[str, np.ndarray], title: str, cols: int | None = None) -> None:
    """Several image mosaics (one per member), titled, on one figure."""
    cols = cols or min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    first = next(iter(panels.values()))
    aspect = first.shape[0] / first.shape[1]
    fig = Figure(figsize=(3.4 * cols, 3.4 * aspect * rows + 0.6), layout="constrained")
    for i, (name, array) in enumerate(panels.items()):
        _show(fig.add_subplot(rows, cols, i + 1), array, name)
    fig.suptitle(title)
    _save(fig, path)


def plot_traversals(
    path: str | Path, rows: torch.Tensor, values: Sequence[float], labels: Sequence[str], description: str
) -> None:
    """`rows` `[R, S, C, H, W]`: one latent dimension swept over `values` per row, labelled with `labels`."""
    n_rows, steps = rows.shape[:2]
    fig = Figure(figsize=(steps * 0.75 + 2.6, n_rows * 0.78 + 0.9), layout="constrained")
    ax = fig.add_subplot()
    _show(ax, image_grid(rows.flatten(0, 1), steps), description)
    h, w = rows.shape[-2] + 2, rows.shape[-1] + 2
    ax.set_yticks([2 + h * r + h / 2 - 1 for r in range(n_rows)], list(labels), fontsize=8)
    ax.set_xticks([2 + w * s + w / 2 - 1 for s in range(steps)], [f"{v:g}" for v in values], fontsize=7)
    _save(fig, path)


def plot_factor_heatmap(
    path: str | Path, matrix: np.ndarray, factors: Sequence[str], title: str, colorbar: str
) -> None:
    """`matrix` `[K, D]` (factors by latent dimensions) as a heat map, each cell written out."""
    k, d = matrix.shape
    fig = Figure(figsize=(max(4.5, 0.55 * d + 2.5), max(2.6, 0.5 * k + 1.4)), layout="constrained")
    ax = fig.add_subplot()
    top = max(float(matrix.max()), 1e-12)
    image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=top, aspect="auto", interpolation="nearest")
    for i in range(k):
        for j in range(d):
            shade = "black" if matrix[i, j] > 0.6 * top else "white"
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7, color=shade)
    ax.set_xticks(range(d), [str(j) for j in range(d)], fontsize=8)
    ax.set_yticks(range(k), list(factors), fontsize=8)
    ax.set_xlabel("latent dimension")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label=colorbar, shrink=0.9)
    _save(fig, path)
