"""The training loop's multi-process arithmetic, in one process: torch.distributed's collectives are replaced by
those of a mirror, a second process that computed exactly what this one did (an all-reduce doubles a sum, an
all-gather hands back this process's object for every rank unless a test says otherwise). Each process's shard,
its noise seed, the epoch's step count, the global progress, the gathered noise states and the weight-checksum
guard are checked against the same work written out. tests/test_distributed.py runs two real processes; these
run in the mutation selection (scripts/mutate.py), where spawning processes per mutant would cost too much."""

import copy
import time

import pytest
import torch
from torch import nn

from tests.helpers import tiny
from tests.helpers.tiny import CPU, SHAPE, uint8
from vaelab import data, kinds
from vaelab.checkpoint import read_safetensors
from vaelab.device import World
from vaelab.kinds.gan import GANTrainer
from vaelab.losses import discriminator_loss, generator_loss
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.rundir import RunDir
from vaelab.training import loop


class Mirror:
    """Stands in for torch.distributed in a world of `size` processes that all hold this process's numbers;
    `gathered` overrides what all_gather_object returns for some ranks (for objects of the same type)."""

    def __init__(self, size: int):
        self.size, self.gathered, self.reduced = size, {}, 0

    def all_reduce(self, tensor, op=None, group=None, async_op=False):
        assert isinstance(tensor, torch.Tensor)
        with torch.inference_mode():  # as c10d's op, which also takes the inference tensors of evaluation loops
            tensor.mul_(self.size)
        self.reduced += 1

    def all_gather_object(self, object_list, obj, group=None):
        assert isinstance(object_list, list) and len(object_list) == self.size and obj is not None
        for rank in range(self.size):
            other = self.gathered.get(rank)
            object_list[rank] = other if isinstance(other, type(obj)) else obj

    def install(self, monkeypatch) -> "Mirror":
        """Put this mirror in torch.distributed's place for one test."""
        import torch.distributed as dist

        monkeypatch.setattr(dist, "all_reduce", self.all_reduce)
        monkeypatch.setattr(dist, "all_gather_object", self.all_gather_object)
        monkeypatch.setattr(dist, "get_backend", lambda group=None: "gloo")
        return self


@pytest.fixture
def mirror(monkeypatch):
    return Mirror(2).install(monkeypatch)


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


class Bar:
    """What train_epoch asks of its progress bar, recorded."""

    def __init__(self):
        self.updates, self.postfixes = [], []

    def update(self, n):
        self.updates.append(n)

    def set_postfix(self, *args, **kwargs):
        self.postfixes.append((args, kwargs))


def test_rank_1_of_2_trains_on_its_shard_and_its_sums_are_summed_across(tmp_path, dataset, mirror):
    """Global batch 8: each process takes 4 images of its shard (every second image of the shared order, from
    its rank), 3 steps for the 12 images of its shard; the progress passed on counts those steps; the epoch's
    means are the sums of both processes over the 24 images they share out."""
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
    fake = Mirror(3).install(monkeypatch)
    states = {r: torch.Generator().manual_seed(r).get_state() for r in range(3)}
    fake.gathered = states
    gathered = loop._other_noise_states(torch.Generator().manual_seed(0), World(rank=0, size=3))
    assert list(gathered) == ["noise1", "noise2"]
    assert torch.equal(gathered["noise1"], states[1]) and torch.equal(gathered["noise2"], states[2])
    assert loop._other_noise_states(torch.Generator(), World()) == {}


def test_the_adversarial_test_terms_of_rank_1_use_its_shard_and_seed(tmp_path, mirror):
    """Each process scores its shard of the test images with noise seeded seed + offset + rank; the means are
    over the images both processes cover (10 of 11), as a hinge GAN's losses when asked for."""
    world = World(rank=1, size=2)
    torch.manual_seed(0)
    trainer = GANTrainer(make(tmp_path, kind="gan", gan_loss="hinge", seed=3), SHAPE, CPU, world)
    images = uint8(11, seed=2)
    got = trainer.test_terms(images, None, 1)
    generator, totals = torch.Generator().manual_seed(3 + EVAL_SEED_OFFSET + 1), {}
    shard = images[1:10:2]
    with torch.no_grad():
        for start in (0, 4):
            x = data.to_float(shard[start : start + 4])
            fake = trainer.model(torch.randn(x.shape[0], 2, generator=generator))
            real_logits, fake_logits = trainer.disc(x)[0], trainer.disc(fake)[0]
            terms = {
                "d_loss": discriminator_loss(real_logits, fake_logits, "hinge"),
                "g_loss": generator_loss(fake_logits, "hinge"),
                "d_real": torch.sigmoid(real_logits).mean(),
                "d_fake": torch.sigmoid(fake_logits).mean(),
            }
            for name, value in terms.items():
                totals[name] = totals.get(name, 0.0) + float(value) * x.shape[0]
    assert got == pytest.approx({name: 2 * value / 10 for name, value in totals.items()}, rel=1e-5)


