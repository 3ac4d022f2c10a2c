"""The IWAE kind (Burda et al. 2016): its bound and effective sample size against the same written out and the VAE's
ELBO at k = 1, a bound that tightens with k, the step, the seeded test terms (also as rank 1 of a mirrored world),
binarized inputs, bf16 and a learned Gaussian sigma."""

import copy
import math

import pytest
import torch
from torch.distributions import Independent, Normal

from tests.helpers.tiny import CPU, SHAPE, batch, make, trainer_of, uint8
from vaelab import data, kinds
from vaelab.device import World
from vaelab.kinds.iwae import iwae_terms, split_bound
from vaelab.losses import bernoulli_log_likelihood, binarize, gaussian_log_likelihood, log_likelihood
from vaelab.models import VAE, DiagonalGaussian, VAEConfig, standard_normal_log_prob
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.training.split import split_terms

DIGIT_SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def images():
    return data.load("mnist-mini").test.images[:128]


def test_iwae_with_one_sample_is_the_vae_elbo_estimate(images):
    torch.manual_seed(0)
    model = VAE(VAEConfig(DIGIT_SHAPE, latent_dim=4, hidden=(64,))).eval()
    x = data.to_float(images[:32])
    with torch.no_grad():
        terms = iwae_terms(model, x, 1, torch.Generator().manual_seed(3))
        out = model(x, torch.Generator().manual_seed(3))  # the same noise: the same z
        log_px = log_likelihood(model.likelihood, model.decode(out.z), x, model.log_sigma)
        elbo_sample = log_px + standard_normal_log_prob(out.z) - out.posterior.log_prob(out.z)
    assert torch.allclose(terms["bound"], elbo_sample, atol=1e-4)
    assert torch.allclose(terms["ess"], torch.ones(32))
    # and in expectation it is the VAE's ELBO with the closed-form KL (Kingma & Welling's estimator)
    with torch.no_grad():
        many = torch.stack([iwae_terms(model, x, 1, torch.Generator().manual_seed(s))["bound"] for s in range(100)])
        closed = (
            torch.stack(
                [
                    log_likelihood(
                        model.likelihood,
                        model.decode(out.posterior.sample(torch.Generator().manual_seed(1000 + s))),
                        x,
                        model.log_sigma,
                    )
                    for s in range(100)
                ]
            ).mean(0)
            - out.posterior.kl()
        )
    se = many.std(0) / math.sqrt(100)
    assert (many.mean(0) - closed).abs().mean() < 4 * se.mean()


def test_the_iwae_bound_increases_with_k_on_a_fixed_model(images):
    torch.manual_seed(0)
    model = VAE(VAEConfig(DIGIT_SHAPE, latent_dim=4, hidden=(64,))).eval()
    bounds = [
        split_bound(
            model, images, k, binarize_images=False, seed=0, batch_size=1000, device=torch.device("cpu"), world=World()
        )["bound"]
        for k in (1, 5, 50)
    ]
    assert bounds[0] < bounds[1] < bounds[2], bounds


def test_the_iwae_test_terms_of_rank_1_cover_its_shard(tmp_path, mirror):
    """Found by mutation testing."""
    from vaelab.kinds.iwae import split_bound
    from vaelab.training.split import split_terms

    world = World(rank=1, size=2)
    trainer = kinds.get("iwae").trainer(make(tmp_path, epochs=2, kind="iwae", k=2, seed=1), SHAPE, CPU, world)
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


def test_the_iwae_terms_are_the_bound_written_out(tmp_path):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, kind="iwae", k=4))
    model, x = trainer.model, batch(3)
    terms = iwae_terms(model, x, 4, torch.Generator().manual_seed(2))
    q = model.encode(x)
    eps = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(2))
    z = q.mean + q.std * eps
    log_px = bernoulli_log_likelihood(model.decode(z.reshape(-1, 2)).view(4, *x.shape), x)
    log_q = Independent(Normal(q.mean, q.std), 1).log_prob(z)
    log_p = Independent(Normal(torch.zeros(2), torch.ones(2)), 1).log_prob(z)
    log_w = log_px + log_p - log_q  # [k, B]
    torch.testing.assert_close(terms["bound"], torch.logsumexp(log_w, 0) - math.log(4))
    w = torch.softmax(log_w, 0)
    torch.testing.assert_close(terms["ess"], 1 / w.pow(2).sum(0))
    torch.testing.assert_close(terms["recon"], -log_px.mean(0))
    torch.testing.assert_close(terms["kl"], (log_q - log_p).mean(0))
    assert bool((terms["ess"] >= 1 - 1e-5).all() and (terms["ess"] <= 4 + 1e-5).all())


def test_the_iwae_step_minimises_minus_the_bound(tmp_path):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, kind="iwae", k=3, lr=0.01))
    twin = copy.deepcopy(trainer.model)
    x = batch(4)
    terms, loss = trainer.forward(x, None, 0.0, torch.Generator().manual_seed(5))
    expected = iwae_terms(twin, x, 3, torch.Generator().manual_seed(5))
    assert set(terms) == {"loss", "bound", "ess", "recon", "kl"}
    torch.testing.assert_close(terms["loss"], -expected["bound"].sum())
    for name in ("bound", "ess", "recon", "kl"):
        torch.testing.assert_close(terms[name], expected[name].sum())
    torch.testing.assert_close(loss, -expected["bound"].sum() / 4)
    trainer.update(loss)
    optimizer = torch.optim.Adam(twin.parameters(), lr=0.01)
    (-expected["bound"].sum() / 4).backward()
    optimizer.step()
    for a, b in zip(trainer.model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)
    assert trainer.record(1) == {"k": 3, "lr": 0.01}


def test_the_iwae_test_terms(tmp_path):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, kind="iwae", k=2, eval_batch_size=4))
    images = (batch(5) * 255).to(torch.uint8)
    terms = trainer.test_terms(images, None, 1)
    assert set(terms) == {"loss", "recon", "kl", "bound", "ess"} and terms["loss"] == -terms["bound"]
    assert 1 <= terms["ess"] <= 2 and terms == trainer.test_terms(images, None, 1)


def test_the_iwae_terms_use_the_model_s_learned_sigma(tmp_path):
    """Found by mutation testing."""
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
    """Found by mutation testing."""
    from vaelab.kinds.iwae import _sample_k

    q = DiagonalGaussian(torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64))
    z = _sample_k(q, 4, torch.Generator().manual_seed(1))
    eps = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert z.dtype == torch.float64 and torch.equal(z, q.mean + q.std * eps)


@pytest.mark.parametrize("batch_size, rows", [(11, 2), (3, 1)])
def test_split_bound_is_the_seeded_bound_in_batches_of_the_eval_batch_over_k(tmp_path, batch_size, rows):
    """batch_size // k images per batch (at least one), binarized and drawn with one generator seeded `seed`.
    Found by mutation testing."""
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
    """Found by mutation testing."""
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
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, kind="iwae", k=3, binarize=True))
    twin, x = copy.deepcopy(trainer.model), batch(4)
    terms, _ = trainer.forward(x, None, 0.0, torch.Generator().manual_seed(5))
    noise = torch.Generator().manual_seed(5)
    expected = iwae_terms(twin, binarize(x, noise), 3, noise)
    torch.testing.assert_close(terms["bound"], expected["bound"].sum())
    torch.testing.assert_close(terms["recon"], expected["recon"].sum())


def test_the_iwae_step_in_bf16_encodes_under_autocast_and_scores_in_fp32(tmp_path):
    """Found by mutation testing."""
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
