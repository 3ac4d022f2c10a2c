"""Data-parallel training: the loop's multi-process arithmetic in one process, and 2 real processes.

In one process, torch.distributed's collectives are replaced by those of a mirror (tests/helpers/world.py), a
second process that computed exactly what this one did (an all-reduce doubles a sum, an all-gather hands back this
process's object for every rank unless a test says otherwise). Each process's shard, its noise seed, the epoch's
step count, the global progress, the gathered noise states and the weight-checksum guard are checked against the
same work written out; these run in the mutation selection (scripts/mutate.py), where spawning processes per mutant
would cost too much. The end-to-end tests run 2 processes on the CPU with gloo, launched by torchrun, against one."""

import copy
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from tests.helpers import tiny
from tests.helpers.processes import environment, torchrun
from tests.helpers.tiny import CPU, SHAPE, Bar, uint8
from tests.helpers.world import Mirror
from vaelab import data, kinds
from vaelab.checkpoint import read_safetensors
from vaelab.device import World
from vaelab.rundir import RunDir
from vaelab.training import loop


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(1200, 300)


def last_epoch(run):
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.mark.e2e
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


@pytest.mark.e2e
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


@pytest.mark.e2e
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


@pytest.mark.e2e
def test_global_batch_must_divide_among_processes(digits, tmp_path):
    result = torchrun(
        "train", "--data", digits, "--out", tmp_path / "r", "--batch-size", "63", "--quiet", "--epochs", "1"
    )
    assert result.returncode != 0 and "must divide evenly among 2 processes" in result.stderr


@pytest.mark.e2e
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


@pytest.fixture(scope="module")
def dataset():
    images = uint8(35)  # 25 training images: 24 usable by two processes, 12 each
    return data.Dataset(
        name="tiny",
        train=data.Split(images[:25], torch.arange(25) % 2),
        test=data.Split(images[25:], torch.arange(10) % 2),
        classes=["a", "b"],
    )


def make(tmp_path, **over):
    return tiny.make(tmp_path, **{"epochs": 2, **over})


def test_rank_1_of_2_trains_on_its_shard_and_its_sums_are_summed_across(tmp_path, dataset, mirror):
    """Global batch 8: each process takes 4 images of its shard (every second image of the shared order, from
    its rank), 3 steps for the 12 images of its shard; the progress passed on counts those steps; the epoch's
    means are the sums of both processes over the 24 images they share out. Found by mutation testing."""
    world = World(rank=1, size=2)
    config = make(tmp_path, kind="vamp", pseudo_inputs=3, warmup_epochs=4.0)
    trainer = kinds.get("vamp").trainer(config, SHAPE, CPU, world)
    twin = copy.deepcopy(trainer)
    seen = []
    forward = trainer.forward
    trainer.forward = lambda x, y, progress, noise: (
        seen.append((x.shape[0], progress)) or forward(x, y, progress, noise)
    )
    bar = Bar()
    means, _ = loop.train_epoch(
        trainer,
        dataset.train.images,
        None,
        config,
        2,
        torch.Generator().manual_seed(3),
        torch.Generator().manual_seed(4),
        world,
        CPU,
        bar,
    )
    assert seen == [(4, 1.0), (4, 1 + 1 / 3), (4, 1 + 2 / 3)]
    assert bar.updates == [8, 8, 8]  # the images of both processes
    order = torch.randperm(25, generator=torch.Generator().manual_seed(3))[1:24:2]
    noise, totals = torch.Generator().manual_seed(4), {}
    for i in range(3):
        x = data.to_float(dataset.train.images[order[4 * i : 4 * i + 4]])
        terms, pending = twin.forward(x, None, 1 + i / 3, noise)
        twin.update(pending)
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + float(value.detach())
    assert means == pytest.approx({name: 2 * value / 24 for name, value in totals.items()}, rel=1e-6)
    for a, b in zip(trainer.model.parameters(), twin.model.parameters()):
        torch.testing.assert_close(a, b)


