"""The VAE-GAN kind, its step written out from Larsen et al. (2016, Algorithm 1) as this project weighs it: each
network's loss, each network's gradient of its own loss only, the equilibrium gating at its exact boundaries, the
logged terms, the test terms and the networks' names and optimizers; end to end, the gating and its options."""

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from tests.helpers import tiny
from tests.helpers.runs import (
    epochs_of,
    initial_trainer,
    ok,
    one_line_error,
    tensors,
    train,
)
from tests.helpers.tiny import batch, trainer_of
from vaelab import data
from vaelab.losses import bernoulli_log_likelihood, kl_weight
from vaelab.noise import EVAL_SEED_OFFSET


def make(tmp_path, **over):
    return tiny.make(tmp_path, **{"hidden": [8, 6], "kind": "vaegan", **over})  # two layers: --disc-layer can choose


OPTIONS = {
    "beta": 0.5,
    "warmup_epochs": 2.0,
    "gamma": 0.3,
    "pixel_weight": 0.2,
    "disc_layer": 0,
    "equilibrium": 0.75,
    "margin": 0.25,
    "gan_lr": 0.01,
    "gan_betas": [0.6, 0.95],
    "grad_clip": 0.5,
}


def by_hand(vae, disc, x, noise, beta, o):
    """(logged terms, the encoder's, decoder's (without and with its adversarial term) and D's losses, D's BCEs)."""
    b = x.shape[0]
    q = vae.encode(x)
    z = q.mean + q.std * torch.randn(q.mean.shape, generator=noise)
    rec_logits = vae.decode(z)
    prior = torch.randn(b, 2, generator=noise)
    real, real_features = disc(x)
    rec, rec_features = disc(torch.sigmoid(rec_logits))
    prior_logits, _ = disc(torch.sigmoid(vae.decode(prior)))
    llike = (0.5 * (real_features - rec_features).pow(2).sum(1)).mean()
    kl = (0.5 * (q.mean.pow(2) + q.logvar.exp() - 1 - q.logvar)).sum(1).mean()
    recon = -bernoulli_log_likelihood(rec_logits, x).mean()
    g_adv = F.softplus(-rec).mean() + F.softplus(-prior_logits).mean()
    bce = [F.softplus(-real).mean(), F.softplus(rec).mean(), F.softplus(prior_logits).mean()]
    terms = {
        "recon": recon,
        "kl": kl,
        "feature_recon": llike,
        "d_loss": sum(bce),
        "g_loss": g_adv,
        "d_real": torch.sigmoid(real).mean(),
        "d_fake": torch.sigmoid(torch.cat([rec, prior_logits])).mean(),
    }
    losses = {
        "encoder": beta * kl + llike + o["pixel_weight"] * recon,
        "decoder_llike": o["gamma"] * llike + o["pixel_weight"] * recon,
        "decoder_adv": g_adv,
        "discriminator": sum(bce),
        "bce": torch.stack([bce[0], (bce[1] + bce[2]) / 2]),
    }
    return terms, losses


def test_the_vaegan_networks_their_names_and_their_optimizers(tmp_path):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, **OPTIONS))
    assert trainer.modules == {"vae": trainer.model, "discriminator": trainer.disc}  # the checkpoint's names
    assert trainer.extra_weights() == {"discriminator": trainer.disc}
    assert trainer.disc(batch())[1].shape == (6, 8)  # --disc-layer 0: the first hidden layer's 8 features
    assert trainer_of(make(tmp_path)).disc(batch())[1].shape == (6, 6)  # the default -1: the last, of 6
    assert set(trainer.optimizers) == {"encoder", "decoder", "discriminator"}
    networks = {"encoder": trainer.model.encoder, "decoder": trainer.model.decoder, "discriminator": trainer.disc}
    for name, optimizer in trainer.optimizers.items():
        (group,) = optimizer.param_groups
        assert group["lr"] == 0.01 and group["betas"] == (0.6, 0.95)
        assert [id(p) for p in group["params"]] == [id(p) for p in networks[name].parameters()]
    trainer.set_lr(make(tmp_path, gan_lr=0.002))
    assert all(o.param_groups[0]["lr"] == 0.002 for o in trainer.optimizers.values())
    assert trainer.record(1) == {"beta": 0.25, "lr": 0.01}  # the options' lr, the epoch's beta (warm-up of 2)
    assert trainer.record(3) == {"beta": 0.5, "lr": 0.01}


