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


def test_conv_stacks_of_either_kernel_undo_any_side_exactly():
    """Kernel 3 (the default) rounds an odd side up where kernel 4 floors it; either way the decoder lands on the
    image's own side, odd or even, square or not, and each stride-2 convolution halves the side. Catches a wrong
    output padding (a 27x27 or 29x29 decoding of a 28x28 image) or padding of the kernel-3 stack."""
    from vaelab.nets import ConvDecoder, ConvEncoder, conv_sizes

    assert conv_sizes(28, 2, 3) == conv_sizes(28, 2, 4) == [28, 14, 7]
    assert conv_sizes(7, 2, 3) == [7, 4, 2] and conv_sizes(7, 2, 4) == [7, 3, 1]
    assert conv_sizes(28, 5, 3) == [28, 14, 7, 4, 2, 1]
    for kernel in (3, 4):
        for shape in [(1, 28, 28), (3, 31, 17), (1, 9, 9), (2, 8, 5)]:
            encoder = ConvEncoder(shape, (4, 8), (16,), 6, kernel=kernel)
            decoder = ConvDecoder(shape, (4, 8), (16,), 3, kernel=kernel)
            assert encoder(torch.rand(2, *shape)).shape == (2, 6)
            assert decoder(torch.randn(2, 3)).shape == (2, *shape), (kernel, shape)
            assert {m.kernel_size for m in encoder.modules() if isinstance(m, torch.nn.Conv2d)} == {(kernel, kernel)}


def test_conv_runs_saved_before_the_kernel_option_keep_kernel_4():
    """A conv run's config.json written before `kernel` existed has no such key, in its model section nor in its
    train section: both must read as kernel 4 (the only kernel then), or its weights would not load and its resume
    would build another network. New runs save their kernel; an MLP saves none (its config.json is unchanged)."""
    from vaelab import kinds
    from vaelab.models import VAEConfig

    old = VAEConfig(shape=(1, 28, 28), arch="conv")
    assert old.kernel == 4 and "kernel" not in old.to_dict()  # a resume compares the section with the saved one
    assert VAEConfig(shape=(1, 28, 28), arch="conv", kernel=3).to_dict()["kernel"] == 3
    assert kinds.config_from_saved({"kind": "vae", "arch": "conv"}).kernel == 4
    assert kinds.config_from_saved({"kind": "vae", "arch": "conv", "kernel": 3}).kernel == 3
    assert kinds.make_config({"arch": "conv"}).kernel == 3
    assert "kernel" not in VAEConfig(shape=(1, 28, 28), arch="mlp").to_dict()


def test_every_convolution_must_halve_a_side_of_at_least_2_with_either_kernel():
    """Kernel 3 would keep a side of 1 at 1 (ceil(1 / 2)): such a layer halves nothing, and its mirror, a bf16
    transposed convolution with an output side of 1, got non-finite weight gradients from oneDNN now and then (a
    6-layer kernel-3 stack on 28 px diverged at step 2 in bf16). Both kernels refuse it, and the message gives the
    smallest side that fits, checked against conv_sizes itself."""
    import pytest

    from vaelab.errors import ConfigError
    from vaelab.nets import conv_sizes

    for kernel in (3, 4):
        for depth in range(1, 7):
            smallest = next(s for s in range(1, 200) if _fits(s, depth, kernel))
            with pytest.raises(ConfigError, match=f"at least {smallest} with kernel {kernel}"):
                conv_sizes(smallest - 1, depth, kernel)
    with pytest.raises(ConfigError, match="too small for 6 stride-2 convolutions"):
        conv_sizes(28, 6, 3)


def _fits(side: int, depth: int, kernel: int) -> bool:
    from vaelab.errors import ConfigError
    from vaelab.nets import conv_sizes

    try:
        conv_sizes(side, depth, kernel)
    except ConfigError:
        return False
    return True
