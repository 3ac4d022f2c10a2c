"""The comparison study (vaelab.compare): members trained, evaluated and compared in one report, resumed where a
longer study picks them up."""

import json
import re

import pytest

from tests.helpers.html import Collector, Tables
from vaelab.compare import Finals, metrics_rows
from vaelab.evaluate import EvalResult
from vaelab.evaluate.disentanglement_section import DisentanglementResult
from vaelab.evaluate.latent_usage import ReconstructionResult

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(512, 64)


@pytest.fixture(scope="module")
def tiny_npz(digits_npz):
    return digits_npz(400, 100)


def test_compare_runs_the_study_of_the_new_kinds_fitting_a_sampler_to_each(cli, digits, tmp_path):
    study = tmp_path / "study"
    result = cli(
        "compare",
        "--kinds",
        "vae,iwae,vamp,cvae",
        "--archs",
        "mlp",
        "--latent-dims",
        "2",
        "--data",
        digits,
        "--out",
        study,
        "--epochs",
        "1",
        "--quiet",
        "--iwae-k",
        "2",
        "--batch-size",
        "64",
        "--pseudo-inputs",
        "10",
    )
    assert result.returncode == 0, result.stderr
    report = (study / "report.html").read_text()
    for member in ("vae-mlp-z2", "iwae-mlp-z2", "vamp-mlp-z2", "cvae-mlp-z2"):
        assert member in report and (study / member / "sampler-gmm.safetensors").is_file()
    assert "Test log-likelihood (mlp, z=2)" in report and "VampPrior VAE:" in report and "IWAE:" in report
    assert "Prior against aggregate posterior (vamp-mlp-z2)" in report and "fitted gmm sampler" in report
    assert "adversarial" not in report  # no discriminator in this study


def test_compare_models_side_by_side(cli, digits_npz, tmp_path):
    digits = digits_npz(512, 128)
    study = tmp_path / "study"
    result = cli(
        "compare",
        "--models",
        "vae,vaegan,gan",
        "--archs",
        "mlp",
        "--latent-dims",
        "4",
        "--data",
        digits,
        "--out",
        study,
        "--epochs",
        "1",
        "--quiet",
        "--iwae-k",
        "5",
        "--batch-size",
        "64",
    )
    assert result.returncode == 0, result.stderr
    report = (study / "report.html").read_text()
    for member in ("vae-mlp-z4", "vaegan-mlp-z4", "gan-mlp-z4"):
        assert member in report and (study / member / "eval.json").is_file()
    assert "VAE against adversarial models" in report and "FD" in report
    gan_eval = json.loads((study / "gan-mlp-z4" / "eval.json").read_text())
    assert gan_eval["kind"] == "gan" and gan_eval["samples"]["fd_classifier"] > 0


