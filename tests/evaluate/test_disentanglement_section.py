"""The `disentanglement` section of `vaelab eval` (vaelab.evaluate.disentanglement_section, issue 23 item 3):
measured on the split's posterior means with their own factors, absent on data without factors, refused in one
line when required there, written to eval.json, the table and the report with the estimator's choices."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.helpers.runs import ok, one_line_error, train
from vaelab import data
from vaelab.evaluate import disentanglement_section as section
from vaelab.evaluate.metric import Context
from vaelab.models.posterior import DiagonalGaussian


class CentroidEncoder(torch.nn.Module):
    """Codes = the sprite's centre of mass (column, row) and its ink: x, y and scale read off the image itself (and
    nothing of the orientation), so
    the codes line up with the factors only if every image keeps its own factors."""

    latent_dim = 3

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        ink = x[:, 0]
        mass = ink.sum((1, 2))
        grid = torch.arange(ink.shape[-1], dtype=ink.dtype)
        cols = (ink.sum(1) * grid).sum(1) / mass
        rows = (ink.sum(2) * grid).sum(1) / mass
        mean = torch.stack([cols, rows, mass], dim=1)
        return DiagonalGaussian(mean, torch.zeros_like(mean))


def context(dataset, split="test", seed=0) -> Context:
    images = getattr(dataset, split).images
    return Context(None, CentroidEncoder(), dataset, images, split, seed, 1, "fp32", "cpu", None, True, False, {})


def test_codes_meet_their_own_factors(monkeypatch):
    """x and y are each found in one code (MIG, SAP and DCI credit them to it); shuffled factors would score 0.
    More images than `MAX_IMAGES` are subsampled with the seed, each keeping its factors."""
    dataset = data.load("dsprites:3000")
    monkeypatch.setattr(section, "MAX_IMAGES", 1000)
    result, notes = section.measure(context(dataset, "train"))
    assert notes == [] and result.n_images == 1000 and result.factors == ["shape", "scale", "orientation", "x", "y"]
    gaps = dict(zip(result.factors, result.mig_per_factor))
    assert gaps["x"] > 0.5 and gaps["y"] > 0.5 and gaps["scale"] > 0.5 and gaps["orientation"] < 0.05
    importance = np.array(result.importance)
    assert importance.shape == (3, 5) and importance[0].argmax() == 3 and importance[1].argmax() == 4
    assert importance[2, 1] > 0.9  # scale: the ink
    assert np.array(result.mutual_information).shape == (5, 3)
    assert result.sap > 0.3 and 0 <= result.factorvae <= 1
    again, _ = section.measure(context(dataset, "train"))
    assert again == result  # seeded
    other, _ = section.measure(context(dataset, "train", seed=1))
    assert other.n_images == 1000 and other != result  # another draw
    monkeypatch.setattr(section, "MAX_IMAGES", 10_000)
    whole, _ = section.measure(context(dataset))
    assert whole.n_images == 300 and whole.estimator["mig_bins"] == 20 and whole.estimator["seed"] == 0


class FaintEncoder(CentroidEncoder):
    """The same codes shrunk a thousandfold: every dimension looks collapsed to the FactorVAE score."""

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        q = super().encode(x)
        return DiagonalGaussian(q.mean / torch.tensor([1e3, 1e3, 1e5]), q.logvar)


def test_collapsed_codes_are_said(monkeypatch):
    """Codes that barely vary: MIG still sees x and y (binning is scale-free), the FactorVAE score prunes every
    dimension, scores 0 and says why in a note."""
    ctx = context(data.load("dsprites:2000"))
    ctx.model = FaintEncoder()
    result, notes = section.measure(ctx)
    assert result.factorvae == 0.0 and result.factorvae_active_dims == 0
    assert len(notes) == 1 and "collapsed" in notes[0] and "FactorVAE score" in notes[0]
    assert dict(zip(result.factors, result.mig_per_factor))["x"] > 0.3


class BrokenEncoder(CentroidEncoder):
    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        q = super().encode(x)
        return DiagonalGaussian(q.mean * float("nan"), q.logvar)


def test_non_finite_codes_are_a_note_not_a_crash():
    ctx = context(data.load("dsprites:200"))
    ctx.model = BrokenEncoder()
    assert section.measure(ctx) == (
        None,
        ["disentanglement: not measured, the encoder's posterior means are not finite"],
    )


def test_absent_without_factors():
    assert section.measure(context(data.load("mnist-mini")))[0] is None
    assert "has no known factors" in section.why_unavailable(data.load("mnist-mini"))


def test_rows_name_every_choice(monkeypatch):
    monkeypatch.setattr(section, "MAX_IMAGES", 100)
    result, _ = section.measure(context(data.load("dsprites:600")))
    shown = dict(section.rows(result))
    assert shown["FactorVAE score"].endswith("(chance 0.20, 3 active dimensions)")
    choices = shown["disentanglement estimators"]
    for words in ("60 images", "20 equal-width bins", "150 rounds", "shrinkage 0.2", "20% held out", "votes of 64"):
        assert words in choices
    assert section.DISENTANGLEMENT.result.from_dict(json.loads(json.dumps(result.to_dict()))) == result


@pytest.mark.e2e
@pytest.mark.slow
def test_eval_writes_the_section_and_refuses_it_without_factors(cli, tmp_path, digits_npz):
    run = tmp_path / "sprites"
    ok(train(cli, "dsprites:600", run))
    done = ok(cli("eval", run, "--iwae-k", "2", "--require", "disentanglement", "--cache-dir", tmp_path / "c"))
    saved = json.loads((run / "eval.json").read_text())["disentanglement"]
    assert saved["n_images"] == 60 and len(saved["importance"]) == 2 and len(saved["mig_per_factor"]) == 5
    assert "MIG" in done.stdout and "disentanglement estimators" in done.stdout
    ok(cli("report", run))
    report = (run / "report.html").read_text()
    assert "DCI disentanglement / completeness / informativeness" in report and "20 equal-width bins" in report
    digits = tmp_path / "digits"
    ok(train(cli, digits_npz(200, 50), digits))
    ok(cli("eval", digits, "--iwae-k", "2", "--cache-dir", tmp_path / "c", "--quiet"))
    assert "disentanglement" not in json.loads((digits / "eval.json").read_text())
    message = one_line_error(cli("eval", digits, "--require", "disentanglement"))
    assert "has no known factors" in message and "dsprites" in message
    assert "no such evaluation section" in one_line_error(cli("eval", digits, "--require", "nonsense"))
