"""GAN and VAE-GAN: losses, the discriminator, short runs through the command line, resume, bad options."""

import json

import pytest
import torch
from safetensors.torch import load_file

import vaelab
from tests.helpers.tiny import CPU, SHAPE, make, uint8
from vaelab import data
from vaelab.device import World
from vaelab.kinds.gan import GANTrainer
from vaelab.losses import discriminator_loss, feature_reconstruction, generator_loss
from vaelab.models import VAEConfig
from vaelab.models.gan import Discriminator, Generator
from vaelab.noise import EVAL_SEED_OFFSET


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(512, 128)


def test_adversarial_losses_match_their_definitions():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    d = discriminator_loss(real, fake)
    expected = -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())
    torch.testing.assert_close(d, expected)
    torch.testing.assert_close(generator_loss(fake), -torch.log(torch.sigmoid(fake)).mean())
    assert discriminator_loss(torch.tensor([2.0]), torch.tensor([-2.0]), "hinge") == 0  # both margins met
    assert generator_loss(torch.tensor([1.0, 3.0]), "hinge") == -2.0
    f = torch.tensor([[1.0, 2.0]])
    assert feature_reconstruction(f, f + torch.tensor([[3.0, 4.0]])).item() == 12.5


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_discriminator_and_generator_shapes(arch):
    config = VAEConfig(shape=(1, 28, 28), arch=arch, latent_dim=4)
    disc, gen = Discriminator(config), Generator(config)
    logits, features = disc(torch.rand(6, 1, 28, 28))
    assert logits.shape == (6,) and features.shape[0] == 6 and features.dim() == 2
    images = gen.sample(5)
    assert images.shape == (5, 1, 28, 28) and 0 <= images.min() and images.max() <= 1


def test_discriminator_beats_chance_on_real_against_noise(digits):
    """A few Adam steps are enough for D to tell real digits from uniform noise."""
    torch.manual_seed(0)
    disc = Discriminator(VAEConfig(shape=(1, 28, 28), hidden=(64,)))
    optimizer = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    images = data.to_float(data.load(digits).train.images)
    for step in range(30):
        real = images[step * 16 : step * 16 + 16]
        logits, _ = disc(torch.cat([real, torch.rand_like(real)]))
        loss = discriminator_loss(logits[:16], logits[16:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        real = images[480:512]
        logits, _ = disc(torch.cat([real, torch.rand_like(real)]))
    accuracy = ((logits[:32] > 0).float().mean() + (logits[32:] < 0).float().mean()) / 2
    assert accuracy > 0.9


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


def test_meaningless_option_combinations_are_errors(cli, tmp_path):
    for args, message in [
        (["--model", "gan", "--beta", "4"], "beta: has no meaning with --kind gan"),
        (["--model", "gan", "--recon", "gaussian"], "likelihood: has no meaning with --kind gan"),
        (["--gan-loss", "hinge"], "gan_loss: has no meaning with --kind vae"),
        (["--model", "vaegan", "--init-from", tmp_path], "init_from: has no meaning with --kind vaegan"),
        (["--model", "vaegan", "--gan-loss", "hinge"], "equilibrium gating is defined for ns only"),
        (["--model", "gan", "--lr", "0.01"], "use gan_lr"),
        (["--model", "gan", "--gamma", "2"], "gamma: has no meaning with --kind gan"),
        (["--model", "gan", "--init-from", tmp_path / "none"], "config.json: missing"),
    ]:
        result = cli("train", "--out", tmp_path / "never", "--quiet", "--epochs", "1", *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)


def test_compare_models_side_by_side(cli, digits, tmp_path):
    study = tmp_path / "study"
    result = cli(
        "compare",
        "--models",
        "vae,vaegan,gan",
        "--archs",
        "mlp",
        "--latent-dims",
        "4",
        "--data",
        digits,
        "--out",
        study,
        "--epochs",
        "1",
        "--quiet",
        "--iwae-k",
        "5",
        "--batch-size",
        "64",
    )
    assert result.returncode == 0, result.stderr
    report = (study / "report.html").read_text()
    for member in ("vae-mlp-z4", "vaegan-mlp-z4", "gan-mlp-z4"):
        assert member in report and (study / member / "eval.json").is_file()
    assert "VAE against adversarial models" in report and "FD" in report
    gan_eval = json.loads((study / "gan-mlp-z4" / "eval.json").read_text())
    assert gan_eval["kind"] == "gan" and gan_eval["samples"]["fd_classifier"] > 0


def test_the_adversarial_test_terms_of_rank_1_use_its_shard_and_seed(tmp_path, mirror):
    """Each process scores its shard of the test images with noise seeded seed + offset + rank; the means are
    over the images both processes cover (10 of 11), as a hinge GAN's losses when asked for."""
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
    step is the one-process step."""
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