def test_a_run_of_two_processes_counts_steps_and_images_of_both_and_keeps_every_noise_state(tmp_path, dataset, mirror):
    """Found by mutation testing."""
    other_noise = torch.Generator().manual_seed(99).get_state()
    mirror.gathered = {1: other_noise}  # rank 1's noise state (its weights' checksum is this process's)
    config = make(tmp_path, kind="iwae", k=2)
    run = RunDir(tmp_path / "run")
    started = time.perf_counter()
    loop._train(config, kinds.get("iwae"), dataset, False, World(rank=0, size=2), run, CPU, None)
    elapsed = time.perf_counter() - started
    epochs = run.read_metrics()[1]
    assert [(e["epoch"], e["step"]) for e in epochs] == [(1, 3), (2, 6)]  # 12 images per process, 4 per step
    for e in epochs:
        assert e["images_per_s"] == pytest.approx(24 / e["seconds"]) and 0 < e["seconds"] < elapsed
    tensors, _ = read_safetensors(run.state_path)
    assert torch.equal(tensors["rng/noise1"], other_noise)
    noise = torch.Generator()
    trainer = kinds.get("iwae").trainer(config, SHAPE, CPU, World(rank=1, size=2))
    assert loop._restore(trainer, run, torch.Generator(), noise, World(rank=1, size=2), config) == 2
    assert torch.equal(noise.get_state(), other_noise)  # rank 1 resumes its own stream


def test_rank_1_seeds_its_noise_with_its_rank_and_writes_nothing(tmp_path, dataset, mirror, capfd, monkeypatch):
    """Found by mutation testing."""
    monkeypatch.setenv("VAELAB_PROGRESS", "1")
    world = World(rank=1, size=2)
    config = make(tmp_path, kind="iwae", k=2, seed=3, binarize=True, quiet=False)
    trained = loop._train(config, kinds.get("iwae"), dataset, False, world, RunDir(tmp_path / "run"), CPU, None)
    assert not (tmp_path / "run").exists() and capfd.readouterr().err == ""  # neither files nor a bar off rank 0
    torch.manual_seed(3)
    trainer = kinds.get("iwae").trainer(config, SHAPE, CPU, world)
    order, noise = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3 + 1 + 7919)
    for epoch in (1, 2):
        loop.train_epoch(trainer, dataset.train.images, None, config, epoch, order, noise, world, CPU)
    for a, b in zip(trained.model.parameters(), trainer.model.parameters()):
        assert torch.equal(a, b)


def test_the_weight_checksums_of_all_processes_must_agree(mirror):
    """Found by mutation testing."""
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(600.0)
        model.bias.fill_(400.0)  # checksum 1000: a tolerance of 1e-9 relative, 1e-6
    world = World(rank=0, size=2)
    mirror.gathered = {1: 1000.0 + 0.5e-6}
    loop._check_in_sync(model, world)
    mirror.gathered = {1: 1000.0 + 2e-6}
    with pytest.raises(RuntimeError) as caught:
        loop._check_in_sync(model, world)
    assert str(caught.value) == (
        f"processes ended with different weights (checksums {[1000.0, 1000.0 + 2e-6]}): "
        "data-parallel training is out of sync"
    )
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()  # checksum 0: the tolerance is absolute, 1e-9
    mirror.gathered = {1: 1e-9}
    loop._check_in_sync(model, world)  # exactly at the tolerance: still in sync
    mirror.gathered = {1: 1.5e-9}
    with pytest.raises(RuntimeError, match="out of sync"):
        loop._check_in_sync(model, world)
    mirror.gathered = {1: 5.0}
    loop._check_in_sync(model, World())  # one process: nothing to compare, no collective
    with pytest.raises(RuntimeError, match="out of sync"):
        loop._check_in_sync(model, World(rank=0, size=2))


def test_the_noise_states_of_the_other_ranks_are_gathered_by_rank(monkeypatch):
    """Found by mutation testing."""
    fake = Mirror(3).install(monkeypatch)
    states = {r: torch.Generator().manual_seed(r).get_state() for r in range(3)}
    fake.gathered = states
    gathered = loop._other_noise_states(torch.Generator().manual_seed(0), World(rank=0, size=3))
    assert list(gathered) == ["noise1", "noise2"]
    assert torch.equal(gathered["noise1"], states[1]) and torch.equal(gathered["noise2"], states[2])
    assert loop._other_noise_states(torch.Generator(), World()) == {}


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["iwae", "vamp", "cvae"])
def test_new_kinds_train_on_two_processes(digits_npz, tmp_path, kind):
    out = tmp_path / kind
    result = torchrun(
        "train",
        "--kind",
        kind,
        "--out",
        out,
        "--data",
        digits_npz(600, 100),
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr[-3000:]  # includes the check that all processes hold the same weights
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()[1:]]
    assert [e["epoch"] for e in lines] == [1, 2] and math.isfinite(lines[-1]["test"]["loss"])
