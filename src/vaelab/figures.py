"""The figures of a run: each draw function computes from a `Run` and writes one PNG (or two), and each figure is
one declaration (`figure.Figure`) in `FIGURES` below: its name, caption, what the kind and data must offer, its
draw function and its command. The report, the `vaelab` figure commands and the figures of every run are derived
from these declarations; `plots` draws what the functions compute. A comparison study's figures are in
`study_figures`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vaelab import data, latent_walks, plots, progress, samplers
from vaelab.checkpoint import check_writable
from vaelab.errors import ConfigError
from vaelab.figure import Figure, argument
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
    pairs = [tuple(p) for p in pairs] if pairs else default_pairs(len(images))
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


def manifold(run: Run, out=None, span: tuple[float, float] = (-1.5, 1.5), n: int = 15, dims=None) -> Path:
    """The decoded grid of `n` x `n` points over `span`^2 of the plane of `plane` (`dims`, or the default)."""
    lo, hi = span
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


# At most this many test images are encoded to relate latent dimensions to the data's factors (a seeded draw).
FACTOR_IMAGES = 5000


def factor_information(run: Run, n_images: int = FACTOR_IMAGES) -> dict:
    """How much each latent dimension tells about each known factor of the data, on (at most `n_images` of) the test
    split: I(v_k; z_j) of the posterior means divided by H(v_k) (`evaluate.disentanglement`: MIG's normalization, 0
    to 1), `[K, D]`; with the factors' names, the dimensions' activity (variance of the means) and their mean KL."""
    import numpy as np

    from vaelab.evaluate import disentanglement as dis
    from vaelab.evaluate.latents import posterior_stats

    dataset = _with_factors(run)
    images, factors = dataset.test.images, dataset.test.factors
    pick = torch.arange(images.shape[0])
    if images.shape[0] > n_images:
        pick = torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(0))[:n_images].sort().values
    stats = posterior_stats(run.model, images[pick], device=_device(run))
    codes, values = stats["means"].numpy(), factors[pick].numpy()
    entropies = dis.factor_entropies(values)
    mi = dis.mutual_information(codes, values)  # [K, D] nats
    normalized = np.divide(mi, entropies[:, None], out=np.zeros_like(mi), where=entropies[:, None] > 0)
    return {
        "normalized": normalized,
        "factors": list(dataset.factor_names),
        "activity": stats["means"].var(dim=0, unbiased=False),
        "kl_per_dim": stats["kl_per_dim"],
    }


def _with_factors(run: Run):
    """The run's data set, refused in one line when it has no known factors."""
    dataset = run.dataset()
    if dataset.test.factors is None or dataset.factor_names is None:
        raise ConfigError(
            f"{run.path}: its data set {dataset.name} has no known factors to relate the latent dimensions to; "
            "train on data that has them (--data dsprites or dsprites:N)"
        )
    return dataset


def dimension_labels(info: dict) -> list[str]:
    """`dim 3: posX (0.62)`: each latent dimension with the factor it tells most about, and the share of that
    factor's entropy it holds."""
    normalized, names = info["normalized"], info["factors"]
    labels = []
    for d in range(normalized.shape[1]):
        k = int(normalized[:, d].argmax())
        labels.append(f"dim {d}: {names[k]} ({normalized[k, d]:.2f})")
    return labels


