"""The GAN kind (and, where they share it, the VAE-GAN's adversarial training): the step against the two losses
written out, seeded test terms, learning rates, a generator started from a VAE's decoder, the gradients and test
terms of rank 1 of a mirrored world; end to end, short runs through the command line and an exact resume."""

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

import vaelab
from tests.helpers.tiny import CPU, SHAPE, batch, make, trainer_of, uint8
from vaelab import data
from vaelab.device import World
from vaelab.kinds.gan import GANTrainer
from vaelab.losses import (
    discriminator_loss,
    generator_loss,
)
from vaelab.noise import EVAL_SEED_OFFSET


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(512, 128)


@pytest.mark.e2e
@pytest.mark.parametrize("model", ["gan", "vaegan"])
def test_short_adversarial_runs_through_the_cli(cli, digits, tmp_path, model):
    out = tmp_path / model
    result = cli(
        "train", "--model", model, "--data", digits, "--out", out, "--epochs", "2", "--quiet", "--batch-size", "64"
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()[1:]]
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):  # every network's loss by name, never one sum
        assert name in lines[-1]["train"] and name in lines[-1]["test"]
    assert "loss" not in lines[-1]["train"]
    assert 0 <= lines[-1]["train"]["d_real"] <= 1
    for name in (
        "model.safetensors",
        "discriminator.safetensors",
        "training_state.safetensors",
        "curves.png",
        "samples.png",
        "samples/epoch_002.png",
        "report.html",
    ):
        assert (out / name).is_file(), name
    model_obj = vaelab.load(out)
    assert model_obj.sample(3).shape == (3, 1, 28, 28)
    if model == "vaegan":
        assert {"recon", "kl", "feature_recon"} <= set(lines[-1]["train"])
        assert (out / "reconstructions.png").is_file() and model_obj.reconstruct(torch.rand(2, 1, 28, 28)).shape == (
            2,
            1,
            28,
            28,
        )
    else:
        bad = cli("reconstruct", out)
        assert bad.returncode == 2 and "no encoder" in bad.stderr
        assert (out / "manifold.png").is_file()  # over latent dimensions 0 and 1: no posterior to take a PC plane of
        assert cli("manifold", out, "--out", tmp_path / "m.png").returncode == 0


