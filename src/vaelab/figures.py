"""The figures of a run (and of a comparison study): each function computes from a `Run` and writes one PNG.

Which figures a run has is its kind's to say (`Kind.figures`); `plots` draws what these compute.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vaelab import data, latent_walks, plots, progress, samplers
from vaelab.checkpoint import check_writable
from vaelab.errors import ConfigError
from vaelab.noise import fixed_generator
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


def samples(
    run: Run, out=None, n: int = 64, seed: int | None = None, sampler: str = "prior", label: int | None = None
) -> Path:
    """Decoded from the run's fixed noise drawn from the prior (or with `seed`), or from a fitted `sampler`; a
    conditional kind draws class `label` when given."""
    if label is not None:
        if not run.kind.labels:
            raise ConfigError(f"label: a {run.kind.title} is not conditional; --label needs a kind with labels (cvae)")
        if not 0 <= label < run.model.classes:
            raise ConfigError(f"label: must lie in 0..{run.model.classes - 1}, got {label}")
    path = _target(
        run,
        out,
        "samples"
        if sampler == "prior" and label is None
        else f"samples-{sampler}" + (f"-class{label}" if label is not None else ""),
    )
    seed = run.config.seed if seed is None else seed
    if sampler == "prior":
        z, what = run.model.sample_prior(n, fixed_generator(seed)), "z ~ p(z)"
    else:
        fitted = samplers.load(run.path, sampler)
        z, what = fitted.sample(n, fixed_generator(seed)).to(_device(run)), f"z from the fitted {sampler} sampler"
    conditional = {"labels": label} if label is not None else {}
    if label is not None:
        what = f"{what}, class {label}"
    plots.plot_image_grid(
        path, run.model.sample(n, z=z, **conditional), 8, f"samples decoded from {what} (fixed noise, seed {seed})"
    )
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
    rows = latent_walks.interpolate(run.model, images, pairs, steps, spherical)
    plots.plot_interpolations(path, rows, pairs, spherical)
    return path


def plane(run: Run, dims=None) -> latent_walks.Plane:
    """The latent plane a run's manifold is drawn on (see `latent_walks.default_plane`)."""
    return latent_walks.default_plane(
        run.model, run.dataset().test.images, tuple(dims) if dims else None, run.kind.encoder
    )


def manifold(run: Run, out=None, lo: float = -1.5, hi: float = 1.5, n: int = 15, dims=None) -> Path:
    if not lo < hi:
        raise ConfigError(f"range: LO must be below HI, got {lo} {hi}")
    if not 2 <= n <= 60:
        raise ConfigError(f"n: must lie in 2..60, got {n}")
    path = _target(run, out, "manifold")
    chosen = plane(run, dims)
    with torch.no_grad():
        grid = latent_walks.manifold(run.model, chosen, lo, hi, n)
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
        chosen = (
            latent_walks.coordinate_plane(2, (0, 1))
            if run.model.latent_dim == 2
            else latent_walks.principal_plane(means)
        )
        coords, labels, description = latent_walks.project(means, chosen), chosen.labels, chosen.description
    plots.plot_latent_scatter(path, coords, split.labels, dataset.classes, labels, description)
    _, activity = active_units(stats["means"])
    kl_path = path.with_name("kl_per_dim.png") if out else run.figure_path("kl_per_dim")
    plots.plot_kl_per_dim(kl_path, stats["kl_per_dim"].tolist(), (activity > 0.01).tolist())
    return path, kl_path


