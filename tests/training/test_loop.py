"""The training loop (vaelab.training.loop), in process on a tiny data set (24 images of 1 x 4 x 4): the files a run
writes, exact epoch means against a written-out loop, resume, the run directory checked before any work, the
progress bar, the divergence diagnosis; end to end, every kind's divergence through the command line."""

import copy
import json
import math
import time

import pytest
import torch

import vaelab
from tests.helpers import runs, tiny
from tests.helpers.tiny import SHAPE, Bar
from vaelab import data, kinds
from vaelab.checkpoint import read_safetensors, read_state_info
from vaelab.device import World
from vaelab.errors import ConfigError, DivergenceError, RunError
from vaelab.losses import kl_weight
from vaelab.models import VAE, VAEConfig
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.rundir import RunDir
from vaelab.training import common, loop
from vaelab.training.split import split_terms


@pytest.fixture(scope="module")
def dataset():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (34, *SHAPE), dtype=torch.uint8, generator=g)
    labels = torch.arange(34) % 2
    return data.Dataset(
        name="tiny",
        train=data.Split(images[:24], labels[:24]),
        test=data.Split(images[24:], labels[24:]),
        classes=["a", "b"],
        source="made in the test",
    )


def make(tmp_path, **over):
    return tiny.make(tmp_path, **{"epochs": 2, **over})


def train(config, dataset, resume=False, on_epoch=None):
    run_dir = loop.prepare_run_dir(config, resume)
    return loop.train(config, kinds.get(config.kind), dataset, run_dir, resume, on_epoch=on_epoch)


def test_a_run_writes_its_config_metrics_weights_and_state(tmp_path, dataset):
    """Found by mutation testing."""
    config = make(tmp_path, beta=2.0, warmup_epochs=4.0)
    seen = []
    started = time.perf_counter()
    trained = train(
        config, dataset, on_epoch=lambda run_dir, epoch, model: seen.append((run_dir.path, epoch, model.training))
    )
    elapsed = time.perf_counter() - started
    run = RunDir(tmp_path / "run")
    assert trained.run_dir.path == run.path and not trained.model.training
    assert seen == [(run.path, 1, False), (run.path, 2, False)]
    meta = run.read_config()
    assert (
        meta["kind"] == "vae" and meta["train"] == config.to_dict() and meta["model"] == trained.model.config.to_dict()
    )
    assert meta["data"] == {
        "name": "tiny",
        "source": "made in the test",
        "shape": [1, 4, 4],
        "classes": ["a", "b"],
        "n_train": 24,
        "n_test": 10,
    }
    assert meta["versions"] == loop.versions() and set(meta["versions"]) == {"vaelab", "torch", "numpy", "python"}
    header, epochs = run.read_metrics()
    assert header == {"config": config.to_dict(), "versions": loop.versions()}
    assert [(e["epoch"], e["step"]) for e in epochs] == [(1, 3), (2, 6)]
    for e in epochs:
        assert set(e["train"]) == set(e["test"]) == {"loss", "recon", "kl"}
        assert e["beta"] == kl_weight(2.0, e["epoch"], 4.0) and e["lr"] == 1e-3
        assert e["images_per_s"] == pytest.approx(24 / e["seconds"]) and 0 < e["seconds"] < elapsed
    model = VAE(VAEConfig(**meta["model"]))
    model.load_state_dict(read_safetensors(run.model_path)[0])
    for k, v in trained.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    assert read_state_info(run.state_path) == {"epoch": 2, "step": 6}
    assert sorted(p.name for p in run.path.iterdir()) == [
        "config.json",
        "metrics.jsonl",
        "model.safetensors",
        "training_state.safetensors",
    ]
    # the last epoch's test terms are those of the trained model on the test split, with the seeded eval noise
    expected = split_terms(
        trained.model, dataset.test.images, beta=kl_weight(2.0, 2, 4.0), seed=EVAL_SEED_OFFSET, batch_size=4
    )
    assert epochs[-1]["test"] == pytest.approx(expected, rel=1e-6)


