"""Latent usage (vaelab.evaluate.latents): the posterior's statistics, active units and the collapse warnings."""

import pytest
import torch

from tests.helpers.tiny import tiny_images, tiny_vae
from vaelab.evaluate.latents import active_units, collapse_warning, posterior_stats
from vaelab.models import VAE, VAEConfig


def test_posterior_stats_over_several_batches():
    """Found by mutation testing."""
    model, data = tiny_vae(latent_dim=2), tiny_images(10)
    model.train()
    stats = posterior_stats(model, data, batch_size=3)
    assert not model.training
    with torch.no_grad():
        q = model.encode(data.float() / 255)
    assert stats["means"].dtype == torch.float64 and stats["means"].shape == (10, 2)
    torch.testing.assert_close(stats["means"], q.mean.double())
    torch.testing.assert_close(stats["kl_per_dim"], q.kl_per_dim().double().mean(0))
    torch.testing.assert_close(posterior_stats(model, data)["kl_per_dim"], stats["kl_per_dim"])


def test_active_units_counts_the_population_variance_above_the_threshold():
    """Found by mutation testing."""
    means = torch.tensor([[0.5, 0.0, 0.2], [-0.5, 0.0, -0.2]], dtype=torch.float64)  # variances 0.25, 0, 0.04
    n, activity = active_units(means, threshold=0.25)
    assert n == 0 and activity.tolist() == pytest.approx([0.25, 0.0, 0.04])
    assert active_units(means, threshold=0.2)[0] == 1
    assert active_units(means)[0] == 2  # the default threshold, 0.01
    assert active_units(torch.full((3, 2), 0.1, dtype=torch.float64) + torch.tensor([[0.0], [0.1], [0.2]]))[0] == 0


def test_collapse_warnings_word_for_word():
    """Found by mutation testing."""
    kl = torch.tensor([0.001, 0.0024])
    assert collapse_warning(0, 2, kl) == (
        "posterior collapse: none of the 2 latent dimensions is active (total KL 0.003 nats); the decoder ignores z"
    )
    assert collapse_warning(1, 3, kl) == (
        "partial posterior collapse: 2 of 3 latent dimensions inactive (their q(z|x) stays at the prior)"
    )
    assert collapse_warning(3, 3, kl) is None


def test_active_units_on_a_model_with_dead_dimensions():
    torch.manual_seed(0)
    model = VAE(VAEConfig(shape=(1, 8, 8), latent_dim=5, hidden=(32,)))
    head = model.encoder[-1]
    with torch.no_grad():
        head.weight[[1, 3]] = 0  # the means of dims 1 and 3 no longer depend on x
        head.weight.mul_(20)
    images = torch.randint(0, 256, (300, 1, 8, 8), dtype=torch.uint8)
    stats = posterior_stats(model, images)
    n, activity = active_units(stats["means"])
    assert n == 3 and activity[1] < 1e-12 and activity[3] < 1e-12
    assert "2 of 5" in collapse_warning(n, 5, stats["kl_per_dim"])
    assert collapse_warning(0, 5, stats["kl_per_dim"]).startswith("posterior collapse")