def classes(run: Run, out=None, n_styles: int = 10, n: int = 9) -> tuple[Path, Path]:
    """A conditional kind's figures: rows of classes by columns of the same z (one style written as every class),
    and the manifold of each class (a grid over [-1.5, 1.5]^2 of the plane of `plane`, one panel per class)."""
    model, dataset = run.model, run.dataset()
    names = dataset.classes or [str(c) for c in range(model.classes)]
    z = model.sample_prior(n_styles, fixed_generator(run.config.seed))
    rows = torch.cat([model.sample(n_styles, z=z, labels=c) for c in range(len(names))])
    path = _target(run, out, "classes")
    plots.plot_image_grid(path, rows, n_styles, f"one row per class ({', '.join(names)}), one column per z ~ p(z)")
    manifold_path = path.with_name("class_manifolds.png") if out else run.figure_path("class_manifolds")
    if model.latent_dim >= 2:
        chosen = plane(run)
        panels = {}
        with torch.no_grad():
            for c, name in enumerate(names):
                grid = latent_walks.manifold(_Conditioned(model, c), chosen, -1.5, 1.5, n)
                panels[name] = plots.image_grid(grid, n, pad=0)
        plots.plot_side_by_side(manifold_path, panels, f"the manifold of each class ({chosen.description})", cols=5)
    return path, manifold_path


class _Conditioned:
    """A conditional model seen as an unconditional one that always draws class `label` (for `latent_walks`)."""

    def __init__(self, model, label: int):
        self.model, self.label = model, label

    def sample(self, n: int, generator=None, z=None):
        return self.model.sample(n, generator, z=z, labels=self.label)


DRAW = {
    "reconstructions": reconstructions,
    "samples": samples,
    "curves": curves,
    "interpolation": interpolation,
    "manifold": manifold,
    "latents": latents,
    "classes": classes,
}


def all_figures(run: Run, quiet: bool = True) -> list[Path]:
    """Every figure the run's kind has, with default settings, into the run directory (a progress bar on
    stderr unless `quiet`: on a large test split the latent figures take a while)."""
    paths: list[Path] = []
    names = [
        name
        for name in run.kind.figures
        if not (name == "manifold" and run.model.latent_dim < 2)
        and not (name == "interpolation" and len(run.dataset().test) < 2)
    ]
    with progress.bar(len(names), f"figures of {run.name}", quiet, "figure") as shown:
        for name in names:
            shown.set_postfix_str(name, refresh=False)
            drawn = DRAW[name](run)
            paths += list(drawn) if isinstance(drawn, tuple) else [drawn]
            shown.update(1)
    return paths


def study_figures(out: Path, runs: dict[str, Run], dataset: data.Dataset, seed: int) -> list[str]:
    """The side-by-side figures of a comparison study into `out`; returns the names of those drawn."""
    test_images = dataset.test.images
    x = data.to_float(test_images[:10])
    encoders = {n: r for n, r in runs.items() if r.kind.encoder}  # the others cannot reconstruct or interpolate images
    plots.plot_overlaid_curves(out / "curves.png", {n: r.read_metrics()[1] for n, r in runs.items()}, "test")
    drawn = ["curves"]
    plots.plot_side_by_side(
        out / "samples.png",
        {
            n: plots.image_grid(r.model.sample(36, z=r.model.sample_prior(36, fixed_generator(seed))), 6)
            for n, r in runs.items()
        },
        "samples from each member's prior p(z), the same noise seed for every member",
    )
    drawn.append("samples")
    if encoders:
        plots.plot_side_by_side(
            out / "reconstructions.png",
            {n: plots.image_grid(torch.cat([x, r.model.reconstruct(x)]), 10) for n, r in encoders.items()},
            "the same test images (top) reconstructed by each member (bottom)",
            cols=2,
        )
        drawn.append("reconstructions")
        if len(test_images) >= 2:
            plots.plot_side_by_side(
                out / "interpolation.png",
                {
                    n: plots.image_grid(latent_walks.interpolate(r.model, test_images, [(0, 1)], 10)[0], 10)
                    for n, r in encoders.items()
                },
                "the same pair of test images (0 -> 1) interpolated by each member",
                cols=2,
            )
            drawn.append("interpolation")
    manifolds = {}
    for n, r in runs.items():
        if r.model.latent_dim >= 2:
            chosen = plane(r)
            manifolds[f"{n} ({', '.join(chosen.labels)})"] = plots.image_grid(
                latent_walks.manifold(r.model, chosen), 15, pad=0
            )
    if manifolds:
        plots.plot_side_by_side(out / "manifold.png", manifolds, "decoded grids over [-1.5, 1.5]^2")
        drawn.append("manifold")
    return drawn
