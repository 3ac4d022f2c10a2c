"""Every registered likelihood (`vaelab.models.likelihoods.LIKELIHOODS`) through what its consumers ask of it: the
decoder's output channels, per-image log-likelihoods (also of IWAE's `[k, B, ...]` outputs), the fast batch sum,
the image shown and an image drawn."""

import pytest
import torch

from vaelab.config import LIKELIHOODS as OPTION_CHOICES
from vaelab.losses import batch_sums, vae_terms
from vaelab.models import VAE, VAEConfig
from vaelab.models.likelihoods import LIKELIHOODS, get


def test_the_command_line_offers_every_registered_likelihood():
    assert tuple(LIKELIHOODS) == OPTION_CHOICES
    with pytest.raises(ValueError, match="likelihood: must be one of"):
        get("poisson")


@pytest.mark.parametrize("name", list(LIKELIHOODS))
def test_a_likelihood_through_the_vae(name):
    chosen = get(name)
    config = VAEConfig(shape=(3, 6, 5), likelihood=name, mixtures=2 if chosen.mixtures else 0, hidden=(8,))
    model = VAE(config)
    assert config.output_shape == (3 * chosen.outputs(config.mixtures), 6, 5)
    x = torch.randint(0, 256, (4, 3, 6, 5)).float() / 255
    out = model(x, torch.Generator().manual_seed(0))
    assert out.output.shape == (4, *config.output_shape)
    per_image = chosen.log_prob(out.output, x, model.log_sigma)
    assert per_image.shape == (4,) and torch.isfinite(per_image).all()
    stacked = torch.stack([out.output, out.output])  # IWAE's [k, B, ...]
    assert torch.allclose(chosen.log_prob(stacked, x, model.log_sigma), per_image.expand(2, 4))
    sums = batch_sums(name, out.output, x, out.posterior, model.log_sigma)
    terms = vae_terms(name, out.output, x, out.posterior, model.log_sigma)
    assert sums["recon"].item() == pytest.approx(-per_image.sum().item(), rel=1e-5)
    assert torch.allclose(terms["recon"], -per_image)
    assert ("sq_error" in sums) == ("sq_error" in terms) == chosen.squared_error
    for image in (model.to_image(out.output), model.draw(out.output, torch.Generator().manual_seed(1))):
        assert image.shape == x.shape and image.min() >= 0 and image.max() <= 1
    assert model.sample(3).shape == (3, 3, 6, 5)
    note = chosen.note(False)
    assert note is None or isinstance(note, str)


def test_only_a_mixture_likelihood_takes_a_mixture_count():
    with pytest.raises(ValueError, match="mixtures: the bernoulli likelihood has no mixture"):
        VAEConfig(shape=(1, 8, 8), likelihood="bernoulli", mixtures=3)
    with pytest.raises(ValueError, match="mixtures"):
        VAEConfig(shape=(1, 8, 8), likelihood="logistic", mixtures=33)
    assert VAEConfig(shape=(1, 8, 8), likelihood="logistic").mixtures == get("logistic").default_mixtures
