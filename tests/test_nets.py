"""The encoder and decoder stacks (vaelab.nets)."""

import torch


def test_conv_nets_compute_the_same_in_channels_last_and_hand_back_contiguous_images():
    """The conv stacks run on channels-last activations (oneDNN's fast layout): the numbers must be those of
    the contiguous layout, and a decoded RGB batch must come back contiguous (callers `.view` it)."""
    from vaelab.models import VAE, VAEConfig

    torch.manual_seed(0)
    model = VAE(VAEConfig(shape=(3, 12, 12), arch="conv", latent_dim=4, channels=(8, 16), hidden=(32,)))
    x, z = torch.rand(5, 3, 12, 12), torch.randn(5, 4)
    fast_mean, fast_images = model.encode(x).mean, model.decode(z)
    assert fast_images.is_contiguous() and fast_images.shape == (5, 3, 12, 12)
    model.encoder.memory_format = model.decoder.memory_format = torch.contiguous_format
    torch.testing.assert_close(fast_mean, model.encode(x).mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast_images, model.decode(z), rtol=1e-5, atol=1e-5)