def traversals(run: Run, out=None, image: int = 0, span: tuple[float, float] = (-2.5, 2.5), steps: int = 9) -> Path:
    """Latent traversals: each active latent dimension (most KL first; every dimension when none is active) swept over
    `span` in `steps`, the others fixed at test image `image`'s posterior mean; each row labelled with the factor
    that dimension tells most about (`dimension_labels`)."""
    from vaelab.evaluate.latents import ACTIVE_THRESHOLD

    lo, hi = span
    if not lo < hi:
        raise ConfigError(f"range: LO must be below HI, got {lo} {hi}")
    if not 2 <= steps <= 30:
        raise ConfigError(f"steps: must lie in 2..30, got {steps}")
    test = _with_factors(run).test.images
    if not 0 <= image < len(test):
        raise ConfigError(f"image: must lie in 0..{len(test) - 1} (test images), got {image}")
    path = _target(run, out, "traversals")
    info = factor_information(run)
    active = (info["activity"] > ACTIVE_THRESHOLD).nonzero().flatten().tolist()
    dims = sorted(active or range(run.model.latent_dim), key=lambda d: -float(info["kl_per_dim"][d]))
    base = run.model.encode(data.to_float(test[image : image + 1]).to(_device(run))).mean[0].detach()
    values = torch.linspace(lo, hi, steps)
    with torch.no_grad():
        rows = latent_walks.traverse(run.model, base, dims, values.to(base.device))
    labels = dimension_labels(info)
    described = f"{len(active)} of {run.model.latent_dim} dimensions active" if active else "no dimension is active"
    plots.plot_traversals(
        path,
        rows,
        values.tolist(),
        [labels[d] for d in dims],
        f"traversals of test image {image}: each dimension over [{lo:g}, {hi:g}] ({described})\n"
        "label: the factor it tells most about, I(v; z) / H(v)",
    )
    return path


def factor_map(run: Run, out=None) -> Path:
    """The factors-by-dimensions heat map of I(v_k; z_j) / H(v_k) (`factor_information`)."""
    _with_factors(run)
    path = _target(run, out, "factor-information")
    info = factor_information(run)
    plots.plot_factor_heatmap(
        path,
        info["normalized"],
        info["factors"],
        "what each latent dimension tells about each factor (test posterior means)",
        "I(v; z) / H(v)",
    )
    return path


def _factors(run: Run) -> bool:
    return run.dataset().test.factors is not None


FIGURES: dict[str, Figure] = {}


def register(figure: Figure) -> Figure:
    """Add a figure (after those registered before it: the report shows them in this order)."""
    FIGURES[figure.name] = figure
    return figure


def unregister(name: str) -> None:
    FIGURES.pop(name, None)


def for_kind(kind) -> list[Figure]:
    """The figures a run of `kind` can have, in the report's order."""
    return [f for f in FIGURES.values() if f.applies(kind)]


def names(kind) -> tuple[str, ...]:
    """The names of the figures drawn for a run of `kind` (each if the run's model and data allow it: `when`)."""
    return tuple(f.name for f in for_kind(kind) if f.default)


def captions() -> list[tuple[str, str]]:
    """(file name, caption) of every file a figure can write, in the report's order."""
    return [item for f in FIGURES.values() for item in f.files()]


def all_figures(run: Run, quiet: bool = True) -> list[Path]:
    """Every figure of the run's kind that its model and data allow, with default settings, into the run
    directory (a progress bar on stderr unless `quiet`: on a large test split the latent figures take a while)."""
    paths: list[Path] = []
    chosen = [f for f in for_kind(run.kind) if f.default and (f.when is None or f.when(run))]
    with progress.bar(len(chosen), f"figures of {run.name}", quiet, "figure") as shown:
        for figure in chosen:
            shown.set_postfix_str(figure.name, refresh=False)
            drawn = figure.draw(run)
            paths += list(drawn) if isinstance(drawn, tuple) else [drawn]
            shown.update(1)
    return paths


def _two_test_images(run: Run) -> bool:
    return len(run.dataset().test) >= 2


def _a_plane(run: Run) -> bool:
    return run.model.latent_dim >= 2


