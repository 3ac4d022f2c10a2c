"""The VAE's posterior (vaelab.models.posterior): the diagonal Gaussian's KL, log-density, standard deviation, mode
and reparameterized samples, against torch.distributions and closed forms."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vaelab.models.posterior import DiagonalGaussian, standard_normal_log_prob


def test_posterior_std_mode_and_float64_samples():
    """Found by mutation testing."""
    mean = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    logvar = torch.tensor([[math.log(4.0), math.log(0.25)]], dtype=torch.float64)
    q = DiagonalGaussian(mean, logvar)
    torch.testing.assert_close(q.std, torch.tensor([[2.0, 0.5]], dtype=torch.float64))
    assert q.mode() is mean
    z = q.sample(torch.Generator().manual_seed(7))
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert z.dtype == torch.float64
    torch.testing.assert_close(z, mean + q.std * eps, rtol=0, atol=0)
    assert not torch.equal(z, q.sample(torch.Generator().manual_seed(8)))


def test_posterior_closed_forms():
    """Found by mutation testing."""
    mean, logvar = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    q = DiagonalGaussian(mean, logvar)
    expected = torch.tensor([[0.5, 0.5 * (2.0 - 1.0 - math.log(2.0))], [0.0, 2.0]])
    torch.testing.assert_close(q.kl_per_dim(), expected)
    torch.testing.assert_close(q.kl(), expected.sum(1))
    z = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    log_q = Independent(Normal(mean, (0.5 * logvar).exp()), 1).log_prob(z)
    torch.testing.assert_close(q.log_prob(z), log_q)
    torch.testing.assert_close(standard_normal_log_prob(z), Independent(Normal(0.0, torch.ones(2)), 1).log_prob(z))
    assert standard_normal_log_prob(torch.zeros(3, 4)).tolist() == pytest.approx([-2 * math.log(2 * math.pi)] * 3)


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


def test_reparameterized_sample_carries_gradients():
    mean = torch.zeros(1000, 2, requires_grad=True)
    logvar = torch.full((1000, 2), math.log(4.0), requires_grad=True)
    z = DiagonalGaussian(mean, logvar).sample(torch.Generator().manual_seed(0))
    assert abs(z.std().item() - 2.0) < 0.1
    z.sum().backward()
    assert torch.equal(mean.grad, torch.ones_like(mean)) and logvar.grad.abs().sum() > 0
