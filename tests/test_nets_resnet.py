"""The residual encoder/decoder (`--arch resnet`, vaelab.nets_resnet): stages that halve down to 4x4 (8x8 from 128
pixels), the decoder undoing odd sides exactly, widths doubling per stage, parameter counts, GroupNorm's
independence from the batch, and the VAE, config.json and the discriminator built on it."""

import pytest
import torch
from torch import nn

from vaelab.errors import ConfigError
from vaelab.models import VAE, VAEConfig
from vaelab.models.gan import Discriminator
from vaelab.nets_resnet import ResNetDecoder, ResNetEncoder, default_width, stage_sizes, stage_widths


@pytest.mark.parametrize(
    ("side", "sizes"),
    [
        (32, [32, 16, 8, 4]),
        (64, [64, 32, 16, 8, 4]),
        (128, [128, 64, 32, 16, 8]),
        (28, [28, 14, 7]),
        (8, [8, 4]),
        (5, [5]),
    ],
)
def test_stages_halve_down_to_4_or_8_pixels(side, sizes):
    assert [h for h, _ in stage_sizes(side, side)] == sizes


@pytest.mark.parametrize("side", [32, 64, 128])
def test_shapes_at_32_64_and_128_pixels(side):
    shape = (3, side, side)
    width = default_width(shape)
    encoder = ResNetEncoder(shape, width, 1, (32,), 20)
    decoder = ResNetDecoder((15, side, side), width, 1, (32,), 10)
    assert encoder(torch.rand(2, *shape)).shape == (2, 20)
    assert decoder(torch.randn(2, 10)).shape == (2, 15, side, side)
    last = stage_widths(width, len(stage_sizes(side, side)))[-1]
    assert decoder.start == (last, 8 if side == 128 else 4, 8 if side == 128 else 4)


def test_odd_and_rectangular_sides_are_undone_exactly():
    decoder = ResNetDecoder((1, 28, 20), 8, 1, (16,), 3)
    assert decoder(torch.randn(2, 3)).shape == (2, 1, 28, 20)
    assert ResNetEncoder((1, 28, 20), 8, 1, (16,), 6)(torch.rand(2, 1, 28, 20)).shape == (2, 6)


def test_parameter_count_of_a_small_encoder():
    """Counted by hand for 1x8x8, width 4, one block per stage, hidden 5, out 6: stem 1->4 (3x3: 36 + 4); stage 1
    block (2 GroupNorms of 4: 16, 2 convs 4->4: 2 x (144 + 4)); down 4->8 (4x4: 512 + 8); stage 2 block (2 x 16 +
    2 x (576 + 8)); final GroupNorm 16; dense 8*4*4 -> 5 (640 + 5) and 5 -> 6 (30 + 6)."""
    encoder = ResNetEncoder((1, 8, 8), 4, 1, (5,), 6)
    expected = 40 + (16 + 296) + 520 + (32 + 1168) + 16 + 645 + 36
    assert sum(p.numel() for p in encoder.parameters()) == expected


def test_blocks_start_as_the_identity_and_norms_ignore_the_batch():
    """Each residual block's last convolution is zero at init (the block is the identity); GroupNorm normalizes
    each image on its own, so an image's code is the same alone and in a batch of 64, in train mode too."""
    encoder = ResNetEncoder((3, 32, 32), 8, 2, (16,), 4)
    blocks = [m for m in encoder.modules() if type(m).__name__ == "ResidualBlock"]
    assert len(blocks) == 2 * 4
    x = torch.rand(1, blocks[2].residual[0].num_channels, 16, 16)
    assert torch.equal(blocks[2](x), x)
    images = torch.rand(64, 3, 32, 32)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in encoder.modules())
    assert torch.allclose(encoder(images)[:1], encoder(images[:1]), atol=1e-5)


def test_the_vae_chooses_width_and_blocks_from_the_image_and_saves_them():
    small = VAEConfig(shape=(3, 32, 32), arch="resnet", likelihood="logistic")
    large = VAEConfig(shape=(3, 128, 128), arch="resnet")
    assert (small.width, small.blocks, large.width) == (16, 1, 8)
    saved = small.to_dict()
    assert saved["width"] == 16 and saved["blocks"] == 1 and saved["mixtures"] == 5
    again = VAEConfig(**saved)
    assert again == small
    model = VAE(again)
    assert model.sample(2).shape == (2, 3, 32, 32) and model.decode(torch.randn(2, 10)).shape == (2, 45, 32, 32)
    with pytest.raises(ValueError, match="width, blocks: only for arch resnet"):
        VAEConfig(shape=(3, 32, 32), arch="conv", width=8)


def test_a_conv_or_mlp_config_json_reads_as_before():
    """The fields resnet and the logistic likelihood added are left out of an mlp or conv model's config.json,
    and a config.json written before they existed loads."""
    old = {"shape": [1, 28, 28], "arch": "conv", "latent_dim": 2, "hidden": [256], "channels": [32, 64]}
    config = VAEConfig(**old, activation="relu", likelihood="bernoulli", sigma=0.5, learn_sigma=False)
    assert not {"mixtures", "width", "blocks"} & set(config.to_dict())


def test_the_discriminator_is_built_on_the_resnet_encoder():
    disc = Discriminator(VAEConfig(shape=(3, 16, 16), arch="resnet", width=4))
    logits, features = disc(torch.rand(3, 3, 16, 16))
    assert logits.shape == (3,) and features.shape[0] == 3


def test_an_image_too_small_for_a_stage_is_refused():
    with pytest.raises(ConfigError, match="arch resnet: an image side of 3 is too small"):
        ResNetEncoder((1, 3, 3), 4, 1, (5,), 2)