def test_the_vaegan_forward_pass_is_larsen_s_losses_written_out(tmp_path):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, **OPTIONS))
    vae, disc, x = copy.deepcopy(trainer.model), copy.deepcopy(trainer.disc), batch()
    terms, losses = trainer.forward(x, None, 0.5, torch.Generator().manual_seed(1))
    expected_terms, expected_losses = by_hand(vae, disc, x, torch.Generator().manual_seed(1), 0.125, OPTIONS)
    assert set(terms) == set(expected_terms) and set(losses) == set(expected_losses)
    for name, value in expected_terms.items():
        torch.testing.assert_close(terms[name], value, msg=name)
    for name, value in expected_losses.items():
        torch.testing.assert_close(losses[name], value, msg=name)


# (D's mean BCE, D updated, the decoder's adversarial term kept) with equilibrium 0.75 and margin 0.25
GATES = [(0.4, False, True), (0.5, True, True), (0.75, True, True), (1.0, True, True), (1.2, True, False)]


@pytest.mark.parametrize("bce, train_dis, train_dec", GATES)
def test_the_vaegan_update_steps_each_network_on_its_own_loss_as_gated(tmp_path, bce, train_dis, train_dec):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, **OPTIONS))
    vae, disc, x = copy.deepcopy(trainer.model), copy.deepcopy(trainer.disc), batch()
    _, losses = trainer.forward(x, None, 2.0, torch.Generator().manual_seed(1))
    losses["bce"] = torch.tensor([bce, bce])
    flags = trainer.update(losses)
    assert flags == {"d_updated": torch.tensor(float(train_dis)), "dec_adv_updated": torch.tensor(float(train_dec))}
    _, mine = by_hand(vae, disc, x, torch.Generator().manual_seed(1), 0.5, OPTIONS)
    decoder_loss = mine["decoder_llike"] + (mine["decoder_adv"] if train_dec else 0)
    steps = [(vae.encoder, mine["encoder"]), (vae.decoder, decoder_loss)] + [(disc, mine["discriminator"])] * train_dis
    for network, loss in steps:
        params = list(network.parameters())
        for p, g in zip(params, torch.autograd.grad(loss, params, retain_graph=True)):
            p.grad = g
        torch.nn.utils.clip_grad_norm_(params, 0.5)
        torch.optim.Adam(params, lr=0.01, betas=(0.6, 0.95)).step()
    for theirs, written_out in ((trainer.model, vae), (trainer.disc, disc)):  # an ungated D: exactly as it was
        for a, b in zip(theirs.parameters(), written_out.parameters()):
            torch.testing.assert_close(a, b)


def test_the_vaegan_test_terms_are_seeded_means_of_its_logged_terms(tmp_path):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, **{**OPTIONS, "seed": 4}))
    images = (batch(10, seed=2) * 255).to(torch.uint8)
    got = trainer.test_terms(images, None, 1)
    assert not trainer.model.training and not trainer.disc.training
    generator, totals = torch.Generator().manual_seed(4 + EVAL_SEED_OFFSET), {}
    with torch.no_grad():
        for start in (0, 4, 8):
            x = data.to_float(images[start : start + 4])
            terms, _ = by_hand(trainer.model, trainer.disc, x, generator, kl_weight(0.5, 1, 2.0), OPTIONS)
            for name, value in terms.items():
                totals[name] = totals.get(name, 0.0) + float(value) * x.shape[0]
    assert got == pytest.approx({name: value / 10 for name, value in totals.items()}, rel=1e-5)


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(256, 64)


def _parts(out: Path) -> dict[str, dict[str, torch.Tensor]]:
    model = load_file(out / "model.safetensors")
    return {
        "discriminator": load_file(out / "discriminator.safetensors"),
        "encoder": {k: v for k, v in model.items() if k.startswith("encoder.")},
        "decoder": {k: v for k, v in model.items() if k.startswith("decoder.")},
    }


def _unchanged(out: Path) -> dict[str, bool]:
    """Which networks of a VAE-GAN run still hold their initial weights."""
    trainer = initial_trainer(out)
    start = {**trainer.model.state_dict(), **{f"d.{k}": v for k, v in trainer.disc.state_dict().items()}}
    prefix = {"discriminator": "d.", "encoder": "", "decoder": ""}
    return {name: all(torch.equal(w[k], start[prefix[name] + k]) for k in w) for name, w in _parts(out).items()}


