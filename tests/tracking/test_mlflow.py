"""`--log mlflow` (vaelab.tracking.mlflow), read back with MLflow's own client: every number of metrics.jsonl under
its name at step = epoch, the sample grids and figures as artifacts, the options as parameters, the evaluation's
numbers at the end; a resumed run continues the same MLflow run; a study's members are one experiment."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.helpers.runs import epochs_of, ok, one_line_error, resume, train
from vaelab.tracking import flatten


def client_of(out: Path) -> tuple[MlflowClient, str]:
    saved = json.loads((out / "tracking.json").read_text())["mlflow"]
    return MlflowClient(tracking_uri=saved["uri"]), saved["run_id"]


def history(client, run_id, name):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, name), key=lambda m: m.step)]


def test_a_run_and_its_resumption_are_one_mlflow_run(cli, digits_npz, tmp_path):
    out, store = tmp_path / "run", tmp_path / "store"
    ok(train(cli, digits_npz(256, 64), out, "vae", "--log", "mlflow", "--log-uri", store, epochs=1))
    client, run_id = client_of(out)
    assert client.get_run(run_id).info.status == "FINISHED"
    ok(resume(cli, out, 2, "--log", "mlflow", "--eval"))
    assert client_of(out)[1] == run_id
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["latent_dim"] == "2" and run.data.params["epochs"] == "1"
    assert run.data.tags["resumed.epochs"] == "2"  # MLflow's parameters cannot change
    epochs = epochs_of(out)
    for name in flatten(epochs[0]):
        assert history(client, run_id, name) == pytest.approx([(e["epoch"], flatten(e)[name]) for e in epochs]), name
    evaluation = json.loads((out / "eval.json").read_text())
    assert history(client, run_id, "eval/iwae/nll") == [(2, pytest.approx(evaluation["iwae"]["nll"]))]
    samples = [a.path for a in client.list_artifacts(run_id, "samples")]
    assert samples == ["samples/epoch_001.png", "samples/epoch_002.png"]
    figures = {a.path for a in client.list_artifacts(run_id, "figures")}
    assert {"figures/curves.png", "figures/samples.png", "figures/manifold.png"} <= figures
    assert "report.html" in {a.path for a in client.list_artifacts(run_id)}


def test_a_studys_members_are_one_experiment(cli, digits_npz, tmp_path):
    study, store = tmp_path / "study", tmp_path / "store"
    args = ["--data", digits_npz(128, 32), "--epochs", "1", "--hidden", "16", "--batch-size", "64", "--quiet"]
    ok(
        cli(
            "compare",
            "--archs",
            "mlp",
            "--latent-dims",
            "2,3",
            "--out",
            study,
            "--no-eval",
            *args,
            "--log",
            "mlflow",
            "--log-uri",
            store,
        )
    )
    client = MlflowClient(tracking_uri=store.absolute().as_uri())
    experiment = client.get_experiment_by_name(str(study.absolute()))
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["mlp-z2", "mlp-z3"]
    assert {r.data.tags["vaelab.study"] for r in runs} == {str(study.absolute())}


def test_an_unusable_store_is_refused_before_training(cli, digits_npz, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    message = one_line_error(
        train(cli, digits_npz(256, 64), tmp_path / "run", "vae", "--log", "mlflow", "--log-uri", blocker)
    )
    assert message.startswith("vaelab: error: --log mlflow: cannot use the tracking store")
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert "--log-uri: says where --log writes" in one_line_error(
        train(cli, digits_npz(256, 64), tmp_path / "run", "vae", "--log-uri", tmp_path / "store")
    )
