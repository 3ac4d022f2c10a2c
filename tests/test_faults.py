"""Fault injection: a training subprocess killed with SIGKILL at random (seeded) moments, then resumed, ends
with the weights of an uninterrupted run, no orphaned temporary file, and every file of its run readable."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

SRC = str(Path(__file__).resolve().parents[1] / "src")
EPOCHS = 8


def command(digits: Path, out: Path, resume: bool) -> list[str]:
    args = [
        sys.executable,
        "-m",
        "vaelab",
        "train",
        "--data",
        str(digits),
        "--out",
        str(out),
        "--epochs",
        str(EPOCHS),
        "--quiet",
        "--batch-size",
        "32",
        "--hidden",
        "32",
        "--latent-dim",
        "2",
        "--threads",
        "1",
        "--seed",
        "3",
    ]
    return args + (["--resume"] if resume else [])


def run(args: list[str], kill_after: float | None = None, watch: Path | None = None) -> tuple[int, float, float]:
    """(exit code, seconds until `watch` appeared, seconds in all); SIGKILL after `kill_after` seconds."""
    env = {**os.environ, "PYTHONPATH": SRC}
    started, appeared = time.monotonic(), None
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    while process.poll() is None:
        now = time.monotonic() - started
        if watch is not None and appeared is None and watch.exists():
            appeared = now
        if kill_after is not None and now >= kill_after:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait(timeout=300)
    return process.returncode, appeared or 0.0, time.monotonic() - started


def check_readable(out: Path) -> None:
    from vaelab.rundir import RunDir

    header, epochs = RunDir(out).read_metrics()
    assert [e["epoch"] for e in epochs] == list(range(1, EPOCHS + 1))
    for path in out.rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            load_file(path)
        elif path.suffix == ".png":
            Image.open(path).load()


def kill_and_resume(digits: Path, reference: dict, window: tuple[float, float], out: Path, rng: random.Random) -> int:
    """Kill training at random moments of `window` (from the start of training to the end of the run, as the
    uninterrupted run took them) until a run completes; returns how many kills it took."""
    kills, (lo, hi) = 0, window
    for _ in range(20):
        resume = (out / "training_state.safetensors").exists()
        code, _, _ = run(command(digits, out, resume), kill_after=rng.uniform(lo, hi) if kills < 3 else None)
        if code == 0 and kills == 0:  # finished before its kill (the machine got faster): start over, kill sooner
            shutil.rmtree(out)
            hi = lo + 0.6 * (hi - lo)
            continue
        if code == 0:
            break
        assert code == -signal.SIGKILL, code
        kills += 1
    assert code == 0 and kills > 0
    weights = load_file(out / "model.safetensors")
    assert weights.keys() == reference.keys() and all(torch.equal(weights[k], reference[k]) for k in weights)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")], "orphaned temporary files"
    check_readable(out)
    return kills


@pytest.fixture(scope="module")
def reference(digits_npz, tmp_path_factory):
    digits = digits_npz(256, 64)
    out = tmp_path_factory.mktemp("faults") / "uninterrupted"
    code, training_starts, ends = run(command(digits, out, False), watch=out / "config.json")
    assert code == 0
    return digits, load_file(out / "model.safetensors"), (training_starts, ends)


def trials(reference, tmp_path, seeds) -> None:
    digits, weights, window = reference
    kills = [kill_and_resume(digits, weights, window, tmp_path / f"trial{seed}", random.Random(seed)) for seed in seeds]
    print(f"fault injection: {len(seeds)} trials, {sum(kills)} kills, every resume identical, no orphan")
    assert sum(kills) >= len(seeds)  # the kills did land


def test_killed_runs_resume_to_the_same_weights(reference, tmp_path):
    started = time.monotonic()
    trials(reference, tmp_path, seeds=range(3))
    assert time.monotonic() - started < 240


@pytest.mark.thorough
def test_killed_runs_resume_to_the_same_weights_many_trials(reference, tmp_path):
    trials(reference, tmp_path, seeds=range(100, 120))