def test_the_threads_option_reaches_torch_and_zero_lets_vaelab_choose(tmp_path, dataset, monkeypatch):
    """`--threads N` fixes torch's count for the run; the default (0) hands it to `vaelab.threads`, which
    re-measures the free cores between batches."""
    from vaelab import threads

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_governor", None)
    try:
        train(tiny.make(tmp_path / "fixed", threads=1), dataset)
        assert torch.get_num_threads() == 1 and threads._governor is None
        ticks = []
        monkeypatch.setattr(threads, "tick", lambda: ticks.append(1))
        train(tiny.make(tmp_path / "adapting"), dataset)
        assert threads._governor is not None and len(ticks) >= 1
    finally:
        torch.set_num_threads(before)


def test_epoch_means_are_those_of_a_written_out_loop(tmp_path, dataset):
    """train_epoch against the same epoch written out: the batch order, the noise and the per-image means.
    Found by mutation testing."""
    config = make(tmp_path, batch_size=10, binarize=True, warmup_epochs=3.0)  # 24 images: batches of 10, 10, 4
    trainer = kinds.get("vae").trainer(config, SHAPE, torch.device("cpu"), World())
    twin = copy.deepcopy(trainer)
    progress = []
    forward = trainer.forward
    trainer.forward = lambda x, y, p, generator: progress.append(p) or forward(x, y, p, generator)
    means, seconds = loop.train_epoch(
        trainer,
        dataset.train.images,
        None,
        config,
        2,
        torch.Generator().manual_seed(3),
        torch.Generator().manual_seed(4),
        World(),
        torch.device("cpu"),
    )
    assert seconds > 0 and trainer.model.training
    assert progress == [1, 1 + 1 / 3, 1 + 2 / 3]  # the epochs done, fractions included: the KL warm-up reads it
    order, noise = torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)
    totals = {}
    for i, (x, _) in enumerate(data.batches(dataset.train.images, 10, shuffle=True, generator=order)):
        terms, pending = twin.forward(x, None, 1 + i / 3, noise)
        twin.update(pending)
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + float(value.detach())
    assert means == pytest.approx({name: value / 24 for name, value in totals.items()}, rel=1e-6)
    for a, b in zip(trainer.model.parameters(), twin.model.parameters()):
        assert torch.equal(a, b)


def test_the_schedule_sets_each_step_s_learning_rate_and_the_epoch_restores_the_option_s(tmp_path, dataset):
    """--lr-schedule cosine with --lr-warmup: each step's Adam runs at the option's rate times the schedule's factor at
    that step's progress (fractions of an epoch included), and the optimizer holds the option's rate again after the
    epoch, so a checkpoint saves it unscaled. Catches a schedule read once per epoch, or left applied."""
    config = make(tmp_path, batch_size=10, epochs=4, lr=2e-3, lr_schedule="cosine", lr_warmup=1.5)
    trainer = kinds.get("vae").trainer(config, SHAPE, torch.device("cpu"), World())
    seen = []
    update = trainer.update
    trainer.update = lambda pending: seen.append(trainer.optimizers["adam"].param_groups[0]["lr"]) or update(pending)
    args = (torch.Generator().manual_seed(3), torch.Generator().manual_seed(4), World(), torch.device("cpu"))
    loop.train_epoch(trainer, dataset.train.images, None, config, 2, *args)
    expected = [2e-3 * common.lr_factor("cosine", 1.5, 1 + i / 3, 4) for i in range(3)]
    assert seen == pytest.approx(expected) and seen[0] == pytest.approx(2e-3 * 1 / 1.5)
    assert trainer.optimizers["adam"].param_groups[0]["lr"] == 2e-3


