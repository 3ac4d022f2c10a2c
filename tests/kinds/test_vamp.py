"""The VampPrior kind (Tomczak & Welling 2018): its mixture prior against torch.distributions and sampling, the
Monte-Carlo KL at the reconstruction's z, the pseudo-inputs (initialised, clamped, counted), and the step with each
of its options written out (beta and the warm-up, binarization, a learned sigma)."""

import copy
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from tests.helpers.tiny import SHAPE, batch, make, trainer_of
from vaelab import data
from vaelab.kinds.vamp import VampConfig, VampVAE, build, mixture_log_prob, monte_carlo_kl
from vaelab.losses import bernoulli_log_likelihood, binarize, gaussian_log_likelihood
from vaelab.models import VAE, DiagonalGaussian, VAEConfig, standard_normal_log_prob


def test_the_pseudo_inputs_start_as_faint_noise_and_stay_in_the_unit_interval():
    """Found by mutation testing."""
    config = VampConfig(shape=SHAPE, latent_dim=2, hidden=(8,), pseudo_inputs=5)
    torch.manual_seed(0)
    model = VampVAE(config)
    torch.manual_seed(0)
    VAE(config)  # the networks' draws, then the pseudo-inputs' N(0.05, 0.01)
    expected = 0.05 + 0.01 * torch.randn(5, *SHAPE)
    assert model.pseudo.shape == (5, *SHAPE) and torch.equal(model.pseudo.detach(), expected)
    with torch.no_grad():
        model.pseudo.copy_(torch.linspace(-0.5, 1.5, 80).view(5, *SHAPE))
    torch.testing.assert_close(model.pseudo_inputs(), torch.linspace(-0.5, 1.5, 80).clamp(0, 1).view(5, *SHAPE))


def test_the_vamp_build_takes_a_plain_or_a_vamp_model_config():
    """Found by mutation testing."""
    plain = build(VAEConfig(shape=SHAPE, latent_dim=2, hidden=(8,)))
    assert isinstance(plain, VampVAE) and plain.config.pseudo_inputs == 500 and plain.pseudo.shape[0] == 500
    own = build(VampConfig(shape=SHAPE, latent_dim=2, hidden=(8,), pseudo_inputs=3))
    assert own.config.pseudo_inputs == 3 and own.pseudo.shape[0] == 3


def test_the_vamp_kl_is_taken_at_the_z_the_reconstruction_used(tmp_path):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, kind="vamp", pseudo_inputs=3))
    model, x = trainer.model, batch(4)
    assert trainer.model.pseudo.shape == (3, *SHAPE) and trainer.model.config.pseudo_inputs == 3
    q = model.encode(x)
    z = q.sample(torch.Generator().manual_seed(1))
    torch.testing.assert_close(q.kl(), q.log_prob(z) - model.log_prior(z))
    fresh = model.encode(x)  # no z drawn yet: kl() draws one (from the global generator)
    torch.manual_seed(7)
    kl = fresh.kl()
    torch.manual_seed(7)
    z = fresh.mean + fresh.std * torch.randn(fresh.mean.shape)
    torch.testing.assert_close(kl, fresh.log_prob(z) - model.log_prior(z))


def test_the_vamp_prior_scores_float64_latents_in_float64(tmp_path):
    """Found by mutation testing."""
    model = trainer_of(make(tmp_path, kind="vamp", pseudo_inputs=3)).model
    z = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = model.log_prior(z)
    components = model.prior_components()
    assert got.dtype == torch.float64  # every step in float64 (means squared in float32 would differ in the last bits)
    assert torch.equal(got, mixture_log_prob(z, components.mean.double(), components.logvar.double()))


VAMP_CASES = {
    "beta": {"beta": 0.5},
    "warm-up": {"beta": 0.5, "warmup_epochs": 2.0},
    "binarized": {"binarize": True},
    "gaussian-learned-sigma": {"likelihood": "gaussian", "learn_sigma": True},
}


