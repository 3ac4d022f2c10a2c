"""Data-parallel training: 2 processes on the CPU with gloo, launched by torchrun, against one process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SRC = str(Path(__file__).resolve().parents[2] / "src")


def environment() -> dict[str, str]:
    return {
        "PYTHONPATH": SRC,
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
        "OMP_NUM_THREADS": "1",
        "VAELAB_DATA_DIR": os.environ["VAELAB_DATA_DIR"],
    }


def torchrun(*args, nproc=2, timeout=300, module="vaelab"):
    """`torchrun --standalone --nproc-per-node N -m vaelab ARGS` (or a script, with module=None)."""
    target = ["-m", module] if module else []
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        *target,
        *map(str, args),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment())


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


def test_two_processes_average_the_gradients_of_the_global_batch(digits, tmp_path):
    """One SGD step (lr 1, no momentum) on the same global batch of 64 images, on one process and on two:
    the weights must change by the same mean gradient. Catches gradients summed across processes (a change
    twice as large), not reduced at all (each process follows its own half), or divided by the global batch
    twice; for the kind that goes through DistributedDataParallel (vae) and one that averages by hand (iwae).
    Adam's step does not depend on the gradient's scale, so comparing Adam-trained runs cannot see this."""
    script = Path(__file__).resolve().parents[1] / "helpers" / "ddp_step.py"
    one = subprocess.run(
        [sys.executable, script, tmp_path, digits, "vae", "iwae"],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment(),
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = torchrun(script, tmp_path, digits, "vae", "iwae", module=None)
    assert two.returncode == 0, two.stderr[-3000:]
    for kind in ("vae", "iwae"):
        single, ddp = load_file(tmp_path / f"{kind}-1.safetensors"), load_file(tmp_path / f"{kind}-2.safetensors")
        assert single.keys() == ddp.keys()
        for name, step in single.items():
            assert step.abs().max() > 0, (kind, name)
            torch.testing.assert_close(
                ddp[name],
                step,
                rtol=1e-4,
                atol=1e-6 * float(step.abs().max()),
                msg=lambda m, kind=kind, name=name: f"{kind} {name}: {m}",
            )
        means = [json.loads((tmp_path / f"{kind}-{n}.json").read_text()) for n in (1, 2)]
        assert means[0].keys() == means[1].keys() and "loss" in means[0]
        for term in means[0]:  # the epoch's means per image, reduced across processes
            assert means[1][term] == pytest.approx(means[0][term], rel=1e-5), (kind, term)


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
    # the logged test D(x) is the whole test split's, reduced across processes (not rank 0's half, not a sum):
    # recomputed here from the saved discriminator
    from vaelab import data
    from vaelab.checkpoint import load_weights, read_tensors
    from vaelab.models import VAEConfig
    from vaelab.models.gan import Discriminator

    disc = Discriminator(VAEConfig(**json.loads((out / "config.json").read_text())["model"]))
    load_weights(disc, read_tensors(out / "discriminator.safetensors"), "discriminator.safetensors")
    with torch.no_grad():
        d_real = torch.sigmoid(disc(data.to_float(data.load(digits).test.images))[0]).mean()
    assert lines[-1]["test"]["d_real"] == pytest.approx(float(d_real), rel=1e-4)
    for name in ("model.safetensors", "discriminator.safetensors", "report.html", "samples.png"):
        assert (out / name).is_file(), name
