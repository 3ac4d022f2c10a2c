"""The metric registry is the one place a metric is declared: a toy metric registered inside a test is measured by
`vaelab eval`, saved in eval.json, shown in the text table and the report, read back typed, and gets its column in
a comparison study; every built-in section round-trips through eval.json unchanged."""

import json
from dataclasses import dataclass

import pytest
import torch

from vaelab.evaluate import EvalResult, metrics, read_eval
from vaelab.evaluate.metric import Metric, Section, optional
from vaelab.run import Run

pytestmark = pytest.mark.e2e  # they train runs through the CLI: not for the mutation runs


@dataclass
class MeanPixel(Section):
    mean: float
    n: int
    spread: float | None = optional()


def measure_mean_pixel(ctx):
    images = ctx.model.sample(16, torch.Generator().manual_seed(ctx.seed))
    return MeanPixel(mean=float(images.mean()), n=16), ["toy metric: the mean pixel of 16 samples"]


TOY = Metric(
    name="mean_pixel",
    result=MeanPixel,
    measure=measure_mean_pixel,
    rows=lambda r: [("mean sample pixel (toy)", f"{r.mean:.5f} over {r.n} samples")],
    needs=("likelihood",),
    columns=("mean pixel (toy)",),
    cells=lambda r: [r.mean],
)


@pytest.fixture
def toy_metric():
    metrics.register(TOY)
    yield TOY
    metrics.unregister(TOY.name)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """A VAE and a GAN trained for one epoch on 200 real digits (their eval comes later, per test)."""
    import numpy as np

    from vaelab import data
    from vaelab.cli import main

    root = tmp_path_factory.mktemp("metric-runs")
    ds = data.load("mnist-mini")
    npz = root / "digits.npz"
    np.savez(
        npz,
        train_images=ds.train.images[:200].numpy(),
        train_labels=ds.train.labels[:200].numpy(),
        test_images=ds.test.images[:64].numpy(),
        test_labels=ds.test.labels[:64].numpy(),
    )
    for kind in ("vae", "gan"):
        args = ["train", "--data", npz, "--kind", kind, "--epochs", "1", "--hidden", "32", "--latent-dim", "2"]
        assert main([str(a) for a in [*args, "--quiet", "--out", root / kind]]) == 0
    return root, npz


def test_a_registered_metric_is_measured_saved_shown_and_compared(toy_metric, tiny_runs, cli, tmp_path):
    root, npz = tiny_runs
    result = cli("eval", root / "vae", "--iwae-k", "2", "--quiet", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    model = Run.open(root / "vae").model
    expected = float(model.sample(16, torch.Generator().manual_seed(0)).mean())
    assert printed["mean_pixel"] == {"mean": pytest.approx(expected, abs=1e-6), "n": 16}
    assert "toy metric: the mean pixel of 16 samples" in printed["notes"]
    assert list(printed)[-3:] == ["mean_pixel", "notes", "seconds"]  # after the built-in sections
    saved = read_eval(Run.open(root / "vae"))
    assert isinstance(saved.get("mean_pixel"), MeanPixel) and saved.get("mean_pixel").n == 16

    table = cli("eval", root / "vae", "--iwae-k", "2", "--quiet")
    assert "mean sample pixel (toy)" in table.stdout and f"{expected:.5f} over 16 samples" in table.stdout

    assert cli("report", root / "vae", "--no-figures").returncode == 0
    assert "mean sample pixel (toy)" in (root / "vae" / "report.html").read_text()

    # the GAN has no likelihood: the toy metric (needs=likelihood) is not measured for it
    gan = cli("eval", root / "gan", "--quiet", "--json")
    assert gan.returncode == 0, gan.stderr
    assert "mean_pixel" not in json.loads(gan.stdout)

    study = cli(
        "compare",
        "--data",
        npz,
        "--kinds",
        "vae,gan",
        "--archs",
        "mlp",
        "--latent-dims",
        "2",
        "--epochs",
        "1",
        "--hidden",
        "32",
        "--iwae-k",
        "2",
        "--quiet",
        "--out",
        tmp_path / "study",
    )
    assert study.returncode == 0, study.stderr
    page = (tmp_path / "study" / "report.html").read_text()
    header = page[page.index("<thead>") : page.index("</thead>")]
    assert "<th>mean pixel (toy)</th>" in header
    vae_row = page[page.index("<td>vae-mlp-z2</td>") :].split("</tr>")[0]
    gan_row = page[page.index("<td>gan-mlp-z2</td>") :].split("</tr>")[0]
    assert vae_row.endswith("</td>") and "n/a" not in vae_row.split("<td")[-1]  # the VAE has a value
    assert gan_row.split("<td")[-1] == ">n/a</td>"  # the GAN has none


def test_the_toy_metric_is_gone_once_unregistered(tiny_runs):
    assert "mean_pixel" not in metrics.KNOWN
    assert "mean pixel (toy)" not in metrics.study_columns()


def test_eval_json_round_trips_through_the_typed_result(tiny_runs, cli):
    """Every built-in section is read into its dataclass and written back as the same table."""
    root, _ = tiny_runs
    assert cli("fit-sampler", root / "vae", "--components", "2").returncode == 0
    assert cli("eval", root / "vae", "--iwae-k", "2", "--quiet").returncode == 0
    saved = json.loads((root / "vae" / "eval.json").read_text())
    typed = EvalResult.from_dict(saved)
    for name in ("elbo", "iwae", "latents", "reconstruction", "samples", "samplers", "prior_mismatch"):
        assert isinstance(typed.get(name), metrics.KNOWN[name].result), name
    assert typed.to_dict() == saved
    assert json.dumps(typed.to_dict()) == json.dumps(saved)  # the same keys in the same order


def test_an_older_eval_json_loads(tiny_runs):
    """eval.json as vaelab 0.1.0 wrote it: no kind, no IWAE precision or seconds, a section nobody knows."""
    old = {
        "run": "runs/x",
        "split": "test",
        "n_images": 10,
        "seed": 0,
        "likelihood": "bernoulli",
        "binarized": False,
        "elbo": {"elbo": -100.0, "recon": 90.0, "kl": 10.0, "bits_per_dim": 0.2},
        "iwae": {"k": 5, "nll": 95.0, "nll_se": 1.0, "bits_per_dim": 0.19},
        "samples": {"available": False, "why": "no labels"},
        "future_section": {"x": 1},
        "notes": [],
    }
    typed = EvalResult.from_dict(old)
    assert typed.kind is None and typed.get("iwae").precision is None
    assert typed.get("future_section") == {"x": 1}
    assert typed.to_dict() == old


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d["iwae"].pop("nll"),
        lambda d: d.pop("n_images"),
        lambda d: d.__setitem__("samples", []),
        lambda d: d.__setitem__("notes", "text"),
    ],
)
def test_a_damaged_eval_json_is_an_error_naming_what(damage):
    values = {
        "run": "r",
        "split": "test",
        "n_images": 1,
        "notes": [],
        "iwae": {"k": 5, "nll": 95.0, "nll_se": 1.0, "bits_per_dim": 0.19},
        "samples": {"available": False, "why": "no labels"},
    }
    damage(values)
    with pytest.raises((KeyError, TypeError)):
        EvalResult.from_dict(values)


def test_a_metric_cannot_take_a_header_key():
    with pytest.raises(ValueError, match="eval.json's own keys"):
        metrics.register(Metric(name="seconds", result=MeanPixel, measure=measure_mean_pixel, rows=lambda r: []))
