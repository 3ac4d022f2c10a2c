"""The figures of a run (and of a comparison study): each function computes from a `Run` and writes one PNG.

Which figures a run has is its kind's to say (`Kind.figures`); `plots` draws what these compute.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vaelab import data, explore, plots
from vaelab.checkpoint import check_writable
from vaelab.errors import ConfigError
from vaelab.noise import fixed_noise
from vaelab.run import Run


def _target(run: Run, out: str | Path | None, name: str) -> Path:
    """Where a figure goes, checked before any work: RUN/<name>.png, or `out`, a .png in a writable folder."""
    if not out:
        check_writable(run.path)
        return run.figure_path(name)
    path = Path(out)
    if path.suffix.lower() != ".png" or path.is_dir():
        raise ConfigError(f"--out: must name a .png file, got {out}")
    check_writable(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _device(run: Run) -> torch.device:
    return next(run.model.parameters()).device


def default_pairs(n_images: int, n_pairs: int = 4) -> list[tuple[int, int]]:
    """(0, 1), (2, 3)... as many pairs of test images as there are, up to `n_pairs`."""
    return [(i, i + 1) for i in range(0, min(2 * n_pairs, n_images - 1), 2)]


def reconstructions(run: Run, out=None, n: int = 20) -> Path:
    path = _target(run, out, "reconstructions")
    x = data.to_float(run.dataset().test.images[:n]).to(_device(run))
    plots.plot_reconstructions(path, x, run.model.reconstruct(x))
    return path


def samples(run: Run, out=None, n: int = 64, seed: int | None = None) -> Path:
    """Decoded from the run's fixed noise (or from N(0, I) drawn with `seed`)."""
    path = _target(run, out, "samples")
    seed = run.config.seed if seed is None else seed
    z = fixed_noise(seed, run.model.latent_dim, n)
    plots.plot_image_grid(path, run.model.sample(n, z=z), 8, f"samples decoded from z ~ N(0, I) (fixed noise, seed {seed})")
    return path


def curves(run: Run, out=None) -> Path:
    path = _target(run, out, "curves")
    _, epochs = run.read_metrics()
    if not epochs:
        raise ConfigError(f"{run.metrics_path}: holds no epoch yet")
    plots.plot_curves(path, epochs)
    return path


def interpolation(run: Run, out=None, pairs=None, steps: int = 10, spherical: bool = False) -> Path:
    path = _target(run, out, "interpolation")
    images = run.dataset().test.images
    pairs = pairs or default_pairs(len(images))
    if not pairs:
        raise ConfigError(f"interpolation: needs at least 2 test images, the data set has {len(images)}")
    for i, j in pairs:
        if not (0 <= i < len(images) and 0 <= j < len(images)):
            raise ConfigError(f"pair: indices must lie in 0..{len(images) - 1} (test images), got {i} {j}")
    if steps < 2:
        raise ConfigError(f"steps: must be >= 2, got {steps}")
    rows = explore.interpolate(run.model, images, pairs, steps, spherical)
    plots.plot_interpolations(path, rows, pairs, spherical)
    return path


def plane(run: Run, dims=None) -> explore.Plane:
    """The latent plane a run's manifold is drawn on (see `explore.default_plane`)."""
    return explore.default_plane(run.model, run.dataset().test.images, tuple(dims) if dims else None, run.kind.encoder)


def manifold(run: Run, out=None, lo: float = -1.5, hi: float = 1.5, n: int = 15, dims=None) -> Path:
    if not lo < hi:
        raise ConfigError(f"range: LO must be below HI, got {lo} {hi}")
    if not 2 <= n <= 60:
        raise ConfigError(f"n: must lie in 2..60, got {n}")
    path = _target(run, out, "manifold")
    chosen = plane(run, dims)
    with torch.no_grad():
        grid = explore.manifold(run.model, chosen, lo, hi, n)
    plots.plot_manifold(path, grid, n, lo, hi, chosen.labels, chosen.description)
    return path


