"""The contract of every command (vaelab.cli): bad input and faults give one line and a non-zero exit, never a
traceback, and nothing is lost.

Every command is walked with a missing path, a path whose parent is a file and a folder where a file is
expected; run directories are damaged key by key; outputs are absurd; runs are stopped (SIGTERM)."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.helpers.runs import one_line_error, snapshot

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(256, 64)


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """One tiny trained run, copied by each test that damages it."""
    from vaelab.cli import main

    out = tmp_path_factory.mktemp("trained") / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(digits),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--quiet",
                "--latent-dim",
                "2",
                "--hidden",
                "32",
                "--batch-size",
                "64",
            ]
        )
        == 0
    )
    return out


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


RUN_COMMANDS = [
    ["sample"],
    ["reconstruct"],
    ["interpolate"],
    ["manifold"],
    ["latents"],
    ["report"],
    ["eval", "--iwae-k", "2"],
]


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=lambda c: c[0])
def test_every_run_command_on_missing_file_and_folder_paths(cli, tmp_path, command):
    """Found by hardening (bad input and faults)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for path, message in [
        (tmp_path / "missing", "no such run directory"),
        (a_file, "no such run directory"),
        (a_file / "below", "no such run directory"),
    ]:
        assert message in one_line_error(cli(command[0], path, *command[1:]))