@pytest.mark.e2e
@pytest.mark.parametrize("model", ["gan", "vaegan"])
def test_adversarial_resume_matches_an_uninterrupted_run(cli, digits, tmp_path, model):
    whole, split = tmp_path / "whole", tmp_path / "split"
    common = ["--model", model, "--data", digits, "--quiet", "--batch-size", "64", "--threads", "1"]
    assert cli("train", "--out", whole, "--epochs", "2", *common).returncode == 0
    assert cli("train", "--out", split, "--epochs", "1", *common).returncode == 0
    assert cli("train", "--out", split, "--epochs", "2", "--resume", "--quiet", "--threads", "1").returncode == 0
    for name in ("model.safetensors", "discriminator.safetensors"):
        a, b = load_file(whole / name), load_file(split / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.e2e
def test_gan_generator_starts_from_a_vae_decoder(cli, digits, tmp_path):
    vae, gan = tmp_path / "vae", tmp_path / "gan"
    assert cli("train", "--data", digits, "--out", vae, "--epochs", "1", "--quiet", "--latent-dim", "4").returncode == 0
    result = cli(
        "train",
        "--model",
        "gan",
        "--init-from",
        vae,
        "--data",
        digits,
        "--out",
        gan,
        "--epochs",
        "1",
        "--quiet",
        "--gan-lr",
        "1e-9",
    )
    assert result.returncode == 0, result.stderr
    decoder = {k: v for k, v in load_file(vae / "model.safetensors").items() if k.startswith("decoder.")}
    generator = load_file(gan / "model.safetensors")
    assert decoder.keys() == generator.keys()
    assert all(torch.allclose(decoder[k], generator[k], atol=1e-5) for k in decoder)  # a 1e-9 lr barely moves it


def test_the_adversarial_test_terms_of_rank_1_use_its_shard_and_seed(tmp_path, mirror):
    """Each process scores its shard of the test images with noise seeded seed + offset + rank; the means are
    over the images both processes cover (10 of 11), as a hinge GAN's losses when asked for.
    Found by mutation testing."""
    world = World(rank=1, size=2)
    torch.manual_seed(0)
    trainer = GANTrainer(make(tmp_path, epochs=2, kind="gan", gan_loss="hinge", seed=3), SHAPE, CPU, world)
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
    step is the one-process step. Found by mutation testing."""
    one, two = (
        GANTrainer(make(tmp_path, epochs=2, kind="gan", grad_clip=0.1), SHAPE, CPU, world)
        for world in (World(), World(0, 2))
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


@pytest.mark.parametrize("loss", ["ns", "hinge"])
def test_the_gan_step_is_the_two_losses_written_out(tmp_path, loss):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, kind="gan", gan_loss=loss, gan_lr=0.01, gan_betas=[0.5, 0.9], grad_clip=0.05))
    g, d = copy.deepcopy(trainer.model), copy.deepcopy(trainer.disc)
    x = batch()
    terms, pending = trainer.forward(x, None, 0.0, torch.Generator().manual_seed(1))
    fake = g(torch.randn(6, 2, generator=torch.Generator().manual_seed(1)))
    real_logits, fake_logits = d(x)[0], d(fake)[0]
    torch.testing.assert_close(terms["d_loss"], discriminator_loss(real_logits, fake_logits, loss))
    torch.testing.assert_close(terms["g_loss"], generator_loss(fake_logits, loss))
    torch.testing.assert_close(terms["d_real"], torch.sigmoid(real_logits).mean())
    torch.testing.assert_close(terms["d_fake"], torch.sigmoid(fake_logits).mean())
    assert pending is terms and trainer.update(pending) == {}
    # D steps on its own loss (the fakes detached), G on its own (through D before D's step), each with its Adam
    opt_d = torch.optim.Adam(d.parameters(), lr=0.01, betas=(0.5, 0.9))
    opt_g = torch.optim.Adam(g.parameters(), lr=0.01, betas=(0.5, 0.9))
    both = d(torch.cat([x, fake.detach()]))[0]  # one pass, as the trainer's: the same rounding
    discriminator_loss(both[:6], both[6:], loss).backward(inputs=list(d.parameters()))
    generator_loss(fake_logits, loss).backward(inputs=list(g.parameters()))
    torch.nn.utils.clip_grad_norm_(d.parameters(), 0.05)  # each network's gradient clipped on its own
    torch.nn.utils.clip_grad_norm_(g.parameters(), 0.05)
    opt_d.step()
    opt_g.step()
    for a, b in zip(trainer.disc.parameters(), d.parameters()):
        torch.testing.assert_close(a, b)
    for a, b in zip(trainer.model.parameters(), g.parameters()):
        torch.testing.assert_close(a, b)
    assert trainer.record(1) == {"lr": 0.01} and set(trainer.extra_weights()) == {"discriminator"}


def test_the_gan_test_terms_are_seeded_means_over_the_test_images(tmp_path):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, kind="gan", seed=3, eval_batch_size=4))
    images = (batch(10) * 255).to(torch.uint8)
    got = trainer.test_terms(images, None, 1)
    assert got == trainer.test_terms(images, None, 2) and not trainer.model.training
    generator = torch.Generator().manual_seed(3 + 10_000)
    totals = {}
    with torch.no_grad():
        for start in (0, 4, 8):
            x = images[start : start + 4].float() / 255
            fake = trainer.model(torch.randn(x.shape[0], 2, generator=generator))
            real_logits, fake_logits = trainer.disc(x)[0], trainer.disc(fake)[0]
            for name, value in {
                "d_loss": discriminator_loss(real_logits, fake_logits),
                "g_loss": generator_loss(fake_logits),
                "d_real": torch.sigmoid(real_logits).mean(),
                "d_fake": torch.sigmoid(fake_logits).mean(),
            }.items():
                totals[name] = totals.get(name, 0.0) + float(value) * x.shape[0]
    assert got == pytest.approx({name: value / 10 for name, value in totals.items()}, rel=1e-5)


def test_a_gan_takes_a_new_learning_rate_in_both_optimizers(tmp_path):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, hidden=[8, 6], kind="gan", gan_lr=0.01))
    trainer.set_lr(make(tmp_path, hidden=[8, 6], kind="gan", gan_lr=0.003))
    assert trainer.modules == {"generator": trainer.model, "discriminator": trainer.disc}  # the checkpoint's names
    assert set(trainer.optimizers) == {"generator", "discriminator"}
    assert [o.param_groups[0]["lr"] for o in trainer.optimizers.values()] == [0.003, 0.003]


def test_a_gan_started_from_a_vae_run_takes_its_architecture_and_its_decoder(tmp_path):
    """Found by mutation testing."""
    from vaelab.checkpoint import save_weights
    from vaelab.errors import ConfigError, RunError
    from vaelab.kinds.gan import GANTrainer, generator_networks
    from vaelab.models import VAE, VAEConfig
    from vaelab.rundir import RunDir

    source = VAEConfig(shape=SHAPE, latent_dim=3, hidden=(7,))
    torch.manual_seed(1)
    vae = VAE(source)
    run = RunDir(tmp_path / "vae")
    run.path.mkdir()
    run.write_config({"model": source.to_dict()})
    save_weights(run.model_path, {"": vae})
    config = make(tmp_path, hidden=[8, 6], kind="gan", init_from=str(run.path))  # its own: hidden 8,6, latent 2
    trainer = GANTrainer(config, SHAPE, CPU, World())
    assert trainer.model.config == source and trainer.disc.layers[1].out_features == 7
    decoder = trainer.model.decoder.state_dict()
    assert decoder.keys() == vae.decoder.state_dict().keys()
    assert all(torch.equal(decoder[k], v) for k, v in vae.decoder.state_dict().items())
    with pytest.raises(ConfigError) as caught:
        generator_networks(config, (1, 5, 5))
    assert str(caught.value) == f"init_from: {run.path} was trained on images [1, 4, 4], this data is [1, 5, 5]"
    run.write_config({"model": {**source.to_dict(), "likelihood": "gaussian"}})
    with pytest.raises(ConfigError) as caught:
        generator_networks(config, SHAPE)
    assert str(caught.value) == "init_from: only a Bernoulli VAE's decoder (logits) can start a GAN generator"
    for model in ({"shape": [1, 4, 4], "latent_dim": 3, "bogus": 1}, None):
        run.write_config({"model": model} if model else {"kind": "vae"})
        with pytest.raises(RunError, match=rf"^{run.path}/config.json: the model section is invalid \("):
            generator_networks(config, SHAPE)
    no_init = make(tmp_path, hidden=[8, 6], kind="gan")
    assert generator_networks(no_init, SHAPE).hidden == (8, 6)  # no --init-from: the options'
    run.write_config({"model": source.to_dict()})
    save_weights(run.model_path, {"": VAE(VAEConfig(shape=SHAPE, latent_dim=3, hidden=(5,)))})  # not its config's
    with pytest.raises(RunError) as caught:
        GANTrainer(config, SHAPE, CPU, World())
    assert str(caught.value) == (
        f"{run.model_path}: weights do not fit the configured model (0.weight: the file holds "
        "[5, 3], the model needs [7, 3])"
    )