def latents(run: Run, out=None) -> tuple[Path, Path]:
    """The scatter of test posterior means (by label) and the KL per dimension bar chart."""
    from vaelab.evaluate.latents import active_units, posterior_stats

    path = _target(run, out, "latents")
    dataset = run.dataset()
    split = dataset.test
    stats = posterior_stats(run.model, split.images, device=_device(run))
    means = stats["means"].float()
    if run.model.latent_dim == 1:
        coords = torch.stack([means[:, 0], torch.zeros(len(means))], 1)
        labels, description = ("z[0]", "(none)"), "latent dimension 0"
    else:
        chosen = explore.coordinate_plane(2, (0, 1)) if run.model.latent_dim == 2 else explore.principal_plane(means)
        coords, labels, description = explore.project(means, chosen), chosen.labels, chosen.description
    plots.plot_latent_scatter(path, coords, split.labels, dataset.classes, labels, description)
    _, activity = active_units(stats["means"])
    kl_path = path.with_name("kl_per_dim.png") if out else run.figure_path("kl_per_dim")
    plots.plot_kl_per_dim(kl_path, stats["kl_per_dim"].tolist(), (activity > 0.01).tolist())
    return path, kl_path


DRAW = {"reconstructions": reconstructions, "samples": samples, "curves": curves, "interpolation": interpolation,
        "manifold": manifold, "latents": latents}  # fmt: skip


def all_figures(run: Run) -> list[Path]:
    """Every figure the run's kind has, with default settings, into the run directory."""
    paths: list[Path] = []
    for name in run.kind.figures:
        if name == "manifold" and run.model.latent_dim < 2:
            continue
        if name == "interpolation" and len(run.dataset().test) < 2:
            continue
        drawn = DRAW[name](run)
        paths += list(drawn) if isinstance(drawn, tuple) else [drawn]
    return paths


def study_figures(out: Path, runs: dict[str, Run], dataset: data.Dataset, seed: int) -> list[str]:
    """The side-by-side figures of a comparison study into `out`; returns the names of those drawn."""
    test_images = dataset.test.images
    x = data.to_float(test_images[:10])
    encoders = {n: r for n, r in runs.items() if r.kind.encoder}  # the others cannot reconstruct or interpolate images
    plots.plot_overlaid_curves(out / "curves.png", {n: r.read_metrics()[1] for n, r in runs.items()}, "test")
    drawn = ["curves"]
    plots.plot_side_by_side(out / "samples.png",
                            {n: plots.image_grid(r.model.sample(36, z=fixed_noise(seed, r.model.latent_dim, 36)), 6) for n, r in runs.items()},
                            "samples from z ~ N(0, I), the same noise seed for every member")  # fmt: skip
    drawn.append("samples")
    if encoders:
        plots.plot_side_by_side(out / "reconstructions.png",
                                {n: plots.image_grid(torch.cat([x, r.model.reconstruct(x)]), 10) for n, r in encoders.items()},
                                "the same test images (top) reconstructed by each member (bottom)", cols=2)  # fmt: skip
        drawn.append("reconstructions")
        if len(test_images) >= 2:
            plots.plot_side_by_side(out / "interpolation.png",
                                    {n: plots.image_grid(explore.interpolate(r.model, test_images, [(0, 1)], 10)[0], 10) for n, r in encoders.items()},
                                    "the same pair of test images (0 -> 1) interpolated by each member", cols=2)  # fmt: skip
            drawn.append("interpolation")
    manifolds = {}
    for n, r in runs.items():
        if r.model.latent_dim >= 2:
            chosen = plane(r)
            manifolds[f"{n} ({', '.join(chosen.labels)})"] = plots.image_grid(explore.manifold(r.model, chosen), 15, pad=0)
    if manifolds:
        plots.plot_side_by_side(out / "manifold.png", manifolds, "decoded grids over [-1.5, 1.5]^2")
        drawn.append("manifold")
    return drawn