def test_compare_runs_end_to_end_and_resumes(cli, tiny_npz, tmp_path):
    study = tmp_path / "study"
    args = [
        "compare",
        "--data",
        tiny_npz,
        "--archs",
        "mlp",
        "--latent-dims",
        "2,4",
        "--out",
        study,
        "--quiet",
        "--iwae-k",
        "5",
        "--seed",
        "1",
    ]
    first = cli(*args, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    report = (study / "report.html").read_text()
    parser = Collector()
    parser.feed(report)
    assert len(parser.images) >= 5 and "mlp-z2" in report and "mlp-z4" in report
    assert "Latent dimension (mlp)" in report and "FD (classifier)" in report
    # interrupted study: a longer one picks up each member at epoch 1
    second = cli(*args, "--epochs", "2")
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("resumed from epoch 1") == 2
    for member in ("mlp-z2", "mlp-z4"):
        lines = (study / member / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines[1:]] == [1, 2]
    third = cli(*args, "--epochs", "2")
    assert third.stderr.count("complete") == 2
    assert re.search(r"<td>mlp-z4</td>", (study / "report.html").read_text())
    # the study's table and answers hold the members' own final numbers (catches a stale or mixed-up table)
    page = (study / "report.html").read_text()
    header, *rows = Tables(page).table("Final metrics")
    finals = {}
    for row in rows:
        last = json.loads((study / row[0] / "metrics.jsonl").read_text().splitlines()[-1])["test"]
        result = json.loads((study / row[0] / "eval.json").read_text())
        cells = dict(zip(header, row))
        assert float(cells["test -ELBO"]) == pytest.approx(last["recon"] + last["kl"], abs=5e-4)
        assert float(cells["NLL (IWAE)"]) == pytest.approx(result["iwae"]["nll"], abs=5e-4)
        assert float(cells["MSE"]) == pytest.approx(result["reconstruction"]["mse"], abs=5e-4)
        assert float(cells["FD (classifier)"]) == pytest.approx(result["samples"]["fd_classifier"], abs=5e-4)
        finals[row[0]] = last
    assert sorted(finals) == ["mlp-z2", "mlp-z4"]
    a, b = finals["mlp-z2"]["recon"], finals["mlp-z4"]["recon"]
    assert f"from {a:.1f} to {b:.1f} nats ({'better' if b < a else 'worse'} reconstructions)" in page


def test_a_metric_no_member_has_adds_no_column():
    """Disentanglement (issue 23) is measured only on data with factors: a study without factors shows no column
    of n/a for it; a study where one member has it shows its columns, n/a for the others."""

    terms = {"recon": 1.0, "kl": 0.5}

    def finals(*sections) -> Finals:
        result = EvalResult(run="r", split="test", n_images=1, sections=dict(sections))
        return Finals(terms, terms, 1.0, result)

    plain = {"a": finals(("reconstruction", ReconstructionResult(0.1, 10.0)))}
    header, rows = metrics_rows(plain)
    assert "MSE" in header and "MIG" not in header and "FD (classifier)" not in header
    assert len(rows[0]) == len(header)

    scores = DisentanglementResult(1, ["x"], 0.5, [0.5], 0.6, 0.7, 0.8, [[1.0]], [[0.1]], 0.4, 0.9, 1, {})
    header, rows = metrics_rows({**plain, "b": finals(("disentanglement", scores))})
    cells = {row[0]: dict(zip(header, row)) for row in rows}
    assert cells["b"]["MIG"] == 0.5 and cells["b"]["FactorVAE score"] == 0.9 and cells["a"]["MIG"] == "n/a"
    assert cells["b"]["MSE"] == "n/a" and cells["a"]["MSE"] == 0.1


def test_members_trained_side_by_side_are_those_trained_one_after_the_other(cli, tiny_npz, tmp_path):
    """`--jobs 2` trains two members at once, each in its own process: with a fixed thread count every member's
    weights and evaluation are those of the sequential study to the last digit, and the report lists them all.
    An absurd --jobs is one line and exit 2, before anything is written."""
    from safetensors.torch import load_file

    common = ["--archs", "mlp", "--latent-dims", "2,3", "--data", tiny_npz, "--epochs", "1", "--iwae-k", "2"]
    common += ["--hidden", "16", "--threads", "1", "--quiet"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli("compare", *common, "--out", one).returncode == 0
    result = cli("compare", *common, "--out", two, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "2 at a time" in result.stderr and "[2/2]" in result.stderr
    for member in ("mlp-z2", "mlp-z3"):
        a, b = load_file(one / member / "model.safetensors"), load_file(two / member / "model.safetensors")
        assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a), member
        nll = [json.loads((study / member / "eval.json").read_text())["iwae"]["nll"] for study in (one, two)]
        assert nll[0] == nll[1], member
    assert (two / "report.html").exists()
    for bad in ("0", "65"):
        result = cli("compare", *common, "--out", tmp_path / "never", "--jobs", bad)
        assert result.returncode == 2 and result.stderr.startswith("vaelab: error: jobs: must be an integer in 1..64")
        assert result.stderr.count("\n") == 1 and not (tmp_path / "never").exists()
