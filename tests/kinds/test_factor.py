"""The FactorVAE kind (Kim & Mnih 2018): permute_dims, the discriminator's loss and accuracy written out, the VAE's
loss with gamma times D's logit, each network's gradient of its own loss only, gamma and the discriminator's options
checked, and end to end a one-epoch run (D's weights saved beside the model) and its resume."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from tests.helpers.runs import assert_same_tensors, epochs_of, ok, one_line_error, resume, train
from tests.helpers.tiny import batch, make, trainer_of
from vaelab import kinds
from vaelab.errors import ConfigError
from vaelab.kinds.factor import LatentDiscriminator, discriminator_terms, permute_dims
from vaelab.losses import bernoulli_log_likelihood


def test_permute_dims_shuffles_each_dimension_by_its_own_permutation():
    z = torch.arange(200.0).view(50, 4) + torch.tensor([0.0, 1000.0, 2000.0, 3000.0])
    shuffled = permute_dims(z, torch.Generator().manual_seed(0))
    assert shuffled.shape == z.shape
    for d in range(4):  # each column holds the same values, reordered
        assert torch.equal(shuffled[:, d].sort().values, z[:, d])
    orders = [shuffled[:, d].sub(1000 * d).div(4).long() for d in range(4)]  # the row each value came from
    assert all(not torch.equal(orders[0], other) for other in orders[1:])  # independent permutations
    assert not torch.equal(orders[0], torch.arange(50))
    again = permute_dims(z, torch.Generator().manual_seed(0))
    assert torch.equal(shuffled, again)  # drawn from the generator only


def test_the_discriminator_learns_the_first_half_against_the_second_half_permuted():
    torch.manual_seed(0)
    disc = LatentDiscriminator(3, 8, 2)
    z = torch.randn(7, 3)
    got = discriminator_terms(disc, z, torch.Generator().manual_seed(1))
    real = disc(z[:3])
    shuffled = disc(permute_dims(z[3:], torch.Generator().manual_seed(1)))
    torch.testing.assert_close(
        got["discriminator_loss"], 0.5 * (F.softplus(-real).mean() + F.softplus(shuffled).mean())
    )
    correct = (real > 0).sum() + (shuffled < 0).sum()
    torch.testing.assert_close(got["discriminator_accuracy"], correct.float() / 7)
    one = discriminator_terms(disc, z[:1], torch.Generator())
    assert float(one["discriminator_loss"]) == 0 and not one["discriminator_loss"].requires_grad


def test_the_discriminator_is_the_papers_mlp_of_the_chosen_width_and_depth():
    disc = LatentDiscriminator(5, 16, 3)
    linears = [m for m in disc.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 16), (16, 16), (16, 16), (16, 1)]
    assert sum(isinstance(m, torch.nn.LeakyReLU) and m.negative_slope == 0.2 for m in disc.modules()) == 3
    assert disc(torch.zeros(4, 5)).shape == (4,)


def test_the_step_adds_gamma_times_the_logit_and_trains_each_network_on_its_own_loss(tmp_path):
    """VAE: recon + kl + gamma * sum D(z) at the reparameterized z; D: its BCE on z detached. After the update each
    network holds the gradient of its own loss only (D's logit in the VAE's loss does not train D)."""
    config = make(tmp_path, kind="factor", gamma=7.0, disc_width=8, disc_depth=2)
    trainer = trainer_of(config)
    before = copy.deepcopy(trainer)
    x = batch(8)
    terms, losses = trainer.forward(x, None, 0.0, torch.Generator().manual_seed(3))
    noise = torch.Generator().manual_seed(3)
    q = before.model.encode(x)
    z = q.mean + q.std * torch.randn(q.mean.shape, generator=noise)
    recon = -bernoulli_log_likelihood(before.model.decode(z), x).sum()
    logits = before.disc(z)
    vae_loss = recon + q.kl().sum() + 7.0 * logits.sum()
    d = discriminator_terms(before.disc, z.detach(), noise)
    torch.testing.assert_close(terms["loss"], vae_loss)
    torch.testing.assert_close(terms["tc_estimate"], logits.sum())
    torch.testing.assert_close(terms["discriminator_loss"], d["discriminator_loss"] * 8)
    torch.testing.assert_close(losses["vae"], vae_loss / 8)
    trainer.update(losses)
    vae_grads = torch.autograd.grad(vae_loss / 8, list(before.model.parameters()))
    disc_grads = torch.autograd.grad(d["discriminator_loss"], list(before.disc.parameters()))
    for p, g in zip(trainer.model.parameters(), vae_grads):
        torch.testing.assert_close(p.grad, g)
    for p, g in zip(trainer.disc.parameters(), disc_grads):
        torch.testing.assert_close(p.grad, g)
    assert trainer.optimizers["discriminator"].param_groups[0]["betas"] == (0.5, 0.9)
    assert trainer.optimizers["discriminator"].param_groups[0]["lr"] == 1e-4


@pytest.mark.parametrize(
    "values",
    [
        {"gamma": float("nan")},
        {"gamma": float("inf")},
        {"gamma": -1.0},
        {"gamma": 1e9},
        {"disc_width": 0},
        {"disc_depth": 1000},
        {"disc_lr": 0.0},
        {"disc_betas": [0.5, 1.0]},
        {"beta": 4.0},
    ],
)
def test_absurd_values_are_refused(values):
    with pytest.raises(ConfigError, match=next(iter(values))):
        kinds.make_config({"kind": "factor", **values})


def test_the_defaults_are_the_stated_ones():
    o = kinds.make_config({"kind": "factor"}).options
    assert (o.gamma, o.disc_width, o.disc_depth, o.disc_lr, o.disc_betas) == (35.0, 256, 6, 1e-4, [0.5, 0.9])


@pytest.mark.e2e
@pytest.mark.usefixtures("no_figures")
def test_a_factor_run_logs_its_terms_saves_its_discriminator_and_resumes_as_if_never_stopped(cli, digits_npz, tmp_path):
    digits = digits_npz(256, 64)
    small = ["--disc-width", "16", "--disc-depth", "2"]
    ok(train(cli, digits, tmp_path / "one", "factor", *small, epochs=1))
    (record,) = epochs_of(tmp_path / "one")
    for split in ("train", "test"):
        names = {"loss", "recon", "kl", "tc_estimate", "discriminator_loss", "discriminator_accuracy"}
        assert names <= set(record[split]), record[split]
        assert all(math.isfinite(v) for v in record[split].values())
        assert 0 <= record[split]["discriminator_accuracy"] <= 1
    assert record["gamma"] == 35.0 and record["disc_lr"] == 1e-4
    assert (tmp_path / "one" / "discriminator.safetensors").is_file()
    ok(resume(cli, tmp_path / "one", 2))
    ok(train(cli, digits, tmp_path / "two", "factor", *small, epochs=2))
    assert_same_tensors(tmp_path / "one", tmp_path / "two")
    for value in ("nan", "inf", "-1", "1e9"):
        message = one_line_error(train(cli, digits, tmp_path / "bad", "factor", "--gamma", value))
        assert message.startswith("vaelab: error: gamma: "), message
    assert not (tmp_path / "bad").exists()
