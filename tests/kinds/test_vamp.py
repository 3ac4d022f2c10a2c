"""The IWAE's and the VampPrior's options, each written out: the IWAE with binarized inputs, bf16, a learned
Gaussian sigma and its seeded test terms; the VampPrior's pseudo-inputs (initialised, clamped, counted), its
Monte-Carlo KL at the reconstruction's z, the warm-up, binarization and learned sigma. Written for the mutation
run of scripts/mutate.py (docs/mutation.md)."""

import copy

import pytest
import torch

from tests.helpers.tiny import CPU, SHAPE, batch, make, trainer_of, uint8
from vaelab import data
from vaelab.device import World
from vaelab.kinds.iwae import iwae_terms, split_bound
from vaelab.kinds.vamp import VampConfig, VampVAE, build, mixture_log_prob
from vaelab.losses import bernoulli_log_likelihood, binarize, gaussian_log_likelihood
from vaelab.models import VAE, DiagonalGaussian, VAEConfig
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.training.split import split_terms

# --- IWAE ---------------------------------------------------------------------------------------------------


def test_the_iwae_terms_use_the_model_s_learned_sigma(tmp_path):
    model = trainer_of(make(tmp_path, kind="iwae", likelihood="gaussian", learn_sigma=True)).model
    with torch.no_grad():
        model.log_sigma.fill_(-0.3)
    x = batch(3)
    terms = iwae_terms(model, x, 4, torch.Generator().manual_seed(2))
    q = model.encode(x)
    z = q.mean + q.std * torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(2))
    log_px = gaussian_log_likelihood(model.decode(z.reshape(-1, 2)).view(4, *x.shape), x, torch.tensor(-0.3))
    torch.testing.assert_close(terms["recon"], -log_px.mean(0))


def test_the_k_draws_are_in_the_posterior_s_dtype():
    from vaelab.kinds.iwae import _sample_k

    q = DiagonalGaussian(torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64))
    z = _sample_k(q, 4, torch.Generator().manual_seed(1))
    eps = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert z.dtype == torch.float64 and torch.equal(z, q.mean + q.std * eps)


@pytest.mark.parametrize("batch_size, rows", [(11, 2), (3, 1)])
def test_split_bound_is_the_seeded_bound_in_batches_of_the_eval_batch_over_k(tmp_path, batch_size, rows):
    """batch_size // k images per batch (at least one), binarized and drawn with one generator seeded `seed`."""
    model = trainer_of(make(tmp_path, kind="iwae", latent_dim=4)).model
    images = uint8(7, seed=1)
    got = split_bound(model, images, 5, binarize_images=True, seed=3, batch_size=batch_size, device=CPU, world=World())
    generator, sums = torch.Generator().manual_seed(3), {"bound": 0.0, "ess": 0.0}
    with torch.no_grad():
        for start in range(0, 7, rows):
            x = binarize(data.to_float(images[start : start + rows]), generator)
            terms = iwae_terms(model, x, 5, generator)
            for name in sums:
                sums[name] += float(terms[name].double().sum())
    assert got == pytest.approx({name: value / 7 for name, value in sums.items()}, rel=1e-6)


def test_the_iwae_test_terms_are_the_seeded_elbo_and_bound_of_the_split(tmp_path):
    config = make(tmp_path, kind="iwae", k=3, latent_dim=5, binarize=True, seed=6, eval_batch_size=4)
    trainer = trainer_of(config)
    images = uint8(10, seed=2)
    got = trainer.test_terms(images, None, 1)
    seed = 6 + EVAL_SEED_OFFSET
    terms = split_terms(trainer.model, images, binarize=True, seed=seed, batch_size=4)
    bound = split_bound(
        trainer.model, images, 3, binarize_images=True, seed=seed, batch_size=4, device=CPU, world=World()
    )
    assert got == {"loss": -bound["bound"], "recon": terms["recon"], "kl": terms["kl"], **bound}


def test_the_iwae_step_binarizes_with_the_noise_generator(tmp_path):
    trainer = trainer_of(make(tmp_path, kind="iwae", k=3, binarize=True))
    twin, x = copy.deepcopy(trainer.model), batch(4)
    terms, _ = trainer.forward(x, None, 0.0, torch.Generator().manual_seed(5))
    noise = torch.Generator().manual_seed(5)
    expected = iwae_terms(twin, binarize(x, noise), 3, noise)
    torch.testing.assert_close(terms["bound"], expected["bound"].sum())
    torch.testing.assert_close(terms["recon"], expected["recon"].sum())


def test_the_iwae_step_in_bf16_encodes_under_autocast_and_scores_in_fp32(tmp_path):
    x = batch(4)
    fp32 = trainer_of(make(tmp_path, kind="iwae", k=3))
    bf16 = trainer_of(make(tmp_path, kind="iwae", k=3, precision="bf16"))
    twin = copy.deepcopy(bf16.model)
    a, _ = fp32.forward(x, None, 0.0, torch.Generator().manual_seed(5))
    b, _ = bf16.forward(x, None, 0.0, torch.Generator().manual_seed(5))
    assert not torch.equal(a["bound"], b["bound"])  # bf16 is on
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q = twin.encode(x)
    expected = iwae_terms(
        twin, x, 3, torch.Generator().manual_seed(5), DiagonalGaussian(q.mean.float(), q.logvar.float())
    )
    torch.testing.assert_close(b["bound"], expected["bound"].sum())
    assert b["bound"].dtype == torch.float32


# --- VampPrior ------------------------------------------------------------------------------------------------


def test_the_pseudo_inputs_start_as_faint_noise_and_stay_in_the_unit_interval():
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
    plain = build(VAEConfig(shape=SHAPE, latent_dim=2, hidden=(8,)))
    assert isinstance(plain, VampVAE) and plain.config.pseudo_inputs == 500 and plain.pseudo.shape[0] == 500
    own = build(VampConfig(shape=SHAPE, latent_dim=2, hidden=(8,), pseudo_inputs=3))
    assert own.config.pseudo_inputs == 3 and own.pseudo.shape[0] == 3


def test_the_vamp_kl_is_taken_at_the_z_the_reconstruction_used(tmp_path):
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
    one Adam step over the encoder, decoder and pseudo-inputs."""
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
