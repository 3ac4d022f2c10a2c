"""`--log tensorboard` (vaelab.tracking.tensorboard), read back with TensorBoard's own reader (EventAccumulator):
every number of metrics.jsonl under its name at step = epoch, the sample grids and figures as images, the options
as hyper-parameters, the evaluation's numbers at the end; a resumed run continues the same folder and steps; a
study's members side by side; metrics.jsonl is the same with or without the tracker."""

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.helpers.runs import epochs_of, ok, one_line_error, resume, train, without_timing
from vaelab.tracking import flatten


def events(folder):
    found = list(folder.glob("events.out.tfevents.*"))
    assert found, f"no event file in {folder}"
    accumulator = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_every_metric_per_epoch_the_images_the_options_and_the_evaluation(cli, digits_npz, tmp_path):
    out = tmp_path / "run"
    ok(train(cli, digits_npz(256, 64), out, "vae", "--log", "tensorboard", "--eval", epochs=2))
    read = events(out / "tensorboard")
    epochs = epochs_of(out)
    for record in epochs:
        for name, value in flatten(record).items():
            (event,) = [e for e in read.Scalars(name) if e.step == record["epoch"]]
            assert event.value == pytest.approx(value, rel=1e-6), name
    assert {"train/loss", "test/recon", "test/kl", "lr", "seconds"} <= set(read.Tags()["scalars"])
    assert [e.step for e in read.Images("samples")] == [1, 2]
    assert {"figures/curves", "figures/samples", "figures/manifold", "figures/reconstructions"} <= set(
        read.Tags()["images"]
    )
    evaluation = json.loads((out / "eval.json").read_text())
    (nll,) = read.Scalars("eval/iwae/nll")
    assert nll.step == 2 and nll.value == pytest.approx(evaluation["iwae"]["nll"], rel=1e-6)
    start = read.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["latent_dim"].number_value == 2 and hparams["arch"].string_value == "mlp"
    assert hparams["hidden"].string_value == "32"
    assert json.loads((out / "tracking.json").read_text()) == {
        "tensorboard": {"log_dir": str((out / "tensorboard").absolute())}
    }


def test_a_resumed_run_continues_the_same_folder_at_the_next_epochs(cli, digits_npz, tmp_path):
    out = tmp_path / "run"
    ok(train(cli, digits_npz(256, 64), out, "vae", "--log", "tensorboard", "--log-uri", tmp_path / "tb", epochs=1))
    ok(resume(cli, out, 3, "--log", "tensorboard"))  # the folder is the one tracking.json names
    read = events(tmp_path / "tb" / "run")
    assert [e.step for e in read.Scalars("train/loss")] == [1, 2, 3]
    assert [e.value for e in read.Scalars("train/loss")] == pytest.approx([e["train"]["loss"] for e in epochs_of(out)])
    assert not (out / "tensorboard").exists()


def test_metrics_jsonl_is_unchanged_by_the_tracker(cli, digits_npz, tmp_path):
    ok(train(cli, digits_npz(256, 64), tmp_path / "plain", epochs=2))
    ok(train(cli, digits_npz(256, 64), tmp_path / "tracked", "vae", "--log", "tensorboard", epochs=2))
    plain, tracked = (without_timing(epochs_of(tmp_path / name)) for name in ("plain", "tracked"))
    assert plain == tracked


def test_a_studys_members_are_side_by_side(cli, digits_npz, tmp_path):
    study = tmp_path / "study"
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
            "tensorboard",
        )
    )
    for member in ("mlp-z2", "mlp-z3"):
        assert [e.step for e in events(study / "tensorboard" / member).Scalars("test/loss")] == [1]


def test_without_the_package_the_option_says_what_to_install(cli, digits_npz, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)
    message = one_line_error(train(cli, digits_npz(256, 64), tmp_path / "run", "vae", "--log", "tensorboard"))
    assert message.endswith("pip install 'vaelab[tensorboard]'")
    assert not (tmp_path / "run" / "model.safetensors").exists()
