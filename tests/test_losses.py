"""The loss terms (vaelab.losses) against references: torch.distributions, closed forms and direct computations, for
the likelihoods, the VAE's terms and batch sums, binarization, the KL weight's ramp and the adversarial losses."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent, Normal

from vaelab.losses import (
    batch_sums,
    bernoulli_log_likelihood,
    binarize,
    discriminator_loss,
    feature_reconstruction,
    gaussian_log_likelihood,
    generator_loss,
    kl_weight,
    log_likelihood,
    vae_terms,
)
from vaelab.models import DiagonalGaussian


def test_bernoulli_term_matches_direct_computation():
    torch.manual_seed(2)
    logits, x = torch.randn(6, 1, 4, 4) * 3, torch.rand(6, 1, 4, 4)
    p = torch.sigmoid(logits.double())
    direct = (x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    torch.testing.assert_close(bernoulli_log_likelihood(logits, x).double(), direct, rtol=1e-5, atol=1e-4)
    xb = (x > 0.5).float()
    reference = Independent(Bernoulli(logits=logits), 3).log_prob(xb)
    torch.testing.assert_close(bernoulli_log_likelihood(logits, xb), reference)


def test_bernoulli_term_is_stable_for_extreme_logits():
    logits = torch.tensor([[-200.0, 200.0]]).view(1, 1, 1, 2)
    x = torch.tensor([[0.0, 1.0]]).view(1, 1, 1, 2)
    value = bernoulli_log_likelihood(logits, x)
    assert torch.isfinite(value).all() and value.abs().item() < 1e-30 + 1e-6
    wrong = bernoulli_log_likelihood(logits, 1 - x)  # confidently wrong: about -400, not -inf
    assert wrong.item() == pytest.approx(-400.0)


def test_gaussian_term_matches_normal_and_course_squared_error():
    torch.manual_seed(3)
    mean, x = torch.rand(5, 1, 3, 3), torch.rand(5, 1, 3, 3)
    log_sigma = torch.tensor(math.log(0.3))
    reference = Independent(Normal(mean, 0.3), 3).log_prob(x)
    torch.testing.assert_close(gaussian_log_likelihood(mean, x, log_sigma), reference)
    # sigma^2 = 1/2: -log p(x|z) = ||x - x_hat||^2 + (d/2) log(pi)
    course = gaussian_log_likelihood(mean, x, torch.tensor(math.log(math.sqrt(0.5))))
    sq = (x - mean).pow(2).flatten(1).sum(1)
    torch.testing.assert_close(-course, sq + 9 / 2 * math.log(math.pi))


def test_vae_terms_add_up_with_beta():
    torch.manual_seed(4)
    x, out = torch.rand(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    q = DiagonalGaussian(torch.randn(3, 2), torch.randn(3, 2))
    terms = vae_terms("bernoulli", out, x, q, torch.tensor(0.0), beta=0.25)
    torch.testing.assert_close(terms["loss"], terms["recon"] + 0.25 * terms["kl"])
    assert set(terms) == {"loss", "recon", "kl"}
    assert "sq_error" in vae_terms("gaussian", out, x, q, torch.tensor(0.0))


def test_binarize_keeps_the_mean_and_is_seeded():
    x = torch.full((200, 1, 10, 10), 0.3)
    b1, b2 = binarize(x, torch.Generator().manual_seed(5)), binarize(x, torch.Generator().manual_seed(5))
    assert torch.equal(b1, b2) and set(b1.unique().tolist()) <= {0.0, 1.0}
    assert abs(b1.mean().item() - 0.3) < 0.01


def test_kl_warmup_is_linear():
    assert kl_weight(2.0, 0.5, 2.0) == pytest.approx(0.5)
    assert kl_weight(2.0, 5.0, 2.0) == 2.0 and kl_weight(2.0, 0.0, 0.0) == 2.0


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_training_batch_sums_equal_the_per_image_terms(likelihood):
    from vaelab.losses import batch_sums

    torch.manual_seed(6)
    x, out = torch.rand(5, 1, 3, 3), torch.randn(5, 1, 3, 3)
    q = DiagonalGaussian(torch.randn(5, 4), torch.randn(5, 4))
    log_sigma = torch.tensor(-0.3)
    terms, sums = vae_terms(likelihood, out, x, q, log_sigma), batch_sums(likelihood, out, x, q, log_sigma)
    for name in sums:
        torch.testing.assert_close(sums[name], terms[name].sum())


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


def test_likelihoods_of_k_samples_broadcast_against_the_images():
    """Found by mutation testing."""
    torch.manual_seed(0)
    x = (torch.rand(1, 2, 3, 2) > 0.5).float()  # one image: an index past the first would fail
    logits, mean = torch.randn(4, 1, 2, 3, 2), torch.rand(4, 1, 2, 3, 2)
    log_sigma = torch.tensor(-0.4)
    assert bernoulli_log_likelihood(logits, x).shape == (4, 1)
    torch.testing.assert_close(
        log_likelihood("bernoulli", logits, x, log_sigma),
        Independent(Bernoulli(logits=logits), 3).log_prob(x.expand(4, -1, -1, -1, -1)),
    )
    torch.testing.assert_close(
        log_likelihood("gaussian", mean, x, log_sigma),
        Independent(Normal(mean, log_sigma.exp()), 3).log_prob(x.expand(4, -1, -1, -1, -1)),
    )
    single = gaussian_log_likelihood(mean[:1, 0], x, log_sigma)  # 4-D, one image: its pixel count from image 0
    torch.testing.assert_close(single, Independent(Normal(mean[:1, 0], log_sigma.exp()), 3).log_prob(x))
    one = gaussian_log_likelihood(mean[:, 0], x, log_sigma)  # 4-D, one image broadcast against 4 means
    torch.testing.assert_close(
        one, Independent(Normal(mean[:, 0], log_sigma.exp()), 3).log_prob(x.expand(4, -1, -1, -1))
    )


def test_bernoulli_in_float64_is_exact():
    """Found by mutation testing."""
    logits = torch.tensor([-800.0, -3.0, 0.0, 2.5, 800.0], dtype=torch.float64).view(1, 1, 1, 5)
    x = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0], dtype=torch.float64).view(1, 1, 1, 5)
    value = bernoulli_log_likelihood(logits, x)
    assert value.dtype == torch.float64
    expected = -(math.log1p(math.exp(-3.0)) + 3.0) - math.log(2.0) - (2.5 + math.log1p(math.exp(-2.5)))
    assert value.item() == pytest.approx(expected, rel=1e-15)


def test_vae_terms_default_to_the_elbo_and_add_the_squared_error_for_gaussians():
    """Found by mutation testing."""
    torch.manual_seed(1)
    x, out = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)
    q = DiagonalGaussian(torch.randn(3, 2), torch.randn(3, 2))
    log_sigma = torch.tensor(0.2)
    terms = vae_terms("gaussian", out, x, q, log_sigma)
    torch.testing.assert_close(terms["loss"], terms["recon"] + terms["kl"])
    torch.testing.assert_close(terms["recon"], -gaussian_log_likelihood(out, x, log_sigma))
    torch.testing.assert_close(terms["kl"], q.kl())
    torch.testing.assert_close(terms["sq_error"], (x - out).pow(2).flatten(1).sum(1))
    assert set(terms) == {"loss", "recon", "kl", "sq_error"}
    bern = vae_terms("bernoulli", out, x, q, log_sigma, beta=3.0)
    torch.testing.assert_close(bern["recon"], -bernoulli_log_likelihood(out, x))
    torch.testing.assert_close(bern["loss"], bern["recon"] + 3.0 * bern["kl"])


def test_batch_sums_are_the_closed_forms():
    """Found by mutation testing."""
    torch.manual_seed(2)
    x, out = torch.rand(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    mean, logvar = torch.randn(4, 2), torch.randn(4, 2)
    q = DiagonalGaussian(mean, logvar)
    log_sigma = torch.tensor(0.3)
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum()
    bern = batch_sums("bernoulli", out, x, q, log_sigma)
    assert set(bern) == {"recon", "kl"}
    torch.testing.assert_close(bern["recon"], F.binary_cross_entropy_with_logits(out, x, reduction="none").sum())
    torch.testing.assert_close(bern["kl"], kl)
    gauss = batch_sums("gaussian", out, x, q, log_sigma)
    assert set(gauss) == {"recon", "kl", "sq_error"}
    torch.testing.assert_close(gauss["recon"], -Independent(Normal(out, log_sigma.exp()), 3).log_prob(x).sum())
    torch.testing.assert_close(gauss["sq_error"], (x - out).pow(2).sum())


def test_binarize_follows_the_grey_level():
    """Found by mutation testing."""
    x = torch.tensor([0.0, 1.0, 0.25]).repeat(4000).view(-1, 1, 1, 3)
    b = binarize(x, torch.Generator().manual_seed(0))
    assert b.dtype == x.dtype and b.shape == x.shape
    assert b[..., 0].sum() == 0 and b[..., 1].min() == 1
    assert abs(b[..., 2].mean().item() - 0.25) < 0.02
    assert not torch.equal(b, binarize(x, torch.Generator().manual_seed(1)))
    x64 = x.double()
    b64 = binarize(x64, torch.Generator().manual_seed(0))
    draws = torch.rand(x64.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert b64.dtype == torch.float64 and torch.equal(b64, (draws < x64).double())


def test_kl_weight_ramp():
    """Found by mutation testing."""
    assert kl_weight(2.0, 1.0, 4.0) == 0.5
    assert kl_weight(2.0, 4.0, 4.0) == 2.0 and kl_weight(2.0, 9.0, 4.0) == 2.0
    assert kl_weight(3.0, 0.0, 0.0) == 3.0 and kl_weight(3.0, 0.0, -1.0) == 3.0
    assert kl_weight(2.0, 0.25, 1.0) == 0.5 and kl_weight(2.0, 0.25, 0.5) == 1.0


def test_discriminator_and_generator_losses_are_the_papers():
    """Found by mutation testing."""
    real, fake = torch.tensor([2.0, -0.5, 0.3]), torch.tensor([-1.5, 0.7])
    d_ns = -torch.sigmoid(real).log().mean() - (1 - torch.sigmoid(fake)).log().mean()
    torch.testing.assert_close(discriminator_loss(real, fake), d_ns)
    torch.testing.assert_close(discriminator_loss(real, fake, "ns"), d_ns)
    d_hinge = torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx((0 + 1.5 + 0.7) / 3 + (0 + 1.7) / 2)
    torch.testing.assert_close(discriminator_loss(real, fake, "hinge"), d_hinge)
    torch.testing.assert_close(generator_loss(fake), -torch.sigmoid(fake).log().mean())
    torch.testing.assert_close(generator_loss(fake, "ns"), -torch.sigmoid(fake).log().mean())
    assert generator_loss(fake, "hinge").item() == pytest.approx(0.4)


def test_feature_reconstruction_is_half_the_squared_distance_per_image():
    """Found by mutation testing."""
    real, fake = torch.tensor([[1.0, 2.0, 0.0], [1.0, 0.0, 1.0]]), torch.tensor([[0.0, 1.0, 0.0], [4.0, 0.0, 5.0]])
    torch.testing.assert_close(feature_reconstruction(real, fake), torch.tensor([1.0, 12.5]))