def test_a_run_with_a_schedule_resumes_exactly(tmp_path, dataset):
    """The schedule depends on the step alone: a cosine run stopped after 1 of 3 epochs and resumed ends with the
    weights of the run that was not stopped."""
    options = {"lr_schedule": "cosine", "lr_warmup": 0.5, "epochs": 3}
    straight = train(make(tmp_path / "a", **options), dataset)

    def stop(run_dir, epoch, model):  # called before the epoch's checkpoint: epoch 1's is the last one saved
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(make(tmp_path / "b", **options), dataset, on_epoch=stop)
    assert read_state_info(RunDir(tmp_path / "b" / "run").state_path)["epoch"] == 1
    resumed = train(make(tmp_path / "b", **options), dataset, resume=True)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_epoch_means_of_a_kind_whose_terms_are_batch_means(tmp_path, dataset):
    """Found by mutation testing."""
    config = make(tmp_path, kind="gan", batch_size=10)
    trainer = kinds.get("gan").trainer(config, SHAPE, torch.device("cpu"), World())
    twin = copy.deepcopy(trainer)
    means, _ = loop.train_epoch(
        trainer,
        dataset.train.images,
        dataset.train.labels,
        config,
        2,
        torch.Generator().manual_seed(3),
        torch.Generator().manual_seed(4),
        World(),
        torch.device("cpu"),
    )
    order, noise = torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)
    totals = {}
    for x, y in data.batches(dataset.train.images, 10, labels=dataset.train.labels, shuffle=True, generator=order):
        terms, pending = twin.forward(x, y, 0.0, noise)
        twin.update(pending)
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + float(value.detach()) * x.shape[0]
    assert means == pytest.approx({name: value / 24 for name, value in totals.items()}, rel=1e-6)


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path, dataset):
    """Found by mutation testing."""
    straight = train(make(tmp_path / "a", epochs=3), dataset)
    first = make(tmp_path / "b", epochs=1)
    train(first, dataset)
    run = RunDir(tmp_path / "b" / "run")
    header_before = run.read_metrics()[0]
    resumed = train(make(tmp_path / "b", epochs=3, lr=1e-3), dataset, resume=True)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    one, two = RunDir(tmp_path / "a" / "run").read_metrics()[1], run.read_metrics()[1]
    assert [(e["epoch"], e["step"], e["train"], e["test"]) for e in one] == [
        (e["epoch"], e["step"], e["train"], e["test"]) for e in two
    ]
    assert run.read_metrics()[0] == header_before and run.read_config()["train"]["epochs"] == 3
    assert read_state_info(run.state_path) == {"epoch": 3, "step": 9}


def test_resume_drops_the_lines_written_after_the_checkpoint_and_sets_the_new_lr(tmp_path, dataset):
    """Found by mutation testing."""
    train(make(tmp_path, epochs=2), dataset)
    run = RunDir(tmp_path / "run")
    header, epochs = run.read_metrics()
    run.append_metrics({**epochs[-1], "epoch": 3})  # a line of an epoch whose checkpoint was never written
    trained = train(make(tmp_path, epochs=3, lr=5e-4), dataset, resume=True)
    assert [e["epoch"] for e in run.read_metrics()[1]] == [1, 2, 3]
    assert run.read_metrics()[1][-1]["lr"] == 5e-4 and run.read_config()["train"]["lr"] == 5e-4
    assert trained.run_dir.path == run.path


def test_resume_refuses_an_edited_model_section_and_damaged_states(tmp_path, dataset):
    """Found by mutation testing."""
    train(make(tmp_path, epochs=1), dataset)
    run = RunDir(tmp_path / "run")
    meta = run.read_config()
    run.write_config({**meta, "model": {**meta["model"], "latent_dim": 3, "hidden": [9]}})
    with pytest.raises(RunError) as caught:
        train(make(tmp_path, epochs=2), dataset, resume=True)
    assert str(caught.value) == (
        f"{run.config_path}: the model section does not match the run's options (hidden, latent_dim); "
        "it was edited: restore it, or train a new run"
    )
    run.write_config(meta)
    tensors, metadata = read_safetensors(run.state_path)
    from safetensors.torch import save_file

    for info, rng in ((0, True), (10**7 + 1, True), ("1", True), (True, True), (1, False)):
        kept = {k: v for k, v in tensors.items() if rng or not k.startswith("rng/order")}
        save_file(kept, run.state_path, metadata={**metadata, "info": json.dumps({"epoch": info, "step": 3})})
        with pytest.raises(RunError, match=r"damaged \(epoch "):
            train(make(tmp_path, epochs=2), dataset, resume=True)
    save_file({**tensors, "rng/order": torch.zeros(3, dtype=torch.uint8)}, run.state_path, metadata=metadata)
    with pytest.raises(RunError, match=r"training_state.safetensors: damaged random-generator states \("):
        train(make(tmp_path, epochs=2), dataset, resume=True)


