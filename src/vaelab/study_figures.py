"""The figures of a comparison study: every member side by side, one declaration (`figure.StudyFigure`) each in
`STUDY_FIGURES`, in the report's order. A draw function returns False when no member has anything to show."""

from __future__ import annotations

from pathlib import Path

import torch

from vaelab import data, latent_walks, plots
from vaelab.figure import StudyFigure
from vaelab.figures import plane
from vaelab.noise import fixed_generator
from vaelab.run import Run


def _encoders(runs: dict[str, Run]) -> dict[str, Run]:
    """The members with an encoder: the others cannot reconstruct or interpolate images."""
    return {n: r for n, r in runs.items() if r.kind.encoder}


def curves(path: Path, runs: dict[str, Run], dataset: data.Dataset, seed: int) -> bool:
    plots.plot_overlaid_curves(path, {n: r.read_metrics()[1] for n, r in runs.items()}, "test")
    return True


def samples(path: Path, runs: dict[str, Run], dataset: data.Dataset, seed: int) -> bool:
    plots.plot_side_by_side(
        path,
        {
            n: plots.image_grid(r.model.sample(36, z=r.model.sample_prior(36, fixed_generator(seed))), 6)
            for n, r in runs.items()
        },
        "samples from each member's prior p(z), the same noise seed for every member",
    )
    return True


def reconstructions(path: Path, runs: dict[str, Run], dataset: data.Dataset, seed: int) -> bool:
    encoders = _encoders(runs)
    if not encoders:
        return False
    x = data.to_float(dataset.test.images[:10])
    plots.plot_side_by_side(
        path,
        {n: plots.image_grid(torch.cat([x, r.model.reconstruct(x)]), 10) for n, r in encoders.items()},
        "the same test images (top) reconstructed by each member (bottom)",
        cols=2,
    )
    return True


def interpolation(path: Path, runs: dict[str, Run], dataset: data.Dataset, seed: int) -> bool:
    encoders, test_images = _encoders(runs), dataset.test.images
    if not encoders or len(test_images) < 2:
        return False
    plots.plot_side_by_side(
        path,
        {
            n: plots.image_grid(latent_walks.interpolate(r.model, test_images, [(0, 1)], 10)[0], 10)
            for n, r in encoders.items()
        },
        "the same pair of test images (0 -> 1) interpolated by each member",
        cols=2,
    )
    return True


def manifolds(path: Path, runs: dict[str, Run], dataset: data.Dataset, seed: int) -> bool:
    grids = {}
    for n, r in runs.items():
        if r.model.latent_dim >= 2:
            chosen = plane(r)
            grids[f"{n} ({', '.join(chosen.labels)})"] = plots.image_grid(
                latent_walks.manifold(r.model, chosen), 15, pad=0
            )
    if not grids:
        return False
    plots.plot_side_by_side(path, grids, "decoded grids over [-1.5, 1.5]^2")
    return True


STUDY_FIGURES: dict[str, StudyFigure] = {}


def register(figure: StudyFigure) -> StudyFigure:
    STUDY_FIGURES[figure.name] = figure
    return figure


def unregister(name: str) -> None:
    STUDY_FIGURES.pop(name, None)


for _figure in (
    StudyFigure("curves", "Test curves", "Test curves of every member, one panel per loss term.", curves),
    StudyFigure("samples", "Samples", "Samples from the prior, same noise seed for every member.", samples),
    StudyFigure(
        "reconstructions",
        "Reconstructions",
        "The same test images reconstructed by each member (members without an encoder are left out).",
        reconstructions,
    ),
    StudyFigure(
        "interpolation", "Interpolation", "The same pair of test images, interpolated by each member.", interpolation
    ),
    StudyFigure("manifold", "Latent manifolds", "Decoded grids over [-1.5, 1.5]^2.", manifolds),
):
    register(_figure)


def study_figures(out: Path, runs: dict[str, Run], dataset: data.Dataset, seed: int) -> list[StudyFigure]:
    """Every study figure into `out`; returns those drawn, in order."""
    return [f for f in STUDY_FIGURES.values() if f.draw(out / f"{f.name}.png", runs, dataset, seed)]
