"""The run figures of data with known factors (figures.py: `traversals`, `factor-information`): each latent dimension
labelled with the factor it tells most about, the heat map of I(v; z) / H(v), drawn for a run on dSprites and not for
data without factors, and the `vaelab traverse` command's bad input refused."""

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers.runs import ok, one_line_error
from vaelab import data, figures
from vaelab.run import Run


def test_each_dimension_is_labelled_with_the_factor_it_tells_most_about():
    info = {"normalized": np.array([[0.1, 0.7, 0.0], [0.62, 0.2, 0.05]]), "factors": ["shape", "posX"]}
    assert figures.dimension_labels(info) == ["dim 0: posX (0.62)", "dim 1: shape (0.70)", "dim 2: posX (0.05)"]


@pytest.fixture(scope="module")
def dsprites_run(tmp_path_factory):
    """A one-epoch VAE of 3 latents on 300 dSprites images (270 train, 30 test)."""
    from vaelab.cli import main

    out = tmp_path_factory.mktemp("dsprites") / "run"
    args = ["train", "--data", "dsprites:300", "--out", str(out), "--epochs", "1", "--latent-dim", "3"]
    assert main([*args, "--hidden", "32", "--batch-size", "64", "--threads", "1", "--quiet"]) == 0
    return out


@pytest.mark.e2e
def test_a_run_on_data_with_factors_draws_its_traversals_and_factor_map(dsprites_run):
    run = Run.open(dsprites_run)
    for name in ("traversals", "factor-information"):
        with Image.open(dsprites_run / f"{name}.png") as image:
            assert image.format == "PNG" and image.size[0] > 300, name
        assert figures.FIGURES[name].caption.split(":")[0] in (dsprites_run / "report.html").read_text()
    info = figures.factor_information(run)
    assert info["normalized"].shape == (5, 3) and info["factors"] == ["shape", "scale", "orientation", "x", "y"]
    assert (info["normalized"] >= 0).all() and (info["normalized"] <= 1 + 1e-9).all()
    assert info["activity"].shape == (3,) and info["kl_per_dim"].shape == (3,)


@pytest.mark.e2e
def test_traversals_sweep_each_shown_dimension_from_the_test_images_mean(dsprites_run, monkeypatch):
    """What the figure decodes: per shown dimension (most KL first), the test image's posterior mean with that
    dimension set to each value of the range."""
    run = Run.open(dsprites_run)
    drawn = {}
    monkeypatch.setattr(figures.plots, "plot_traversals", lambda path, rows, values, labels, text: drawn.update(
        rows=rows, values=values, labels=labels, text=text))  # fmt: skip
    figures.traversals(run, out=str(dsprites_run / "t.png"), image=2, span=(-1.0, 1.0), steps=3)
    assert drawn["values"] == [-1.0, 0.0, 1.0] and "test image 2" in drawn["text"]
    info = figures.factor_information(run)
    shown = [int(label.split(":")[0].split()[1]) for label in drawn["labels"]]
    assert shown == sorted(shown, key=lambda d: -float(info["kl_per_dim"][d]))
    base = run.model.encode(data.to_float(run.dataset().test.images[2:3])).mean[0].detach()
    z = base.repeat(3, 1)
    z[:, shown[0]] = torch.tensor([-1.0, 0.0, 1.0])
    torch.testing.assert_close(drawn["rows"][0], run.model.sample(3, z=z))


@pytest.mark.e2e
def test_the_traverse_command_refuses_bad_input_and_data_without_factors(cli, dsprites_run, digits_npz, tmp_path):
    for args, message in (
        (["--image", "30"], "image: must lie in 0..29"),
        (["--range", "1", "-1"], "range: LO must be below HI"),
        (["--steps", "1"], "steps"),
    ):
        assert message in one_line_error(cli("traverse", dsprites_run, "--out", tmp_path / "t.png", *args))
    assert not (tmp_path / "t.png").exists()
    out = tmp_path / "digits"
    ok(cli("train", "--data", digits_npz(64, 16), "--out", out, "--epochs", "1", "--hidden", "8", "--quiet"))
    assert not (out / "traversals.png").exists() and not (out / "factor-information.png").exists()
    assert "factors" in one_line_error(cli("traverse", out))