def test_the_gan_averages_each_network_s_gradients_across_processes(tmp_path, mirror):
    """Two mirrored processes: every gradient is summed (one all-reduce per parameter) and divided by 2, so the
    step is the one-process step."""
    one, two = (
        GANTrainer(make(tmp_path, kind="gan", grad_clip=0.1), SHAPE, CPU, world) for world in (World(), World(0, 2))
    )
    two.model.load_state_dict(one.model.state_dict())
    two.disc.load_state_dict(one.disc.state_dict())
    x = data.to_float(uint8(6))
    for trainer in (one, two):
        trainer.update(trainer.forward(x, None, 0.0, torch.Generator().manual_seed(1))[1])
    assert mirror.reduced == len(list(one.model.parameters())) + len(list(one.disc.parameters()))
    for a, b in zip(
        [*one.model.parameters(), *one.disc.parameters()], [*two.model.parameters(), *two.disc.parameters()]
    ):
        torch.testing.assert_close(a, b)


def test_the_iwae_test_terms_of_rank_1_cover_its_shard(tmp_path, mirror):
    from vaelab.kinds.iwae import split_bound
    from vaelab.training.split import split_terms

    world = World(rank=1, size=2)
    trainer = kinds.get("iwae").trainer(make(tmp_path, kind="iwae", k=2, seed=1), SHAPE, CPU, world)
    images, seed = uint8(11, seed=3), 1 + EVAL_SEED_OFFSET
    got = trainer.test_terms(images, None, 1)
    terms = split_terms(trainer.model, images, seed=seed, batch_size=4, world=world)
    bound = split_bound(
        trainer.model, images, 2, binarize_images=False, seed=seed, batch_size=4, device=CPU, world=world
    )
    assert got == {"loss": -bound["bound"], "recon": terms["recon"], "kl": terms["kl"], **bound}
    alone = split_terms(trainer.model, images, seed=seed, batch_size=4)
    assert alone["recon"] != terms["recon"]  # rank 1's shard, not the whole split
    whole = split_bound(
        trainer.model, images, 2, binarize_images=False, seed=seed, batch_size=4, device=CPU, world=World()
    )
    assert whole["bound"] != bound["bound"]


def test_the_vae_and_cvae_test_terms_of_rank_1_cover_its_shard(tmp_path, mirror, monkeypatch):
    """The VAE's and the conditional VAE's logged test terms are those of this process's shard (rank 1 of 2),
    with the split's seeded noise, summed across the processes (here: the mirror's double)."""
    import vaelab.kinds.vae
    from vaelab.kinds.cvae import conditional_terms
    from vaelab.training.split import split_terms

    monkeypatch.setattr(vaelab.kinds.vae, "wrap", lambda module, compile, device, world: module)  # DDP wants a group
    world, images, labels = World(rank=1, size=2), uint8(11, seed=3), torch.arange(11) % 3
    vae = kinds.get("vae").trainer(make(tmp_path, seed=1, binarize=True), SHAPE, CPU, world)
    got = vae.test_terms(images, None, 1)
    seed = 1 + EVAL_SEED_OFFSET
    assert got == split_terms(vae.model, images, binarize=True, seed=seed, batch_size=4, world=world)
    assert got != split_terms(vae.model, images, binarize=True, seed=seed, batch_size=4)
    cvae = kinds.get("cvae").trainer(make(tmp_path, kind="cvae", classes=3, seed=1), SHAPE, CPU, world)
    got = cvae.test_terms(images, labels, 1)
    options = {"binarize_images": False, "seed": seed, "batch_size": 4, "device": CPU}
    assert got == conditional_terms(cvae.model, images, labels, world=world, **options)
    assert got != conditional_terms(cvae.model, images, labels, world=World(), **options)


def test_split_means_of_rank_1_is_the_mean_over_its_shard(tmp_path, mirror):
    """Every second image of the split from rank 1 on (10 of 11 images shared out), binarized and scored with the
    seeded generator; sums and counts are summed across the processes, so the mean is the shard's."""
    from vaelab.losses import binarize
    from vaelab.training.split import split_means, split_terms

    images, world = uint8(11, seed=4), World(rank=1, size=2)
    got = split_means(
        nn.Identity(),
        images,
        lambda x, y, g: {"mean": x.flatten(1).mean(1)},
        binarize=True,
        seed=5,
        batch_size=3,
        world=world,
    )
    generator, values = torch.Generator().manual_seed(5), []
    shard = images[1:10:2]
    for start in (0, 3):
        values += binarize(data.to_float(shard[start : start + 3]), generator).flatten(1).mean(1).tolist()
    assert got == pytest.approx({"mean": sum(values) / 5}, rel=1e-6)
    model = kinds.get("vae").trainer(make(tmp_path), SHAPE, CPU, World()).model
    assert split_terms(model, images, seed=2, batch_size=3, world=world) != split_terms(
        model, images, seed=2, batch_size=3
    )