def test_prepare_run_dir_checks_before_any_work(tmp_path, dataset, monkeypatch):
    """Found by mutation testing."""
    config = make(tmp_path)
    with pytest.raises(RunError) as caught:
        loop.prepare_run_dir(config, resume=True)
    assert str(caught.value).startswith(
        f"{config.out}: no training state to resume from (training_state.safetensors is missing"
    )
    assert not (tmp_path / "run").exists()
    train(make(tmp_path, epochs=1), dataset)
    with pytest.raises(RunError) as caught:
        loop.prepare_run_dir(config, resume=False)
    assert (
        str(caught.value)
        == f"{tmp_path / 'run'}: already holds a run; add --resume to continue it, or choose another --out"
    )
    assert loop.prepare_run_dir(config, resume=True).path == tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    default = loop.prepare_run_dir(make(tmp_path, out=None, data="some/where/digits.npz/"), resume=False)
    assert default.path == tmp_path / "runs" / "digits.npz-mlp-z2" or str(default.path) == "runs/digits.npz-mlp-z2"


def test_default_run_dirs_count_up(tmp_path):
    """Found by mutation testing."""
    config = make(tmp_path, data="mnist-mini", arch="conv", latent_dim=4)
    root = str(tmp_path / "runs")
    assert loop.default_run_dir(config, root).path == tmp_path / "runs" / "mnist-mini-conv-z4"
    (tmp_path / "runs" / "mnist-mini-conv-z4").mkdir(parents=True)
    assert loop.default_run_dir(config, root).path == tmp_path / "runs" / "mnist-mini-conv-z4-2"
    (tmp_path / "runs" / "mnist-mini-conv-z4-2").mkdir()
    assert loop.default_run_dir(config, root).path == tmp_path / "runs" / "mnist-mini-conv-z4-3"


def test_a_diverging_run_is_diagnosed_and_keeps_its_checkpoint(tmp_path, dataset, monkeypatch):
    """Found by mutation testing."""
    train(make(tmp_path, epochs=1), dataset)
    run = RunDir(tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.path.iterdir()}
    forward = kinds.get("vae").trainer.forward
    calls = []

    def poisoned(self, x, y, progress, noise):
        calls.append(progress)
        terms, loss = forward(self, x, y, progress, noise)
        if len(calls) == 2:
            terms["kl"] = terms["kl"] * float("nan")
        return terms, loss

    monkeypatch.setattr(kinds.get("vae").trainer, "forward", poisoned)
    with pytest.raises(DivergenceError) as caught:
        train(make(tmp_path, epochs=3, lr=2e-3), dataset, resume=True)
    assert str(caught.value) == (
        "training diverged: the kl term became non-finite at step 5 (epoch 2); try a lower --lr (now 0.002), "
        f"gradient clipping (--grad-clip 1.0), checking that the data's values lie in [0, 1]; the checkpoint of epoch 1 "
        f"in {run.path} is intact"
    )
    assert {p.name: p.read_bytes() for p in run.path.iterdir()} == before
    calls.clear()
    with pytest.raises(DivergenceError) as caught:
        train(make(tmp_path / "b", epochs=1, grad_clip=1.0), dataset)
    assert str(caught.value).startswith(
        "training diverged: the kl term became non-finite at step 2 (epoch 1); try a "
        "lower --lr (now 0.001), checking that"
    )
    assert str(caught.value).endswith("; no checkpoint was written yet")
    assert not RunDir(tmp_path / "b" / "run").has_state()