def test_figure_outputs_are_checked_before_the_work(cli, run, tmp_path):
    """Found by hardening (bad input and faults)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out, message in [
        (tmp_path / "grid.txt", "must name a .png file"),
        (tmp_path, "must name a .png file"),
        (a_file / "grid.png", "is a file, not a folder"),
    ]:
        for command in ("sample", "reconstruct", "manifold", "latents", "interpolate"):
            assert message in one_line_error(cli(command, run, "--out", out)), command
    assert not (tmp_path / "grid.txt").exists()
    assert cli("sample", run, "--out", tmp_path / "new" / "grid.png").returncode == 0  # a missing folder is made


def _edit_config(run: Path, edit) -> None:
    meta = json.loads((run / "config.json").read_text())
    meta = edit(meta)
    (run / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: [m], "needs 'model' and 'train' tables"),
        (lambda m: {k: v for k, v in m.items() if k != "model"}, "needs 'model' and 'train' tables"),
        (lambda m: {**m, "model": {**m["model"], "shape": [1, -28, 28]}}, "shape: expected integers"),
        (lambda m: {**m, "model": {**m["model"], "latent_dim": "two"}}, "latent_dim: expected integers"),
        (lambda m: {**m, "model": {**m["model"], "likelihood": "poisson"}}, "likelihood: must be one of"),
        (lambda m: {**m, "train": {**m["train"], "seed": "seven"}}, "seed: expected an integer"),
        (
            lambda m: {**m, "train": {**m["train"], "likelihood": "poisson"}},
            "likelihood: must be one of bernoulli, gaussian",
        ),
        (lambda m: {**m, "train": {**m["train"], "kind": "diffusion"}}, "unknown kind 'diffusion'"),
        (lambda m: {**m, "train": 3}, "needs 'model' and 'train' tables"),
    ],
    ids=[
        "list",
        "no-model",
        "negative-shape",
        "string-latent",
        "poisson-model",
        "string-seed",
        "poisson-train",
        "unknown-kind",
        "train-not-a-table",
    ],
)
def test_damaged_config_json_is_named(cli, run, edit, message):
    """Found by hardening (bad input and faults)."""
    _edit_config(run, edit)
    for command in ("sample", "report"):
        one = one_line_error(cli(command, run))
        assert "config.json" in one and message in one, one


def test_damaged_weights_state_metrics_and_eval(cli, run):
    """Found by hardening (bad input and faults)."""
    weights = load_file(run / "model.safetensors")
    first = next(iter(weights))
    save_file({**weights, first: torch.full_like(weights[first], float("nan"))}, run / "model.safetensors")
    assert "holds non-finite values" in one_line_error(cli("sample", run))
    save_file({k: v for k, v in weights.items() if k != first}, run / "model.safetensors")
    assert f"missing key '{first}'" in one_line_error(cli("sample", run))
    save_file({**weights, first: weights[first][..., :1].contiguous()}, run / "model.safetensors")
    assert "the file holds" in one_line_error(cli("sample", run))
    save_file(weights, run / "model.safetensors")
    # eval.json damaged: the report is still written, and says so
    (run / "eval.json").write_text('{"samples": {"available": true}, "split": 3}')
    assert cli("report", run, "--no-figures").returncode == 0
    assert "run `vaelab eval" in (run / "report.html").read_text()
    # metrics.jsonl with a garbage line, a training state with a string epoch: --resume refuses in one line
    good = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(good + "[1, 2]\n")
    assert "line 3 is not an epoch record" in one_line_error(cli("report", run))
    (run / "metrics.jsonl").write_text(good)
    from vaelab.checkpoint import read_safetensors

    tensors, metadata = read_safetensors(run / "training_state.safetensors")
    save_file(tensors, run / "training_state.safetensors", metadata={**metadata, "info": '{"epoch": "two"}'})
    before = snapshot(run)
    assert "damaged" in one_line_error(cli("train", "--out", run, "--resume", "--epochs", "2", "--quiet"))
    assert snapshot(run) == before


def test_resume_after_editing_the_latent_dimension_refuses_before_training(cli, run):
    """Found by hardening (bad input and faults)."""
    _edit_config(run, lambda m: {**m, "model": {**m["model"], "latent_dim": 5}})
    before = snapshot(run)
    one = one_line_error(cli("train", "--out", run, "--resume", "--epochs", "2", "--quiet"))
    assert "does not match" in one and "latent_dim" in one
    assert snapshot(run) == before


def test_killed_before_the_first_checkpoint_says_what_to_do(cli, tmp_path):
    """Found by hardening (bad input and faults)."""
    (tmp_path / "run").mkdir()
    one = one_line_error(cli("train", "--out", tmp_path / "run", "--resume", "--quiet"))
    assert "stopped before its first epoch ended" in one and "without --resume" in one


def test_a_run_that_diverges_again_leaves_its_directory_exactly_as_it_was(cli, run):
    """Found by hardening (bad input and faults)."""
    before = snapshot(run)
    result = cli("train", "--out", run, "--resume", "--epochs", "2", "--lr", "1e12", "--quiet")
    assert result.returncode == 3, result.stderr
    assert snapshot(run) == before  # config.json keeps the good lr, metrics.jsonl its lines


def test_sigterm_stops_with_a_message_and_the_checkpoint_intact(digits, tmp_path, cli_process):
    """Found by hardening (bad input and faults)."""
    out = tmp_path / "run"
    src = str(Path(__file__).resolve().parents[2] / "src")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vaelab",
            "train",
            "--data",
            str(digits),
            "--out",
            str(out),
            "--epochs",
            "400",
            "--quiet",
            "--batch-size",
            "32",
            "--threads",
            "1",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
    )
    deadline = time.monotonic() + 120
    while not (out / "training_state.safetensors").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err and err.strip().count("\n") == 0
    assert not list(out.rglob("*.tmp"))
    from vaelab.checkpoint import read_state_info

    done = read_state_info(out / "training_state.safetensors")["epoch"]
    resumed = cli_process("train", "--out", out, "--resume", "--epochs", str(done + 1), "--quiet")
    assert resumed.returncode == 0, resumed.stderr


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=lambda c: c[0])
def test_every_run_command_on_an_unreadable_file_and_a_read_only_folder(cli, run, monkeypatch, command):
    """Root reads and writes everything, so permissions are simulated: an unreadable config.json, then a run
    folder that cannot be written (for the commands that write into it). Found by hardening (bad input and faults)."""
    read_text = Path.read_text

    def unreadable(self, *args, **kwargs):
        if self.name == "config.json":
            raise PermissionError(13, "Permission denied")
        return read_text(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "read_text", unreadable)
        assert "config.json: cannot be read (Permission denied)" in one_line_error(cli(command[0], run, *command[1:]))
    import os

    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != run and access(path, mode, **kw))
    before = snapshot(run)
    assert f"{run} is not writable" in one_line_error(cli(command[0], run, *command[1:]))
    assert snapshot(run) == before


def test_train_compare_explore_and_data_on_missing_unreadable_and_read_only_paths(cli, digits, tmp_path, monkeypatch):
    """Found by hardening (bad input and faults)."""
    import os

    missing = tmp_path / "missing"
    for args in (
        ["train", "--data", missing, "--out", tmp_path / "r"],
        ["train", "--config", missing],
        ["compare", "--data", missing, "--out", tmp_path / "s"],
        ["explore", missing, "--no-browser", "--quiet"],
        ["data", "info", missing],
        ["eval", missing],
    ):
        assert str(missing) in one_line_error(cli(*args)), args
    toml = tmp_path / "run.toml"
    toml.write_text("epochs = 1\n")
    read_text = Path.read_text
    monkeypatch.setattr(
        Path,
        "read_text",
        lambda self, *a, **k: (
            (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
            if self == toml
            else read_text(self, *a, **k)
        ),
    )
    assert "cannot be read (permission denied)" in one_line_error(
        cli("train", "--config", toml, "--out", tmp_path / "r")
    )
    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != locked and access(path, mode, **kw))
    for args in (
        ["train", "--data", digits, "--epochs", "1", "--quiet", "--out", locked / "run"],
        ["compare", "--data", digits, "--epochs", "1", "--quiet", "--out", locked / "study"],
    ):
        assert "is not writable" in one_line_error(cli(*args)), args
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("command", [["explore", "no-such-run", "--no-browser"], ["train", "--epochs", "1"]])
def test_ctrl_c_while_the_command_starts_is_one_line(command, tmp_path):
    """Ctrl-C in the first seconds, while torch is being imported (the parser's command modules import it), prints
    one line and exits 130: the imports run inside the command's handlers. Found by hardening (issue 27)."""
    from tests.helpers.processes import SRC, environment

    process = subprocess.Popen(
        [sys.executable, "-m", "vaelab", *command],
        cwd=tmp_path,
        env={**environment(), "PYTHONPATH": SRC},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:  # until torch's library is being loaded
        try:
            if "libtorch" in maps.read_text():
                break
        except OSError:
            pass
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (process.returncode, err)
    assert err.strip().count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("vaelab"), err
