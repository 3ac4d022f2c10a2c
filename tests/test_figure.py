"""A figure is one declaration: a toy figure registered inside a test is drawn for every run of a kind it applies
to, gets its own `vaelab` command with its options checked against their bounds, its caption in the run's report
and in every member's report of a study; the report's captions and the figure commands are those of the registry."""

import argparse

import numpy as np
import pytest
from PIL import Image

from vaelab import data, figures, plots, study_figures
from vaelab.figure import Figure, StudyFigure, argument

pytestmark = pytest.mark.e2e  # they train runs through the CLI: not for the mutation runs


def draw_mean_image(run, out=None, n: int = 10):
    """The mean of the first `n` test images."""
    path = figures._target(run, out, "toy-mean")
    mean = data.to_float(run.dataset().test.images[:n]).mean(0, keepdim=True)
    plots.save_grid(path, mean, nrow=1, scale=1)
    return path


TOY = Figure(
    "toy-mean",
    "The mean of the first test images (a toy figure).",
    draw_mean_image,
    needs=("encoder",),
    command="mean-image",
    help="the mean test image (toy)",
    arguments=(argument("--n", type=int, default=10, help="images averaged", bounds=(1, 50)),),
)


def draw_study_toy(path, runs, dataset, seed):
    plots.save_grid(path, data.to_float(dataset.test.images[:1]), nrow=1, scale=1)
    return True


STUDY_TOY = StudyFigure(
    "toy-first", "First test image (toy)", "The first test image, once per study (toy).", draw_study_toy
)


@pytest.fixture
def toy_figure():
    figures.register(TOY)
    study_figures.register(STUDY_TOY)
    yield TOY
    figures.unregister(TOY.name)
    study_figures.unregister(STUDY_TOY.name)


@pytest.fixture
def digits(digits_npz):
    return digits_npz(200, 40)


def test_a_registered_figure_is_drawn_commanded_and_reported(toy_figure, digits, cli, tmp_path):
    run = tmp_path / "vae"
    trained = cli(
        "train", "--data", digits, "--epochs", "1", "--hidden", "32", "--latent-dim", "2", "--quiet", "--out", run
    )
    assert trained.returncode == 0, trained.stderr
    drawn = Image.open(run / "toy-mean.png")
    assert drawn.size == (32, 32)  # one 28 x 28 image and its 2-pixel border
    expected = data.to_float(data.load(str(digits)).test.images[:10]).mean(0)[0]
    assert np.abs(np.asarray(drawn, dtype=float)[2:30, 2:30] / 255 - expected.numpy()).max() <= 0.5 / 255 + 1e-6
    page = (run / "report.html").read_text()
    assert "The mean of the first test images (a toy figure)." in page

    # its own command, with its option checked against the declared bounds before the run is opened
    out = cli("mean-image", run, "--n", "3", "--out", tmp_path / "three.png")
    assert out.returncode == 0 and out.stdout.strip() == str(tmp_path / "three.png")
    refused = cli("mean-image", tmp_path / "no-such-run", "--n", "0")
    assert refused.returncode == 2 and refused.stderr.strip() == "vaelab: error: n: must lie in 1..50, got 0"

    # a GAN has no encoder: the toy figure (needs an encoder) is not drawn for it
    gan = cli(
        "train",
        "--data",
        digits,
        "--kind",
        "gan",
        "--epochs",
        "1",
        "--hidden",
        "32",
        "--quiet",
        "--out",
        tmp_path / "gan",
    )
    assert gan.returncode == 0, gan.stderr
    assert not (tmp_path / "gan" / "toy-mean.png").exists()

    study = cli(
        "compare",
        "--data",
        digits,
        "--archs",
        "mlp",
        "--latent-dims",
        "2",
        "--epochs",
        "1",
        "--hidden",
        "32",
        "--no-eval",
        "--quiet",
        "--out",
        tmp_path / "study",
    )
    assert study.returncode == 0, study.stderr
    assert (tmp_path / "study" / "mlp-z2" / "toy-mean.png").exists()
    assert "a toy figure" in (tmp_path / "study" / "mlp-z2" / "report.html").read_text()
    study_page = (tmp_path / "study" / "report.html").read_text()
    assert "<h2>First test image (toy)</h2>" in study_page
    assert study_page.index("<h2>Latent manifolds</h2>") < study_page.index("<h2>First test image (toy)</h2>")


def test_unregistered_figures_leave_no_trace():
    assert "toy-mean" not in figures.FIGURES and "toy-first" not in study_figures.STUDY_FIGURES
    from vaelab.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    assert "mean-image" not in commands


def test_the_figure_commands_and_captions_come_from_the_declarations():
    from vaelab.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    declared = {f.command: f for f in figures.FIGURES.values() if f.command}
    assert set(declared) == {"sample", "reconstruct", "interpolate", "manifold", "latents", "traverse", "factor-map"}
    for name, figure in declared.items():
        parser: argparse.ArgumentParser = commands[name]
        flags = {flag for action in parser._actions for flag in action.option_strings}
        assert {"--out", *(flag for arg in figure.arguments for flag in arg.flags)} <= flags, name
    files = [name for name, _ in figures.captions()]
    assert files == [
        "curves",
        "reconstructions",
        "samples",
        "interpolation",
        "manifold",
        "latents",
        "kl_per_dim",
        "traversals",
        "factor-information",
        "samples-gmm",
        "classes",
        "class_manifolds",
    ]


@pytest.mark.parametrize("abilities", [{"encoder": True, "labels": False}, {"encoder": False, "labels": True}])
def test_a_kinds_figures_follow_its_abilities(abilities):
    class Kind:
        likelihood = True
        encoder = abilities["encoder"]
        labels = abilities["labels"]

    names = figures.names(Kind)
    assert ("reconstructions" in names) == Kind.encoder and ("latents" in names) == Kind.encoder
    assert ("classes" in names) == Kind.labels
    assert {"samples", "curves", "manifold"} <= set(names)
    assert "samples-gmm" not in names  # drawn on demand only, from a fitted sampler
