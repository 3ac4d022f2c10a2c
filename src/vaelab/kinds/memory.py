"""What one training step and one evaluation block of a kind hold in memory, estimated before anything is built.

Each kind declares `Kind.memory(config, shape, sizes) -> Footprint`; the pre-flight check (`pipeline.check_memory`)
sets the footprint against this machine's memory, so that a configuration that cannot fit (an IWAE's k samples per
image, a VampPrior's pseudo-inputs, a discriminator and its Adam) is refused in one line before training rather
than by the allocator mid-step.

The kind's own networks are built on the meta device (shapes, no memory: a 10^12-parameter request costs nothing)
and called on one meta input with a hook on every layer, so the count follows the architecture that `nets` really
builds (MLP or conv, any image shape, a CVAE's wider decoder input, a discriminator's feature layer) instead of
repeating its arithmetic. What a step keeps besides the layers' outputs (the input, the likelihood's per-pixel
terms, the latent samples, a mixture prior's table) is counted per kind, in the kind's module.

An estimate, not a measurement: it counts tensors (fp32), not the allocator's slack or torch's own ~0.5 GB.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from vaelab.models import likelihoods

# Bytes per trained parameter at the peak of a step: the fp32 weight, its gradient and Adam's two moments (16), and
# the CPU copy of the weight and both moments that each checkpoint makes before writing them (12).
PARAMETER_BYTES = 28
# Bytes per activation value of a training step: the fp32 value kept for the backward pass (4), and its gradient
# there (4; the backward frees each activation's gradient soon, but a chain of layers holds several at once).
ACTIVATION_BYTES = 8
FLOAT_BYTES = 4
# Floats per latent sample besides the networks': z, the reparameterization noise, and the terms of log q(z|x).
LATENT_COPIES = 4
# Floats per (latent sample, mixture component) of a mixture prior's log-density (`vamp.mixture_log_prob`): the
# squared-distance matrix, its two products and the log-components, each [samples, K].
MIXTURE_FLOATS = 4
# Layers whose output is a view of their input: no memory of their own.
VIEWS = (nn.Flatten, nn.Unflatten, nn.Identity)


@dataclass(frozen=True)
class StepSizes:
    """What a step is sized for, decided by the caller from the options and the data set."""

    batch: int  # images in one process's training step
    eval_batch: int  # images in one batch of the test split's evaluation
    eval_block: int  # floats `vaelab eval` allows the widest activation of a decoded IWAE block (its BLOCK_FLOATS)


@dataclass(frozen=True)
class Layers:
    """The floats one input makes a network's layers output: all of them (`total`, what a training step keeps for
    the backward pass) and the widest layer's (`widest`: an evaluation without gradients holds about two at once)."""

    total: int
    widest: int


@dataclass(frozen=True)
class Footprint:
    """A kind's memory at its peak: parameters, and activation floats of a training step and of an evaluation block.

    `lower` names the kind's own options that scale the activations (IWAE's k), for the refusal's advice."""

    parameters: int  # every trained network's parameters
    train: int  # activation floats of one training step (the whole batch)
    evaluate: int  # floats held at once by the largest evaluation block (no gradients)
    lower: tuple[str, ...] = ()

    @property
    def state_bytes(self) -> int:
        """Weights, gradients, Adam's moments and the checkpoint's copy of them."""
        return PARAMETER_BYTES * self.parameters

    @property
    def train_bytes(self) -> int:
        return self.state_bytes + ACTIVATION_BYTES * self.train

    @property
    def eval_bytes(self) -> int:
        """The test split is evaluated inside training, with the optimizer's state still held."""
        return self.state_bytes + FLOAT_BYTES * self.evaluate


def on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """The module `build()` makes, on the meta device: shapes without memory."""
    with torch.device("meta"):
        return build()


def parameters(*modules: nn.Module) -> int:
    return sum(p.numel() for module in modules for p in module.parameters())


def layers(module: nn.Module, *shape: int) -> Layers:
    """`module` (on the meta device) called on one meta input of `shape`, with every layer's output counted
    (views such as Flatten are not: they share their input's memory)."""
    total, widest = 0, 0

    def record(layer: nn.Module, inputs, output) -> None:
        nonlocal total, widest
        if isinstance(output, torch.Tensor) and not isinstance(layer, VIEWS):
            total += output.numel()
            widest = max(widest, output.numel())

    leaves = [m for m in module.modules() if not list(m.children())]
    hooks = [leaf.register_forward_hook(record) for leaf in leaves]
    try:
        with torch.no_grad():
            module(torch.zeros(1, *shape, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return Layers(total, widest)


def input_width(decoder: nn.Module) -> int:
    """The width of the vector a decoder takes (the latent, plus a one-hot label for a conditional decoder)."""
    return next(m for m in decoder.modules() if isinstance(m, nn.Linear)).in_features


def encoder_decoder(
    model: nn.Module,
    sizes: StepSizes,
    *,
    samples: int = 1,
    encodes: int = 1,
    per_image: int = 0,
    prior: int = 0,
    per_step: int = 0,
    lower: tuple[str, ...] = (),
) -> Footprint:
    """The footprint of a kind with an encoder and a decoder (`model`, a VAE built on the meta device).

    A training step keeps, per image: the input, the encoder's layers (`encodes` passes) and `per_image` floats;
    per decoded latent (`samples` per image): the decoder's layers, the likelihood's per-pixel term, the latent's
    copies and `prior` floats of log p(z); and `per_step` floats whatever the batch (a learned prior's inputs).
    Evaluation: the larger of a test-split batch (the k-sample bound decodes `eval_batch // samples` images
    `samples` times) and `vaelab eval`'s decoded IWAE block, plus `per_step` (the prior, evaluated alongside)."""
    pixels = math.prod(model.config.shape)
    # the likelihood's per-pixel term: its temporaries per decoder output value (a mixture keeps several)
    term = math.prod(model.config.output_shape) * likelihoods.get(model.config.likelihood).temporaries
    enc = layers(model.encoder, *model.config.shape)
    dec = layers(model.decoder, input_width(model.decoder))
    row = dec.total + term + LATENT_COPIES * model.latent_dim + prior
    train = sizes.batch * (pixels + encodes * enc.total + per_image + samples * row) + per_step
    eval_row = 2 * dec.widest + pixels + term + prior  # no gradients: a layer's input and output, the likelihood
    images = max(1, sizes.eval_batch // samples)
    test = images * (pixels + 2 * enc.widest) + images * samples * eval_row
    block = max(1, sizes.eval_block // dec.widest) * eval_row
    return Footprint(parameters(model), train, max(test, block) + per_step, lower)
