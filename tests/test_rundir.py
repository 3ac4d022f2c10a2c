"""The run directory's files (vaelab.rundir): their paths, config.json, metrics.jsonl (appended, cut back on resume,
damaged lines named), eval.json and the report."""

import json
import shutil

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.helpers.fuzz import FUZZ_RUNS, json_values, one_line
from vaelab.errors import RunError, VaelabError
from vaelab.rundir import RunDir


def test_run_dir_paths(tmp_path):
    """Found by mutation testing."""
    run = RunDir(tmp_path)
    assert repr(run) == f"RunDir({str(tmp_path)!r})"
    assert run.config_path == tmp_path / "config.json" and run.model_path == tmp_path / "model.safetensors"
    assert run.state_path == tmp_path / "training_state.safetensors" and run.metrics_path == tmp_path / "metrics.jsonl"
    assert run.eval_path == tmp_path / "eval.json" and run.report_path == tmp_path / "report.html"
    assert run.weights_path("discriminator") == tmp_path / "discriminator.safetensors"
    assert run.figure_path("samples") == tmp_path / "samples.png"
    assert run.epoch_samples_path(7) == tmp_path / "samples" / "epoch_007.png"
    assert not run.has_state()
    run.state_path.write_bytes(b"")
    assert run.has_state()


@pytest.mark.parametrize(
    "meta", [[], {"train": {}}, {"model": {}}, {"model": [], "train": {}}, {"model": {}, "train": 1}]
)
def test_read_config_needs_model_and_train_tables(tmp_path, meta):
    """Found by mutation testing."""
    run = RunDir(tmp_path)
    run.write_config(meta)
    with pytest.raises(RunError) as caught:
        run.read_config()
    assert str(caught.value) == f"{run.config_path}: not a vaelab run configuration (needs 'model' and 'train' tables)"


def test_config_round_trip(tmp_path):
    """Found by mutation testing."""
    run = RunDir(tmp_path)
    run.write_config({"model": {"a": 1}, "train": {}, "kind": "vae"})
    assert run.read_config() == {"model": {"a": 1}, "train": {}, "kind": "vae"}


def epoch(n: int) -> dict:
    return {"epoch": n, "train": {"loss": 1.0 / n}, "test": {"loss": 2.0 / n}}


def test_metrics_lines_are_appended_and_later_epochs_dropped_on_resume(tmp_path):
    """Found by mutation testing."""
    run = RunDir(tmp_path)
    run.start_metrics({"config": {"kind": "vae"}})
    assert run.metrics_path.read_text() == '{"config": {"kind": "vae"}}\n'
    assert run.read_metrics() == ({"config": {"kind": "vae"}}, [])
    for n in (1, 2, 3):
        run.append_metrics(epoch(n))
    assert run.metrics_path.read_text().count("\n") == 4
    header, epochs = run.read_metrics()
    assert header == {"config": {"kind": "vae"}} and epochs == [epoch(1), epoch(2), epoch(3)]
    run.append_metrics(epoch(3), after_epoch=2)  # resumed from the checkpoint of epoch 2
    assert run.read_metrics()[1] == [epoch(1), epoch(2), epoch(3)]
    run.append_metrics(epoch(1), after_epoch=0)
    assert run.read_metrics()[1] == [epoch(1)]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"config": {}}', "{"], "a line is not valid JSON (Expecting property name"),
        ([], "has no header line"),
        (["[1]"], "has no header line"),
        (['{"epoch": 1}'], "has no header line"),
        (
            ['{"config": {}}', json.dumps(epoch(1)), json.dumps({**epoch(2), "epoch": "2"})],
            "line 3 is not an epoch record (epoch, train and test terms); delete the damaged lines",
        ),
        (['{"config": {}}', json.dumps({**epoch(1), "train": []})], "line 2 is not an epoch record"),
        (['{"config": {}}', json.dumps({**epoch(1), "test": None})], "line 2 is not an epoch record"),
        (['{"config": {}}', "[]"], "line 2 is not an epoch record"),
    ],
)
def test_damaged_metrics_name_the_line(tmp_path, lines, message):
    """Found by mutation testing."""
    run = RunDir(tmp_path)
    run.metrics_path.write_text("\n".join(lines) + "\n\n")
    with pytest.raises(RunError) as caught:
        run.read_metrics()
    assert str(caught.value).startswith(f"{run.metrics_path}: {message}")


def test_blank_metrics_lines_are_skipped(tmp_path):
    """Found by mutation testing."""
    run = RunDir(tmp_path)
    run.metrics_path.write_text('{"config": {}}\n   \n' + json.dumps(epoch(1)) + "\n")
    assert run.read_metrics() == ({"config": {}}, [epoch(1)])


def test_eval_and_report_files(tmp_path):
    """Found by mutation testing."""
    run = RunDir(tmp_path)
    assert run.read_eval() is None
    run.write_eval({"samples": {"fid": 1.5}})
    assert run.read_eval() == {"samples": {"fid": 1.5}}
    assert run.eval_path.read_text().endswith("\n")
    for bad in ([], {"samples": 1}):
        run.write_eval(bad)
        with pytest.raises(RunError) as caught:
            run.read_eval()
        assert str(caught.value) == f"{run.eval_path}: not a vaelab evaluation; run `vaelab eval {tmp_path}` again"
    assert run.write_report("<html>") == tmp_path / "report.html"
    assert run.report_path.read_text() == "<html>"


@pytest.mark.e2e
@FUZZ_RUNS
@given(st.lists(json_values | st.text(max_size=30), max_size=4))
@example([[1, 2]])
@example([{"epoch": "two", "train": {}, "test": {}}])
def test_any_metrics_lines_read_or_give_a_one_line_error(tiny_run, tmp_path_factory, lines):
    """Found by fuzzing: a property test (Hypothesis)."""
    from vaelab.rundir import RunDir

    run_dir = tmp_path_factory.mktemp("metrics") / "run"
    shutil.copytree(tiny_run, run_dir)
    extra = "".join((line if isinstance(line, str) else json.dumps(line)).replace("\n", " ") + "\n" for line in lines)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(extra)
    try:
        RunDir(run_dir).read_metrics()
    except VaelabError as exc:
        one_line(exc)
