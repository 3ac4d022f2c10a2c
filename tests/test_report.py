"""The run report (vaelab.report): its tables hold the run's own numbers (metrics.jsonl, eval.json, config.json), and
any eval.json leaves the report written."""

import json
import shutil

import pytest
from hypothesis import example, given

from tests.helpers.fuzz import FUZZ_RUNS, json_values
from tests.helpers.html import Tables

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def reported(digits_npz, tmp_path_factory):
    """A small run with options away from their defaults, evaluated, its report written after the evaluation."""
    from vaelab.cli import main

    out = tmp_path_factory.mktemp("report") / "run"
    train = [
        "train",
        "--data",
        str(digits_npz(400, 100)),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--latent-dim",
        "3",
        "--hidden",
        "48,24",
        "--beta",
        "0.5",
        "--lr",
        "0.002",
        "--activation",
        "elu",
        "--seed",
        "7",
        "--quiet",
    ]
    assert main(train) == 0
    assert main(["eval", str(out), "--iwae-k", "5", "--quiet"]) == 0
    assert main(["report", str(out), "--no-figures"]) == 0
    return out, Tables((out / "report.html").read_text())


def test_report_metrics_table_holds_the_last_epoch_of_metrics_jsonl(reported):
    """Catches a metrics table of the wrong epoch (the first, say), with train and test swapped, or with the
    terms' columns out of order. Checks a README claim."""
    run, page = reported
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["epoch"] == 2
    header, *rows = page.table("Metrics")
    assert header[0] == "split" and set(header[1:]) == set(last["train"]) >= {"loss", "recon", "kl"}
    assert [row[0] for row in rows] == ["train", "test"]
    for row in rows:
        for term, cell in zip(header[1:], row[1:]):
            assert float(cell) == pytest.approx(last[row[0]][term], abs=5e-4, rel=5e-4), (row[0], term)
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[1])
    assert float(rows[1][header.index("loss")]) != pytest.approx(first["test"]["loss"], abs=5e-4)


def test_report_eval_table_holds_eval_json(reported):
    """Catches an evaluation table that is missing, stale, or shows other numbers than eval.json.
    Checks a README claim."""
    run, page = reported
    result = json.loads((run / "eval.json").read_text())
    rows = dict(page.table("Evaluation (test split, 100 images)"))
    i, e, r = result["iwae"], result["elbo"], result["reconstruction"]
    assert rows["NLL, IWAE k=5 (nats/image)"] == f"{i['nll']:.2f} +- {i['nll_se']:.2f} (s.e.)"
    assert rows["ELBO (nats/image)"].startswith(f"{e['elbo']:.2f}")
    assert rows["reconstruction MSE / PSNR"] == f"{r['mse']:.5f} / {r['psnr_db']:.2f} dB"
    assert rows["active units"] == f"{result['latents']['active_units']} of 3"
    assert rows["FD (classifier features)"] == f"{result['samples']['fd_classifier']:.3f}"


def test_report_configuration_table_holds_config_json(reported):
    """Catches a configuration table that shows defaults or another run's options instead of config.json's.
    Checks a README claim."""
    run, page = reported
    saved = json.loads((run / "config.json").read_text())
    rows = dict(page.table("Configuration")[1:])
    expected = {**saved["train"], **{f"model.{k}": v for k, v in saved["model"].items()}}
    assert {k: json.loads(v) for k, v in rows.items()} == expected
    chosen = {
        "latent_dim": 3,
        "hidden": [48, 24],
        "beta": 0.5,
        "lr": 0.002,
        "activation": "elu",
        "seed": 7,
        "epochs": 2,
        "model.latent_dim": 3,
        "model.hidden": [48, 24],
        "model.activation": "elu",
    }
    assert {k: json.loads(rows[k]) for k in chosen} == chosen
    intro = (run / "report.html").read_text()
    assert "latent dimension 3" in intro and "(400 train / 100 test images of shape (1, 28, 28))" in intro


@FUZZ_RUNS
@given(json_values)
@example({"samples": {"available": True}, "split": 3})
@example({"samples": {}, "elbo": "x", "split": "test", "n_images": 2, "seed": 0, "run": "r", "notes": []})
def test_any_eval_json_leaves_the_report_written(tiny_run, tmp_path_factory, value):
    """Found by fuzzing: a property test (Hypothesis)."""
    from vaelab.report import run_report

    run_dir = tmp_path_factory.mktemp("eval") / "run"
    shutil.copytree(tiny_run, run_dir)
    (run_dir / "eval.json").write_text(json.dumps(value))
    assert run_report(run_dir).is_file()
