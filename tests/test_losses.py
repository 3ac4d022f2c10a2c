"""Loss terms against references: torch.distributions and direct computations."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vaelab.losses import (
    bernoulli_log_likelihood,
    binarize,
    gaussian_log_likelihood,
    kl_weight,
    vae_terms,
)
from vaelab.models import DiagonalGaussian


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mean, logvar = torch.randn(7, 5) * 2, torch.randn(7, 5)
    q = DiagonalGaussian(mean, logvar)
    reference = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(torch.zeros(5), torch.ones(5)))
    torch.testing.assert_close(q.kl_per_dim(), reference)
    torch.testing.assert_close(q.kl(), reference.sum(1))
    assert q.kl().shape == (7,)


def test_kl_is_zero_for_the_prior():
    q = DiagonalGaussian(torch.zeros(3, 4), torch.zeros(3, 4))
    assert torch.equal(q.kl(), torch.zeros(3))


def test_log_prob_matches_torch_distributions():
    torch.manual_seed(1)
    mean, logvar, z = torch.randn(4, 3), torch.randn(4, 3), torch.randn(6, 4, 3)
    reference = Independent(Normal(mean, (0.5 * logvar).exp()), 1).log_prob(z)
    torch.testing.assert_close(DiagonalGaussian(mean, logvar).log_prob(z), reference)


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


def test_reparameterized_sample_carries_gradients():
    mean = torch.zeros(1000, 2, requires_grad=True)
    logvar = torch.full((1000, 2), math.log(4.0), requires_grad=True)
    z = DiagonalGaussian(mean, logvar).sample(torch.Generator().manual_seed(0))
    assert abs(z.std().item() - 2.0) < 0.1
    z.sum().backward()
    assert torch.equal(mean.grad, torch.ones_like(mean)) and logvar.grad.abs().sum() > 0


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
