"""What a model kind declares, and the trainer interface the training loop drives.

A kind is one module that ends with `KIND = Kind(...)`: its name and help line, its own options (a
dataclass of `config.option` fields), how to build its generative model from config.json, its trainer, and
what it can do (an encoder, a likelihood, labels). Every consumer (config, CLI, loading, figures, evaluation,
report, compare) asks these questions instead of comparing names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from vaelab.config import TrainConfig
from vaelab.data import Dataset
from vaelab.device import World
from vaelab.errors import ConfigError
from vaelab.kinds.memory import Footprint, StepSizes, encoder_decoder, on_meta
from vaelab.models import VAE, VAEConfig


class Trainer(Protocol):
    """What the kind-agnostic loop (`training.loop`) needs of a kind's training.

    One step is `forward` (the batch's terms, checked for divergence by the loop before anything is
    updated) then `update` (backward passes and optimizer steps; returns terms decided there, such as
    gating). Terms are batch sums when `sums` is true, else batch means; the loop turns them into exact
    means per image over the epoch."""

    model: nn.Module  # the generative model: model.safetensors
    modules: dict[str, nn.Module]  # everything the training state holds
    optimizers: dict[str, torch.optim.Optimizer]
    sums: bool
    shown: dict[str, str]  # progress-bar label -> term

    def train_mode(self) -> None: ...
    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None, progress: float, noise: torch.Generator
    ) -> tuple[dict[str, torch.Tensor], Any]: ...
    def update(self, pending: Any) -> dict[str, torch.Tensor]: ...
    def test_terms(self, images: torch.Tensor, labels: torch.Tensor | None, epoch: int) -> dict[str, float]: ...
    def record(self, epoch: int) -> dict[str, Any]: ...
    def set_lr(self, config: TrainConfig) -> None: ...
    def extra_weights(self) -> dict[str, nn.Module]: ...


@dataclass(frozen=True)
class Kind:
    name: str
    help: str  # one line, in `vaelab train --help`
    title: str  # how a report names it
    options: type  # the kind's own options: a dataclass whose fields are made with `config.option`
    trainer: Callable[[TrainConfig, tuple[int, int, int], torch.device, World], Trainer]
    build: Callable[[VAEConfig], nn.Module]  # the generative model, from config.json's "model" section
    encoder: bool  # has q(z|x): reconstructions, interpolation between images, latent scatter, encoding
    likelihood: bool  # has p(x|z): ELBO, importance-sampled log-likelihood
    labels: bool = False  # conditional on the label: `model.sample(n, labels=...)`; needs labelled data
    discriminator: bool = False  # trained against a discriminator (sharper samples, the study's prose says why)
    lr_option: str = "lr"  # the option a divergence diagnosis suggests lowering
    bf16: bool = True  # its trainer autocasts to bfloat16 under --precision bf16 (auto picks bf16 only then)
    refuses: dict[str, str] = field(default_factory=dict)  # other kinds' options it refuses, with the reason
    check: Callable[[TrainConfig], None] | None = None  # rules across options
    # config.json's "model" section is this dataclass (a kind whose model needs more than VAEConfig subclasses it)
    model_config: type = VAEConfig
    # fit the config to the data set before the trainer is built, or raise a one-line error (a conditional
    # kind reads the number of classes here, and refuses data without labels)
    prepare: Callable[[TrainConfig, Dataset], None] | None = None
    # what one training step and one evaluation block hold in memory, for the pre-flight check (`kinds.memory`):
    # (config, image shape, step sizes) -> Footprint; a kind that declares none is sized as a plain VAE
    memory: Callable[[TrainConfig, tuple[int, int, int], StepSizes], Footprint] | None = None

    def footprint(self, config: TrainConfig, shape: tuple[int, int, int], sizes: StepSizes) -> Footprint:
        """This kind's memory at its peak for `config` on images of `shape` (its own networks, built on the meta
        device), or a plain VAE's for a kind that declares no `memory`."""
        if self.memory is not None:
            return self.memory(config, shape, sizes)
        return encoder_decoder(on_meta(lambda: VAE(networks(config, shape))), sizes)


def networks(config: TrainConfig, shape: tuple[int, int, int], **likelihood: Any) -> VAEConfig:
    """The encoder/decoder architecture of the shared options (+ a likelihood's settings)."""
    if config.arch != "resnet" and (config.width is not None or config.blocks is not None):
        raise ConfigError(f"width, blocks: only for --arch resnet; leave them out with --arch {config.arch}")
    return VAEConfig(
        shape=shape,
        arch=config.arch,
        latent_dim=config.latent_dim,
        hidden=config.hidden and tuple(config.hidden),
        channels=tuple(config.channels),
        kernel=config.kernel if config.arch == "conv" else None,
        width=config.width,
        blocks=config.blocks,
        activation=config.activation,
        **likelihood,
    )


def no_compile(kind_name: str, check: Callable[[TrainConfig], None] | None = None):
    """A `Kind.check` for kinds whose forward pass bypasses torch.compile: refuse `--compile` by name rather than
    ignore it (then run `check`, the kind's own rules). bf16 is declared by `Kind.bf16`."""

    def checked(config: TrainConfig) -> None:
        if config.compile:
            raise ConfigError(f"compile: not available for --kind {kind_name} yet; train it without --compile")
        if check:
            check(config)

    return checked