def test_diagnose_names_the_first_bad_term_and_the_kind_s_learning_rate(tmp_path):
    """Found by mutation testing."""
    config = make(tmp_path, kind="gan", gan_lr=3e-4, grad_clip=0.5)
    bad = loop.NonFinite({"d_loss": torch.tensor(1.0), "g_loss": torch.tensor([1.0, math.inf])}, 2)
    error = loop.diagnose(bad, 7, 1, config, "gan_lr", RunDir(tmp_path))
    assert str(error) == (
        "training diverged: the g_loss term became non-finite at step 7 (epoch 1); try a lower "
        "--gan-lr (now 0.0003), checking that the data's values lie in [0, 1]; no checkpoint was "
        "written yet"
    )
    quiet = loop.NonFinite({"loss": torch.tensor(1.0)}, 1)  # every term finite: the loss is named
    assert "the loss term" in str(loop.diagnose(quiet, 1, 1, config, "gan_lr", RunDir(tmp_path)))


def test_a_global_batch_that_does_not_split_evenly_is_refused(tmp_path, dataset):
    """Found by mutation testing."""
    config = make(tmp_path, batch_size=7)
    with pytest.raises(ConfigError) as caught:
        loop.train(config, kinds.get("vae"), dataset, RunDir(tmp_path / "run"), world=World(rank=0, size=2))
    assert str(caught.value) == "batch_size: the global batch 7 must divide evenly among 2 processes"


def test_threads_option_sets_torch_threads(tmp_path, dataset, monkeypatch):
    """The loop hands `--threads` to `vaelab.threads.govern` (a fixed count, or 0: vaelab's choice), and ticks the
    governor once per batch. Found by mutation testing."""
    from vaelab import threads

    asked, ticks = [], []
    monkeypatch.setattr(threads, "govern", asked.append)
    monkeypatch.setattr(threads, "tick", lambda: ticks.append(1))
    train(make(tmp_path, epochs=1, threads=1), dataset)
    train(make(tmp_path / "b", epochs=1), dataset)
    assert asked == [1, 0]
    assert len(ticks) == 2 * math.ceil(len(dataset.train) / 8)  # batches of 8 (tiny.make), one epoch each


def test_the_progress_bar_shows_each_epoch_and_its_train_and_test_loss(tmp_path, dataset, capfd, monkeypatch):
    """Found by mutation testing."""
    monkeypatch.setenv("VAELAB_PROGRESS", "1")  # shown even off a terminal
    train(make(tmp_path / "quiet"), dataset)
    assert capfd.readouterr().err == ""  # --quiet
    train(make(tmp_path, quiet=False), dataset)
    err = capfd.readouterr().err
    last = RunDir(tmp_path / "run").read_metrics()[1][-1]
    assert "epoch 1/2" in err and "epoch 2/2" in err and "24.0/24.0" in err and "img/s" in err
    assert f"loss={last['train']['loss']:.3f}, test={last['test']['loss']:.3f}]" in err
    assert err.count("\n") == 2 and err.endswith("]\n")  # each epoch's bar is left on its own line


@pytest.mark.parametrize("kind", ["vae", "gan"])
def test_the_bar_counts_images_and_shows_every_tenth_batch_s_terms_per_image(tmp_path, dataset, kind):
    """12 batches of 2: the bar moves by 2 images per batch; batches 0 and 10 show the kind's `shown` terms per
    image (a VAE's terms are batch sums, a GAN's batch means), without forcing a redraw. Found by mutation testing."""
    config = make(tmp_path, kind=kind, batch_size=2)
    trainer = kinds.get(kind).trainer(config, SHAPE, torch.device("cpu"), World())
    seen = []
    forward = trainer.forward
    trainer.forward = lambda *args: seen.append(forward(*args)) or seen[-1]
    bar = Bar()
    loop.train_epoch(
        trainer,
        dataset.train.images,
        None,
        config,
        1,
        torch.Generator().manual_seed(3),
        torch.Generator().manual_seed(4),
        World(),
        torch.device("cpu"),
        bar,
    )
    assert bar.updates == [2] * 12
    per_image = 2 if kind == "vae" else 1
    expected = [
        (
            (({label: f"{seen[i][0][t].item() / per_image:.3f}" for label, t in trainer.shown.items()}),),
            {"refresh": False},
        )
        for i in (0, 10)
    ]
    assert bar.postfixes == expected and len(trainer.shown) == (1 if kind == "vae" else 2)


