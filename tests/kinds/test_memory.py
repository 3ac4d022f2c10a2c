"""vaelab.kinds.memory and each kind's `memory` (`Kind.footprint`): the kind's own networks counted on the meta device,
and what its step holds besides (IWAE's k samples, the VampPrior's pseudo-inputs and mixture, a discriminator and its
Adam, a CVAE's labels), checked against counts worked out by hand for the default MLP on 28 x 28 digits (issue 21,
item 4; issue 27, item 5)."""

import math
from fractions import Fraction

import pytest
import torch
from torch import nn

from vaelab import data, kinds
from vaelab.device import World
from vaelab.kinds.base import Kind, networks
from vaelab.kinds.memory import (
    ACTIVATION_BYTES,
    FLOAT_BYTES,
    PARAMETER_BYTES,
    Footprint,
    Layers,
    StepSizes,
    encoder_decoder,
    input_width,
    layers,
    on_meta,
    parameters,
)
from vaelab.models import VAE

SHAPE = (1, 28, 28)
PIXELS = 784
SIZES = StepSizes(batch=128, eval_batch=1000, eval_block=3 << 20)
# The default MLP (hidden 400, latent 10) by hand. Encoder: Linear 784 -> 400, ReLU, Linear 400 -> 20 (mean and
# log-variance); decoder: Linear 10 -> 400, ReLU, Linear 400 -> 784 (Flatten and Unflatten are views).
ENCODER = Layers(total=400 + 400 + 20, widest=400)
DECODER = Layers(total=400 + 400 + 784, widest=784)
VAE_PARAMETERS = (784 * 400 + 400) + (400 * 20 + 20) + (10 * 400 + 400) + (400 * 784 + 784)  # 640,804
# The discriminator: the encoder's architecture with leaky ReLUs and one logit.
DISCRIMINATOR = Layers(total=400 + 400 + 1, widest=400)
DISCRIMINATOR_PARAMETERS = (784 * 400 + 400) + (400 + 1)
ROW = DECODER.total + PIXELS + 4 * 10  # a decoded latent: the decoder's layers, the likelihood, 4 copies of z
EVAL_ROW = 2 * DECODER.widest + 2 * PIXELS  # without gradients: a layer's input and output, the likelihood
BLOCK = (SIZES.eval_block // DECODER.widest) * EVAL_ROW  # `vaelab eval`'s decoded IWAE block: 4,012 rows


def footprint(kind: str, **options) -> Footprint:
    config = kinds.make_config({"kind": kind, **options})
    return kinds.get(kind).footprint(config, SHAPE, SIZES)


def test_layers_counts_every_layer_output_of_one_input_but_views():
    net = on_meta(
        lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3), nn.Unflatten(1, (3, 1)))
    )
    assert layers(net, 3, 2, 2) == Layers(total=5 + 5 + 3, widest=5)
    conv = on_meta(lambda: nn.Sequential(nn.Conv2d(1, 4, 4, stride=2, padding=1), nn.ReLU()))
    assert layers(conv, 1, 28, 28) == Layers(total=2 * 4 * 14 * 14, widest=4 * 14 * 14)


def test_networks_are_built_on_the_meta_device_whatever_their_size():
    """A request far past any machine (10^10 parameters) is counted, not allocated."""
    config = kinds.make_config({"hidden": [60000, 60000, 60000]})
    model = on_meta(lambda: VAE(networks(config, SHAPE)))
    assert all(p.device.type == "meta" for p in model.parameters())
    assert parameters(model) == (784 * 60000 + 60000) + 2 * (60000 * 60000 + 60000) + (60000 * 20 + 20) + (
        10 * 60000 + 60000
    ) + 2 * (60000 * 60000 + 60000) + (60000 * 784 + 784)


def test_the_default_mlp_counted_by_hand():
    model = on_meta(lambda: VAE(networks(kinds.make_config({}), SHAPE)))
    assert layers(model.encoder, *SHAPE) == ENCODER
    assert layers(model.decoder, input_width(model.decoder)) == DECODER
    assert parameters(model) == VAE_PARAMETERS == 640_804


