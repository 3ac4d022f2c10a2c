"""GAN and VAE-GAN: losses, the discriminator, short runs through the command line, resume, bad options."""

import json

import pytest
import torch
from safetensors.torch import load_file

import vaelab
from vaelab import data
from vaelab.losses import discriminator_loss, feature_reconstruction, generator_loss
from vaelab.models import VAEConfig
from vaelab.models.gan import Discriminator, Generator


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
