"""The figures of one run directory: each function opens what it needs, computes, and writes one PNG."""

from __future__ import annotations

from pathlib import Path

import torch

from vaelab import data, explore, plots
from vaelab.errors import ConfigError
from vaelab.run import Run, read_metrics
from vaelab.train import fixed_noise

FIGURES = ("reconstructions", "samples", "curves", "interpolation", "manifold", "latents", "kl_per_dim")
DEFAULT_PAIRS = [(0, 1), (2, 3), (4, 5), (6, 7)]


def _dataset(run: Run) -> data.Dataset:
    cfg = run.config["train"]
    return data.load(cfg["data"], size=tuple(cfg["size"]) if cfg.get("size") else None)


def _target(run: Run, out: str | Path | None, name: str) -> Path:
    return Path(out) if out else run.path / f"{name}.png"


def reconstructions(run: Run, out=None, n: int = 20, dataset: data.Dataset | None = None) -> Path:
    images = (dataset or _dataset(run)).test.images[:n]
    x = data.to_float(images).to(next(run.model.parameters()).device)
    path = _target(run, out, "reconstructions")
    plots.plot_reconstructions(path, x, run.model.reconstruct(x))
    return path


def samples(run: Run, out=None, n: int = 64, seed: int | None = None) -> Path:
    """Decoded from the run's fixed noise (or from N(0, I) drawn with `seed`)."""
    seed = run.config["train"]["seed"] if seed is None else seed
    z = fixed_noise(seed, run.model.latent_dim, n)
    path = _target(run, out, "samples")
    plots.plot_image_grid(
        path, run.model.sample(n, z=z), 8, f"samples decoded from z ~ N(0, I) (fixed noise, seed {seed})"
    )
    return path


def curves(run: Run, out=None) -> Path:
    _, epochs = read_metrics(run.path)
    if not epochs:
        raise ConfigError(f"{run.path}: metrics.jsonl holds no epoch yet")
    path = _target(run, out, "curves")
    plots.plot_curves(path, epochs)
    return path


def interpolation(run: Run, out=None, pairs=None, steps: int = 10, spherical: bool = False, dataset=None) -> Path:
    images = (dataset or _dataset(run)).test.images
    pairs = pairs or DEFAULT_PAIRS
    for i, j in pairs:
        if not (0 <= i < len(images) and 0 <= j < len(images)):
            raise ConfigError(f"pair: indices must lie in 0..{len(images) - 1} (test images), got {i} {j}")
    if steps < 2:
        raise ConfigError(f"steps: must be >= 2, got {steps}")
    rows = explore.interpolate(run.model, images, pairs, steps, spherical)
    path = _target(run, out, "interpolation")
    plots.plot_interpolations(path, rows, pairs, spherical)
    return path


def manifold(run: Run, out=None, lo: float = -1.5, hi: float = 1.5, n: int = 15, dims=None, dataset=None) -> Path:
    if not lo < hi:
        raise ConfigError(f"range: LO must be below HI, got {lo} {hi}")
    if not 2 <= n <= 60:
        raise ConfigError(f"n: must lie in 2..60, got {n}")
    plane = explore.default_plane(run.model, (dataset or _dataset(run)).test.images, tuple(dims) if dims else None)
    path = _target(run, out, "manifold")
    with torch.no_grad():
        grid = explore.manifold(run.model, plane, lo, hi, n)
    plots.plot_manifold(path, grid, n, lo, hi, plane.labels, plane.description)
    return path


def latents(run: Run, out=None, dataset=None) -> tuple[Path, Path]:
    """The scatter of test posterior means (by label) and the KL per dimension bar chart."""
    from vaelab.evaluate.latents import active_units, posterior_stats

    dataset = dataset or _dataset(run)
    split = dataset.test
    stats = posterior_stats(run.model, split.images, device=next(run.model.parameters()).device)
    means = stats["means"].float()
    if run.model.latent_dim == 1:
        coords = torch.stack([means[:, 0], torch.zeros(len(means))], 1)
        labels, description = ("z[0]", "(none)"), "latent dimension 0"
    else:
        plane = explore.coordinate_plane(2, (0, 1)) if run.model.latent_dim == 2 else explore.principal_plane(means)
        coords, labels, description = explore.project(means, plane), plane.labels, plane.description
    path = _target(run, out, "latents")
    plots.plot_latent_scatter(path, coords, split.labels, dataset.classes, labels, description)
    _, activity = active_units(stats["means"])
    kl_path = path.with_name("kl_per_dim.png") if out else run.path / "kl_per_dim.png"
    plots.plot_kl_per_dim(kl_path, stats["kl_per_dim"].tolist(), (activity > 0.01).tolist())
    return path, kl_path


def all_figures(run_dir: str | Path) -> list[Path]:
    """Every figure of a run, with default settings, into the run directory."""
    run = Run.open(run_dir)
    dataset = _dataset(run)
    if run.kind == "gan":  # no encoder: samples, curves, and the manifold over latent dimensions 0 and 1
        paths = [samples(run), curves(run)]
        if run.model.latent_dim >= 2:
            paths.append(manifold(run, dataset=dataset))
        return paths
    paths = [reconstructions(run, dataset=dataset), samples(run), curves(run), interpolation(run, dataset=dataset)]
    if run.model.latent_dim >= 2:
        paths.append(manifold(run, dataset=dataset))
    paths += list(latents(run, dataset=dataset))
    return paths
