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

TERM_TITLES = {
    "loss": "loss (recon + beta * KL)",
    "recon": "reconstruction, -log p(x|z) (nats)",
    "kl": "KL(q(z|x) || p(z)) (nats)",
    "sq_error": "squared error ||x - x_hat||^2",
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
    image.save(path)


def _save(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi)


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