@pytest.mark.parametrize("case", VAMP_CASES)
def test_the_vamp_step_with_its_options_written_out(tmp_path, case):
    """loss = recon + beta * (log q(z|x) - log p(z)) at the z the reconstruction used, p the learned mixture;
    one Adam step over the encoder, decoder and pseudo-inputs. Found by mutation testing."""
    options = VAMP_CASES[case]
    trainer = trainer_of(make(tmp_path, kind="vamp", pseudo_inputs=3, lr=0.01, **options))
    if options.get("learn_sigma"):
        with torch.no_grad():
            trainer.model.log_sigma.fill_(-0.3)
    twin, x = copy.deepcopy(trainer.model), batch(4)
    terms, loss = trainer.forward(x, None, 0.5, torch.Generator().manual_seed(2))
    noise = torch.Generator().manual_seed(2)
    if options.get("binarize"):
        x = binarize(x, noise)
    q = twin.encode(x)
    z = q.mean + q.std * torch.randn(4, 2, generator=noise)
    if options.get("learn_sigma"):
        recon = -gaussian_log_likelihood(twin.decode(z), x, twin.log_sigma).sum()
    else:
        recon = -bernoulli_log_likelihood(twin.decode(z), x).sum()
    kl = (q.log_prob(z) - twin.log_prior(z)).sum()
    beta = {"beta": 0.5, "warm-up": 0.125}.get(case, 1.0)  # the warm-up: a quarter of the way, at 0.5 of 2 epochs
    torch.testing.assert_close(terms["recon"], recon)
    torch.testing.assert_close(terms["kl"], kl)
    torch.testing.assert_close(terms["loss"], recon + beta * kl)
    torch.testing.assert_close(loss, (recon + beta * kl) / 4)
    trainer.update(loss)
    optimizer = torch.optim.Adam(twin.parameters(), lr=0.01)
    ((recon + beta * kl) / 4).backward()
    optimizer.step()
    for a, b in zip(trainer.model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)
    expected_beta = {"beta": 0.5, "warm-up": 0.25}.get(case, 1.0)  # the record's: at the end of epoch 1
    assert trainer.record(1) == {"beta": expected_beta, "lr": 0.01, "pseudo_inputs": 3}


def test_the_vamp_prior_is_the_mixture_of_its_components():
    """Found by mutation testing."""
    torch.manual_seed(0)
    means, logvars, z = torch.randn(5, 3), torch.randn(5, 3), torch.randn(2, 4, 3)
    mixture = MixtureSameFamily(
        Categorical(logits=torch.zeros(5)), Independent(Normal(means, (0.5 * logvars).exp()), 1)
    )
    torch.testing.assert_close(mixture_log_prob(z, means, logvars), mixture.log_prob(z))
    q = DiagonalGaussian(torch.randn(4, 3), torch.randn(4, 3))
    prior = lambda v: mixture.log_prob(v)
    mean, se = monte_carlo_kl(q, prior, 50, torch.Generator().manual_seed(1))
    eps = torch.randn(50, 4, 3, generator=torch.Generator().manual_seed(1))
    values = q.log_prob(q.mean + q.std * eps) - prior(q.mean + q.std * eps)
    torch.testing.assert_close(mean, values.mean(0))
    torch.testing.assert_close(se, values.std(0) / math.sqrt(50))


DIGIT_SHAPE = (1, 28, 28)


def test_monte_carlo_kl_against_a_standard_normal_prior_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    posterior = DiagonalGaussian(torch.randn(16, 5, generator=g), torch.randn(16, 5, generator=g) * 0.5)
    estimate, se = monte_carlo_kl(posterior, standard_normal_log_prob, 4000, torch.Generator().manual_seed(1))
    z_scores = (estimate - posterior.kl()) / se
    assert z_scores.abs().max() < 4.5 and z_scores.abs().mean() < 1.5, z_scores


def test_the_mixture_log_density_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    means, logvars = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g) * 0.3
    z = torch.randn(4, 5, 3, generator=g)
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=torch.zeros(7)),
        torch.distributions.Independent(torch.distributions.Normal(means, torch.exp(0.5 * logvars)), 1),
    ).log_prob(z)
    assert torch.allclose(mixture_log_prob(z, means, logvars), reference, atol=1e-4)


def test_the_vamp_prior_is_the_mixture_of_its_pseudo_inputs_posteriors_and_sampling_follows_it():
    torch.manual_seed(0)
    model = VampVAE(VampConfig(DIGIT_SHAPE, latent_dim=2, hidden=(32,), pseudo_inputs=1)).eval()
    with torch.no_grad():
        component = model.prior_components()
        z = model.sample_prior(20000, torch.Generator().manual_seed(0))
        assert torch.allclose(z.mean(0), component.mean[0], atol=0.05 * float(component.std.max()) + 0.02)
        assert torch.allclose(z.std(0), component.std[0], rtol=0.05)
        assert torch.allclose(model.log_prior(z[:10]), component.log_prob(z[:10]), atol=1e-4)
        # the KL of its posterior is the Monte-Carlo one, at the z the reconstruction used
        out = model(data.to_float(data.load("mnist-mini").test.images[:4]), torch.Generator().manual_seed(1))
        assert torch.allclose(out.posterior.kl(), out.posterior.log_prob(out.z) - model.log_prior(out.z))