def test_the_vae_one_sample_per_image():
    f = footprint("vae")
    assert f == Footprint(VAE_PARAMETERS, 128 * (PIXELS + ENCODER.total + ROW), BLOCK)
    # the test split: 1,000 images of (input + two encoder layers) + their decoded rows, below the eval block
    assert 1000 * (PIXELS + 2 * ENCODER.widest) + 1000 * EVAL_ROW < BLOCK
    assert (f.train, f.evaluate) == (513_536, 12_581_632)
    assert f.train_bytes == PARAMETER_BYTES * 640_804 + ACTIVATION_BYTES * 513_536 == 22_050_800
    assert f.eval_bytes == PARAMETER_BYTES * 640_804 + FLOAT_BYTES * 12_581_632


def test_the_iwae_decodes_k_samples_per_image():
    """The worked example of the report: --k 10000 with a batch of 128 is 3.08 x 10^9 activation floats, 23 GiB."""
    f = footprint("iwae", k=5)
    assert f == Footprint(VAE_PARAMETERS, 128 * (PIXELS + ENCODER.total + 5 * ROW), BLOCK, ("k",))
    big = footprint("iwae", k=10_000)
    assert big.train == 128 * (PIXELS + ENCODER.total + 10_000 * ROW) == 3_082_445_312
    assert big.train_bytes == 28 * 640_804 + 8 * 3_082_445_312
    assert round(big.train_bytes / 2**30, 2) == 22.98
    # the test split's bound decodes eval_batch // k images k times: with k = 100, 10 images x 100 samples
    sizes = StepSizes(batch=128, eval_batch=1000, eval_block=1)  # no eval block: the test split alone
    config = kinds.make_config({"kind": "iwae", "k": 100})
    test = kinds.get("iwae").footprint(config, SHAPE, sizes).evaluate
    assert test == 10 * (PIXELS + 2 * ENCODER.widest) + 10 * 100 * EVAL_ROW