def test_a_run_is_its_seeded_epochs_written_out(tmp_path, dataset):
    """train = the model initialised from the seed, the batch order drawn from the seed, the noise from seed + 1.
    Found by mutation testing."""
    config = make(tmp_path, seed=4, binarize=True)
    trained = train(config, dataset)
    torch.manual_seed(4)
    cpu = torch.device("cpu")
    trainer = kinds.get("vae").trainer(config, SHAPE, cpu, World())
    order, noise = torch.Generator().manual_seed(4), torch.Generator().manual_seed(5)
    for epoch in (1, 2):
        loop.train_epoch(trainer, dataset.train.images, dataset.train.labels, config, epoch, order, noise, World(), cpu)
    for a, b in zip(trained.model.parameters(), trainer.model.parameters()):
        assert torch.equal(a, b)


def test_resume_accepts_a_checkpoint_of_any_epoch_up_to_ten_million(tmp_path, dataset):
    """Found by mutation testing."""
    train(make(tmp_path, epochs=1), dataset)
    run = RunDir(tmp_path / "run")
    tensors, metadata = read_safetensors(run.state_path)
    from safetensors.torch import save_file

    save_file(tensors, run.state_path, metadata={**metadata, "info": json.dumps({"epoch": 10**7, "step": 3})})
    trained = train(make(tmp_path, epochs=2), dataset, resume=True)  # nothing left to train: the checkpoint is past it
    assert trained.run_dir.path == run.path and [e["epoch"] for e in run.read_metrics()[1]] == [1]


def test_the_default_run_dir_is_named_after_the_data_s_last_path_part(tmp_path):
    """Found by mutation testing."""
    config = make(tmp_path, data="sets/boX/", latent_dim=3)
    assert loop.default_run_dir(config, str(tmp_path)).path == tmp_path / "boX-mlp-z3"


def test_a_conditional_run_reads_its_classes_and_trains_and_tests_with_the_labels(tmp_path, dataset):
    """The kind's `prepare` reads the classes before config.json is written; every batch and the test split
    go to the trainer with their labels (the written-out run draws the same batches). Found by mutation testing."""
    from vaelab.kinds.cvae import conditional_terms

    config = make(tmp_path, kind="cvae", seed=2)
    trained = train(config, dataset)
    run = RunDir(tmp_path / "run")
    assert run.read_config()["model"]["classes"] == 2 and trained.model.classes == 2
    torch.manual_seed(2)
    cpu = torch.device("cpu")
    trainer = kinds.get("cvae").trainer(config, SHAPE, cpu, World())
    order, noise = torch.Generator().manual_seed(2), torch.Generator().manual_seed(3)
    seen = []
    forward = trainer.forward
    trainer.forward = lambda x, y, p, generator: seen.append(y) or forward(x, y, p, generator)
    for epoch in (1, 2):
        loop.train_epoch(trainer, dataset.train.images, dataset.train.labels, config, epoch, order, noise, World(), cpu)
    assert all(y is not None and y.shape == (8,) for y in seen)
    for a, b in zip(trained.model.parameters(), trainer.model.parameters()):
        assert torch.equal(a, b)
    expected = conditional_terms(
        trained.model,
        dataset.test.images,
        dataset.test.labels,
        binarize_images=False,
        seed=2 + EVAL_SEED_OFFSET,
        batch_size=4,
        device=cpu,
        world=World(),
    )
    assert run.read_metrics()[1][-1]["test"] == pytest.approx(expected, rel=1e-6)


def test_a_gan_run_saves_its_discriminator_beside_the_generator(tmp_path, dataset):
    """Found by mutation testing."""
    from vaelab.models.gan import Discriminator

    trained = train(make(tmp_path, kind="gan", epochs=1), dataset)
    run = RunDir(tmp_path / "run")
    assert sorted(p.name for p in run.path.iterdir()) == [
        "config.json",
        "discriminator.safetensors",
        "metrics.jsonl",
        "model.safetensors",
        "training_state.safetensors",
    ]
    saved, _ = read_safetensors(run.weights_path("discriminator"))
    disc = Discriminator(trained.model.config)
    disc.load_state_dict(saved)
    state, _ = read_safetensors(run.state_path)
    for name, value in disc.state_dict().items():
        assert torch.equal(value, state[f"model/discriminator/{name}"])