for _figure in (
    Figure(
        "curves",
        "Training curves: every loss term, train (solid) against test (dashed), per epoch.",
        curves,
    ),
    Figure(
        "reconstructions",
        "Test images (odd rows) above their reconstructions from the posterior mean (even rows).",
        reconstructions,
        needs=("encoder",),
        command="reconstruct",
        help="test images above their reconstructions",
        arguments=(argument("--n", type=int, default=20, bounds=(1, 200)),),
    ),
    Figure(
        "samples",
        "Samples decoded from a fixed batch of z ~ N(0, I): comparable across epochs and runs.",
        samples,
        command="sample",
        help="grid of images decoded from a fixed batch of z ~ N(0, I)",
        arguments=(
            argument("--n", type=int, default=64, help="number of samples (default 64)", bounds=(1, 1024)),
            argument("--seed", type=int, help="noise seed (default: the run's seed, as in its training figures)"),
            argument(
                "--sampler", default="prior", help="prior (default), or a fitted sampler (gmm: vaelab fit-sampler)"
            ),
            argument("--label", type=int, help="a conditional kind (cvae): draw this class"),
        ),
    ),
    Figure(
        "interpolation",
        "Interpolation between the posterior means of pairs of test images.",
        interpolation,
        needs=("encoder",),
        when=_two_test_images,
        command="interpolate",
        help="interpolations between test images through the latent space",
        arguments=(
            argument(
                "--pair",
                dest="pairs",
                type=int,
                nargs=2,
                action="append",
                metavar=("I", "J"),
                help="test image indices; repeat for several pairs",
            ),
            argument("--steps", type=int, default=10, bounds=(2, 100)),
            argument("--spherical", action="store_true", help="spherical (slerp) instead of linear interpolation"),
        ),
    ),
    Figure(
        "manifold",
        "The latent manifold: decoded points of a regular grid over [-1.5, 1.5]^2.",
        manifold,
        when=_a_plane,
        command="manifold",
        help="decode a regular grid of latent points",
        arguments=(
            argument("--range", dest="span", type=float, nargs=2, default=(-1.5, 1.5), metavar=("LO", "HI")),
            argument("--n", type=int, default=15, help="grid side (default 15)"),
            argument(
                "--dims",
                type=int,
                nargs=2,
                metavar=("I", "J"),
                help="latent dimensions of the plane (others at 0); default: the principal plane",
            ),
        ),
    ),
    Figure(
        "latents",
        "Test posterior means, coloured by label.",
        latents,
        needs=("encoder",),
        also=(("kl_per_dim", "Mean KL per latent dimension: the dimensions the model actually uses."),),
        command="latents",
        help="test posterior means by label, and KL per dimension",
    ),
    Figure(
        "traversals",
        "Latent traversals: each active dimension swept over [-2.5, 2.5] with the others at a test image's posterior "
        "mean, labelled with the factor of the data it tells most about and the share I(v; z) / H(v) of that factor.",
        traversals,
        needs=("encoder",),
        when=_factors,
        command="traverse",
        help="latent traversals labelled with the data's factors (data with known factors: dsprites)",
        arguments=(
            argument("--image", type=int, default=0, help="the test image whose posterior mean is the start"),
            argument("--range", dest="span", type=float, nargs=2, default=(-2.5, 2.5), metavar=("LO", "HI")),
            argument("--steps", type=int, default=9, bounds=(2, 30)),
        ),
    ),
    Figure(
        "factor-information",
        "What each latent dimension tells about each factor of the data: I(v_k; z_j) / H(v_k) of the test posterior "
        "means (20 equal-width bins, as MIG): a disentangled code has one bright cell per row and per column.",
        factor_map,
        needs=("encoder",),
        when=_factors,
        command="factor-map",
        help="heat map of the mutual information between factors and latent dimensions (data with known factors)",
    ),
    Figure(
        "samples-gmm",
        "Samples decoded from the Gaussian mixture fitted to the training posterior means (vaelab fit-sampler).",
        lambda run, out=None: samples(run, out, sampler="gmm"),
        needs=("encoder",),
        default=False,
    ),
    Figure(
        "classes",
        "A conditional model: one row per class, one column per z: the same style written as every class.",
        classes,
        needs=("labels",),
        also=(("class_manifolds", "A conditional model: the latent manifold of each class."),),
    ),
):
    register(_figure)