def test_the_vampprior_passes_its_pseudo_inputs_through_the_encoder_and_scores_a_mixture():
    k = 500
    f = footprint("vamp", pseudo_inputs=k)
    pseudo = k * (PIXELS + ENCODER.total)  # the K pseudo-inputs and the encoder's layers on them, every step
    prior = 4 * k  # log p(z): four [samples, K] tables per latent
    assert f.parameters == VAE_PARAMETERS + k * PIXELS  # the pseudo-inputs are parameters
    assert f.train == 128 * (PIXELS + ENCODER.total + ROW + prior) + pseudo == 1_571_536
    assert f.evaluate == (SIZES.eval_block // DECODER.widest) * (EVAL_ROW + prior) + pseudo
    assert f.lower == ("pseudo_inputs",)


def test_the_cvae_encodes_twice_and_decodes_a_latent_with_its_one_hot_label():
    f = footprint("cvae", classes=10)
    embedding = 10 * 400  # the label's embedding into the encoder's first hidden layer (no bias)
    wider = 10 * 400  # the decoder's first layer takes [z, one-hot]: 20 inputs instead of 10
    assert f.parameters == VAE_PARAMETERS + embedding + wider
    assert f.train == 128 * (PIXELS + 2 * ENCODER.total + (10 + 400) + ROW) == 670_976
    assert f.evaluate == BLOCK
    # before `prepare` has read the data's classes (0: the data set's), one class is sized
    assert footprint("cvae", classes=0).parameters == VAE_PARAMETERS + 1 * 400 + 1 * 400


def test_the_gan_is_sized_with_its_discriminator():
    """G's layers once, D's three times (real and generated in one pass, then generated again), and D's parameters
    with their Adam: a GAN needs more than its generator alone."""
    f = footprint("gan")
    assert f.parameters == (10 * 400 + 400) + (400 * 784 + 784) + DISCRIMINATOR_PARAMETERS == 633_185
    assert f.train == 128 * (10 + DECODER.total + 4 * PIXELS + 3 * DISCRIMINATOR.total) == 913_024
    assert f.evaluate == 1000 * (10 + 2 * DECODER.widest + 4 * PIXELS + 4 * DISCRIMINATOR.widest)
    generator_only = PARAMETER_BYTES * ((10 * 400 + 400) + (400 * 784 + 784))
    assert f.state_bytes - generator_only == PARAMETER_BYTES * DISCRIMINATOR_PARAMETERS


def test_the_vaegan_is_sized_with_its_discriminator_and_second_decode():
    f = footprint("vaegan")
    plain = footprint("vae")
    assert f.parameters == VAE_PARAMETERS + DISCRIMINATOR_PARAMETERS == 955_205
    extra = 128 * (10 + DECODER.total + 5 * PIXELS + 3 * DISCRIMINATOR.total)  # prior decode, sigmoids, D x 3
    assert f.train == plain.train + extra == 1_526_912
    assert f.evaluate == max(BLOCK, 1000 * (10 + 2 * DECODER.widest + 5 * PIXELS + 6 * DISCRIMINATOR.widest))
    # a deeper discriminator feature layer does not change the count; a wider network does
    assert footprint("vaegan", hidden=[400, 400]).parameters > f.parameters


def _small(kind: str) -> dict:
    return {
        "kind": kind,
        "hidden": [32],
        "channels": [4, 8],
        "latent_dim": 3,
        **({"classes": 10} if kind == "cvae" else {}),
    }


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("kind", kinds.names())
def test_every_kind_counts_the_parameters_its_trainer_trains(kind, arch):
    """The footprint's parameters are exactly those of the networks the kind's trainer builds and optimizes (the
    generative model, a discriminator, pseudo-inputs, a label embedding): the meta build is the kind's own model."""
    config = kinds.make_config({**_small(kind), "arch": arch})
    torch.manual_seed(0)
    trainer = kinds.get(kind).trainer(config, SHAPE, torch.device("cpu"), World())
    trained = {id(p): p for opt in trainer.optimizers.values() for group in opt.param_groups for p in group["params"]}
    assert kinds.get(kind).footprint(config, SHAPE, SIZES).parameters == sum(p.numel() for p in trained.values())


@pytest.mark.parametrize("kind", kinds.names())
def test_every_kind_declares_its_memory_and_grows_with_the_batch(kind):
    """Each registered kind declares its own `memory` (a new kind gets a plain VAE's until it does), and its step
    grows with the batch while its parameters do not: a step holds c + l * b + q * b^2 floats for a batch of b, a
    part whatever the batch, a part per image and (a β-TCVAE's table of every pair of the batch) a part per pair,
    none of them negative."""
    assert kinds.get(kind).memory is not None
    config = kinds.make_config(_small(kind))
    small, large, huge = (kinds.get(kind).footprint(config, SHAPE, StepSizes(b, 100, 3 << 20)) for b in (16, 32, 64))
    assert large.parameters == small.parameters == huge.parameters and large.evaluate == small.evaluate
    # the three coefficients, solved exactly from the three batches
    q = Fraction((huge.train - large.train) - 2 * (large.train - small.train), 1536)
    per_image = Fraction(large.train - small.train, 16) - q * 48
    c = small.train - per_image * 16 - q * 256
    assert q >= 0 and per_image > 0 and 0 <= c < small.train


def test_a_kind_that_declares_no_memory_is_sized_as_a_plain_vae():
    toy = Kind("toy-memory", "a toy", "Toy", kinds.get("vae").options, None, VAE, encoder=True, likelihood=True)
    config = kinds.make_config({})
    assert toy.footprint(config, SHAPE, SIZES) == encoder_decoder(on_meta(lambda: VAE(networks(config, SHAPE))), SIZES)


def test_a_conv_network_too_deep_for_the_images_is_refused_while_sizing():
    """The meta build runs the kind's own checks: what would fail at the first step fails before it (with either
    kernel: kernel 4 floors 28 to 1 after 5 halvings, kernel 3 rounds it up to 1 after 5; a 6th cannot halve)."""
    from vaelab.errors import ConfigError

    for kernel in (3, 4):
        with pytest.raises(ConfigError, match="too small for 6 stride-2 convolutions"):
            footprint("vae", arch="conv", channels=[8] * 6, kernel=kernel)


def test_real_digits_shapes_come_from_the_data():
    """The shape is the data's: colour images of another size are sized as they are."""
    ds = data.load("mnist-mini")
    assert ds.shape == SHAPE
    colour = kinds.get("vae").footprint(kinds.make_config({}), (3, 32, 32), SIZES)
    assert colour.parameters == VAE_PARAMETERS + 2 * (3 * 32 * 32 - PIXELS) * 400 + (3 * 32 * 32 - PIXELS)
    assert math.prod((3, 32, 32)) == 3072
