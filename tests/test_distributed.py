"""Data-parallel training: 2 processes on the CPU with gloo, launched by torchrun, against one process."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SRC = str(Path(__file__).resolve().parents[1] / "src")


def torchrun(*args, nproc=2, timeout=300):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               "-m", "vaelab", *map(str, args)]  # fmt: skip
    env = {"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "OMP_NUM_THREADS": "1",
           "VAELAB_DATA_DIR": __import__("os").environ["VAELAB_DATA_DIR"]}  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(1200, 300)


def last_epoch(run):
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.mark.slow
def test_two_processes_train_like_one(cli, digits, tmp_path):
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    common = ["--data", digits, "--epochs", "4", "--batch-size", "64", "--quiet", "--binarize"]
    result = torchrun("train", "--out", ddp, *common)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("run written") + result.stderr.count("run written") == 1  # rank 0 only
    assert cli("train", "--out", single, "--threads", "1", *common).returncode == 0
    for name in (
        "config.json",
        "model.safetensors",
        "training_state.safetensors",
        "report.html",
        "curves.png",
        "samples.png",
    ):
        assert (ddp / name).is_file(), name
    a, b = last_epoch(ddp), last_epoch(single)
    assert a["step"] == b["step"] == 4 * 19  # global batches: ceil(1200 / 64) = 19 steps per epoch, as on one process
    assert a["test"]["loss"] == pytest.approx(b["test"]["loss"], rel=0.02)  # converges like one process
    assert a["train"]["loss"] == pytest.approx(b["train"]["loss"], rel=0.02)
    assert a["test"]["loss"] < json.loads((ddp / "metrics.jsonl").read_text().splitlines()[1])["test"]["loss"]


@pytest.mark.slow
def test_two_processes_resume_exactly(digits, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    common = ["--data", digits, "--batch-size", "64", "--quiet", "--binarize"]
    for out, epochs in ((whole, "2"), (split, "1")):
        result = torchrun("train", "--out", out, "--epochs", epochs, *common)
        assert result.returncode == 0, result.stderr[-3000:]
    resumed = torchrun("train", "--out", split, "--epochs", "2", "--resume", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    x, y = load_file(whole / "model.safetensors"), load_file(split / "model.safetensors")
    assert all(torch.equal(x[k], y[k]) for k in x)


def test_global_batch_must_divide_among_processes(digits, tmp_path):
    result = torchrun(
        "train", "--data", digits, "--out", tmp_path / "r", "--batch-size", "63", "--quiet", "--epochs", "1"
    )
    assert result.returncode != 0 and "must divide evenly among 2 processes" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gan", "vaegan"])
def test_adversarial_models_train_on_two_processes(digits, tmp_path, model):
    out = tmp_path / model
    result = torchrun(
        "train", "--model", model, "--out", out, "--data", digits, "--epochs", "2", "--batch-size", "64", "--quiet"
    )
    assert result.returncode == 0, result.stderr[-3000:]  # includes the check that all processes hold the same weights
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()[1:]]
    assert [e["epoch"] for e in lines] == [1, 2] and lines[-1]["step"] == 2 * 19
    assert 0 < lines[-1]["test"]["d_real"] < 1
    for name in ("model.safetensors", "discriminator.safetensors", "report.html", "samples.png"):
        assert (out / name).is_file(), name