def test_train_starts_a_new_run_unless_told_to_resume(tmp_path, dataset):
    """Found by mutation testing."""
    config = make(tmp_path, epochs=1)
    trained = loop.train(config, kinds.get("vae"), dataset, loop.prepare_run_dir(config, False))
    assert read_state_info(trained.run_dir.state_path) == {"epoch": 1, "step": 3}


# --- end to end: every kind's divergence through the command line ---------------------------------------------


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(256, 64)


@pytest.mark.e2e
@pytest.mark.usefixtures("no_figures")
@pytest.mark.parametrize("kind", kinds.names())
def test_every_kind_diagnoses_divergence_keeps_its_checkpoint_and_resumes_from_it(cli, digits, tmp_path, kind):
    """An absurd learning rate gives exit 3 and one line naming the term that diverged and the option to lower,
    the last good checkpoint is left byte for byte, and the run resumed at a sane lr ends exactly like a run that
    never diverged. Catches: the adversarial kinds' divergence check never firing (a GAN at --gan-lr 1e35 exited 0
    with NaN weights), a failed resume that moves the checkpoint, the generators' states or metrics.jsonl.
    Checks a README claim."""
    lr_flag = "--" + kinds.get(kind).lr_option.replace("_", "-")
    whole, split = tmp_path / "whole", tmp_path / "split"
    runs.ok(runs.train(cli, digits, whole, kind, epochs=2))
    runs.ok(runs.train(cli, digits, split, kind))
    terms = set(runs.epochs_of(split)[0]["train"])
    good_lr = json.loads((split / "config.json").read_text())["train"][kinds.get(kind).lr_option]
    before = runs.snapshot(split)
    for absurd in ("1e30", "1e35"):
        message = runs.one_line_error(runs.resume(cli, split, 2, lr_flag, absurd), code=3)
        named = message.split("training diverged: the ", 1)[1].split(" term")[0]
        assert named in terms, message  # the term that went non-finite, by its logged name
        assert f"a lower {lr_flag}" in message and "epoch 2" in message and "step" in message, message
        assert "checkpoint of epoch 1" in message and "intact" in message, message
        # nothing written: weights, state, config.json, metrics.jsonl, sample grids
        assert runs.snapshot(split) == before
    for name, value in runs.tensors(split).items():
        assert torch.isfinite(value.float()).all(), name
    assert vaelab.load(split).sample(2).isfinite().all()
    runs.ok(runs.resume(cli, split, 2, lr_flag, good_lr))  # the README's "continue a run after a divergence"
    runs.assert_same_tensors(whole, split)
    assert runs.without_timing(runs.epochs_of(whole)) == runs.without_timing(runs.epochs_of(split))


@pytest.mark.e2e
@pytest.mark.usefixtures("no_figures")
@pytest.mark.parametrize("kind", kinds.names())
def test_every_kind_diverging_before_its_first_checkpoint_says_so_and_can_start_again(cli, digits, tmp_path, kind):
    """Divergence in the first epoch: exit 3, 'no checkpoint was written yet', no weights left behind that would
    pass for a trained model, and the same --out trains at a sane lr without being refused as an existing run.
    Checks a README claim."""
    lr_flag = "--" + kinds.get(kind).lr_option.replace("_", "-")
    out = tmp_path / "run"
    message = runs.one_line_error(runs.train(cli, digits, out, kind, lr_flag, "1e35"), code=3)
    assert "no checkpoint was written yet" in message and f"a lower {lr_flag}" in message, message
    assert not (out / "model.safetensors").exists() and not (out / "training_state.safetensors").exists()
    runs.ok(runs.train(cli, digits, out, kind))
    assert len(runs.epochs_of(out)) == 1