@pytest.mark.e2e
@pytest.mark.usefixtures("no_figures")
def test_vaegan_equilibrium_gating_skips_exactly_the_updates_it_logs(cli, digits, tmp_path):
    """The gate on D's mean BCE decides each step: an equilibrium D's BCE never reaches (9.9, margin 0) leaves the
    discriminator at its initial weights and logs d_updated = 0; one it always exceeds (0.05, margin 0) keeps D
    learning but drops the decoder's adversarial term (with --gamma 0 --pixel-weight 0 that is the decoder's
    whole loss, so the decoder stays at its initial weights) and logs dec_adv_updated = 0; the converse settings
    update what the first ones froze. Catches a discriminator updated every step whatever the gate says (the past
    bug), and a gate that is logged but not applied. Checks a README claim."""
    pure = ["--gamma", "0", "--pixel-weight", "0", "--hidden", "32,16"]  # the decoder's loss: its GAN term alone
    runs = {
        "d_frozen": ["--equilibrium", "9.9", "--margin", "0"],
        "adv_dropped": ["--equilibrium", "0.05", "--margin", "0"],
        "open": ["--margin", "9"],
    }
    for name, gate in runs.items():
        ok(train(cli, digits, tmp_path / name, "vaegan", *pure, *gate))
    shares = {name: epochs_of(tmp_path / name)[0]["train"] for name in runs}
    assert shares["d_frozen"]["d_updated"] == 0 and shares["d_frozen"]["dec_adv_updated"] == 1
    assert shares["adv_dropped"]["d_updated"] == 1 and shares["adv_dropped"]["dec_adv_updated"] == 0
    assert shares["open"]["d_updated"] == 1 and shares["open"]["dec_adv_updated"] == 1
    assert _unchanged(tmp_path / "d_frozen") == {"discriminator": True, "encoder": False, "decoder": False}
    assert _unchanged(tmp_path / "adv_dropped") == {"discriminator": False, "encoder": False, "decoder": True}
    assert _unchanged(tmp_path / "open") == {"discriminator": False, "encoder": False, "decoder": False}


@pytest.mark.e2e
@pytest.mark.usefixtures("no_figures")
def test_vaegan_pixel_weight_gamma_and_disc_layer_change_training_and_bad_values_are_refused(cli, digits, tmp_path):
    """Each of --pixel-weight, --gamma and --disc-layer changes the weights a VAE-GAN ends with (--disc-layer also the
    logged feature_recon, measured in another layer), and each refuses a bad value in one line before anything is
    written. Catches an option parsed, saved in config.json and never passed to the loss or the discriminator.
    Checks a README claim."""
    net = ["--hidden", "32,16"]  # two hidden layers, so that --disc-layer has a choice (overrides TINY's 32)
    ok(train(cli, digits, tmp_path / "default", "vaegan", *net))
    base = tensors(tmp_path / "default")
    for flag, value in (("--pixel-weight", "0.5"), ("--gamma", "1"), ("--disc-layer", "0")):
        out = tmp_path / flag.strip("-")
        ok(train(cli, digits, out, "vaegan", *net, flag, value))
        assert json.loads((out / "config.json").read_text())["train"][flag[2:].replace("-", "_")] == float(value)
        changed = tensors(out)
        assert any(not torch.equal(base[k], changed[k]) for k in base if "model.safetensors" in k), flag
    default, layer0 = epochs_of(tmp_path / "default")[0], epochs_of(tmp_path / "disc-layer")[0]
    assert layer0["train"]["feature_recon"] != pytest.approx(default["train"]["feature_recon"], rel=0.05)
    for args, message in [
        (["--pixel-weight", "-0.1"], "pixel_weight: must be >= 0"),
        (["--gamma", "-1"], "gamma: must be >= 0"),
        (["--disc-layer", "2"], "disc_layer: the discriminator has 2 hidden layers, got 2"),
        (["--disc-layer", "-3"], "disc_layer: the discriminator has 2 hidden layers, got -3"),
        (["--disc-layer", "last"], "disc_layer: expected an integer"),
        (["--equilibrium", "0"], "equilibrium: must be a positive number"),
        (["--margin", "-1"], "margin: must be >= 0"),
    ]:
        assert message in one_line_error(train(cli, digits, tmp_path / "never", "vaegan", *net, *args)), args
        assert not (tmp_path / "never").exists(), args


@pytest.mark.parametrize("bce, d_updated, dec_adv", [(0.2, 0.0, 1.0), (0.68, 1.0, 1.0), (1.5, 1.0, 0.0)])
def test_the_vaegan_gates_its_updates_on_the_discriminator_s_bce(tmp_path, bce, d_updated, dec_adv):
    """Found by mutation testing."""
    trainer = trainer_of(tiny.make(tmp_path, kind="vaegan"))
    disc = copy.deepcopy(trainer.disc)
    _, losses = trainer.forward(batch(4), None, 0.0, torch.Generator().manual_seed(0))
    losses["bce"] = torch.tensor([bce, bce])
    flags = trainer.update(losses)
    assert flags == {"d_updated": torch.tensor(d_updated), "dec_adv_updated": torch.tensor(dec_adv)}
    moved = any(not torch.equal(a, b) for a, b in zip(trainer.disc.parameters(), disc.parameters()))
    assert moved == bool(d_updated)
