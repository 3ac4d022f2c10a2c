"""The GAN's networks (vaelab.models.gan): the generator's and the discriminator's shapes for both architectures, and a
discriminator that learns."""

import pytest
import torch

from vaelab import data
from vaelab.losses import (
    discriminator_loss,
)
from vaelab.models import VAEConfig
from vaelab.models.gan import Discriminator, Generator


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(512, 128)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_discriminator_and_generator_shapes(arch):
    config = VAEConfig(shape=(1, 28, 28), arch=arch, latent_dim=4)
    disc, gen = Discriminator(config), Generator(config)
    logits, features = disc(torch.rand(6, 1, 28, 28))
    assert logits.shape == (6,) and features.shape[0] == 6 and features.dim() == 2
    images = gen.sample(5)
    assert images.shape == (5, 1, 28, 28) and 0 <= images.min() and images.max() <= 1


def test_discriminator_beats_chance_on_real_against_noise(digits):
    """A few Adam steps are enough for D to tell real digits from uniform noise."""
    torch.manual_seed(0)
    disc = Discriminator(VAEConfig(shape=(1, 28, 28), hidden=(64,)))
    optimizer = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    images = data.to_float(data.load(digits).train.images)
    for step in range(30):
        real = images[step * 16 : step * 16 + 16]
        logits, _ = disc(torch.cat([real, torch.rand_like(real)]))
        loss = discriminator_loss(logits[:16], logits[16:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        real = images[480:512]
        logits, _ = disc(torch.cat([real, torch.rand_like(real)]))
    accuracy = ((logits[:32] > 0).float().mean() + (logits[32:] < 0).float().mean()) / 2
    assert accuracy > 0.9
