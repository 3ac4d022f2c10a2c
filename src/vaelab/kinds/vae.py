"""The variational autoencoder (Kingma & Welling 2014): encoder -> q(z|x), reparameterized z, decoder -> p(x|z),
trained on the negative ELBO, recon + beta * KL (beta-VAE, Higgins et al. 2017; beta = 1 is the ELBO).

The smallest complete kind: copy this file to add one (see CONTRIBUTING.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from vaelab.config import LIKELIHOODS, TrainConfig, option
from vaelab.device import World
from vaelab.errors import ConfigError
from vaelab.kinds.base import Kind, networks
from vaelab.kinds.memory import Footprint, StepSizes, encoder_decoder, on_meta
from vaelab.losses import batch_sums, binarize, kl_weight
from vaelab.models import VAE, DiagonalGaussian, VAEConfig, likelihoods
from vaelab.models.likelihoods.logistic import MAX_MIXTURES
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.training.common import average_gradients, fused_adam, set_lr, wrap
from vaelab.training.split import split_terms


@dataclass
class KLWeight:
    """The weight of the KL term, shared with the kinds built on the VAE."""

    beta: float = option(
        1.0, "weight of the KL term (default 1: the ELBO); betatc: of the total correlation only (default 6)", min=0
    )
    warmup_epochs: float = option(0.0, "ramp the KL weight linearly from 0 over this many epochs", min=0)


@dataclass
class VAEOptions(KLWeight):
    likelihood: str = option(
        "bernoulli",
        "reconstruction likelihood: bernoulli (cross-entropy), gaussian (squared error) or logistic (a mixture of "
        "discretized logistics: a true likelihood of 8-bit pixels, for colour images); old name --recon",
        choices=LIKELIHOODS,
    )
    mixtures: int | None = option(
        None, "logistic likelihood: mixture components per pixel and channel (default 5)", min=1, max=MAX_MIXTURES
    )
    sigma: float = option(
        math.sqrt(0.5),
        "Gaussian likelihood's fixed standard deviation (default sqrt(1/2): -log p = ||x - x_hat||^2 + const)",
        above=0,
    )
    learn_sigma: bool = option(False, "learn the Gaussian likelihood's standard deviation")
    binarize: bool = option(False, "dynamic binarization of the inputs, resampled every batch")
    lr: float = option(1e-3, "Adam learning rate", above=0, resumable=True)
    adam_betas: list[float] = option([0.9, 0.999], "Adam betas, e.g. 0.9,0.999", length=2, min=0, below=1)


def check(config: TrainConfig) -> None:
    o = config.options
    if o.binarize and o.likelihood != "bernoulli":
        raise ConfigError("binarize: only makes sense with likelihood = bernoulli")
    if o.learn_sigma and o.likelihood != "gaussian":
        raise ConfigError("learn_sigma: only makes sense with likelihood = gaussian")
    mixtures = getattr(o, "mixtures", None)  # a kind that copies VAEOptions' fields one by one may not have it
    if mixtures is not None and not likelihoods.get(o.likelihood).mixtures:
        mixed = ", ".join(name for name, item in likelihoods.LIKELIHOODS.items() if item.mixtures)
        raise ConfigError(f"mixtures: only for --likelihood {mixed}; leave it out with --likelihood {o.likelihood}")


def vae_networks(config: TrainConfig, shape: tuple[int, int, int]) -> VAEConfig:
    o = config.options
    return networks(
        config,
        shape,
        likelihood=o.likelihood,
        sigma=o.sigma,
        learn_sigma=o.learn_sigma,
        mixtures=getattr(o, "mixtures", None) or 0,
    )


def memory(config: TrainConfig, shape: tuple[int, int, int], sizes: StepSizes) -> Footprint:
    """One latent sample per image through the VAE's encoder and decoder (`kinds.memory.encoder_decoder`)."""
    return encoder_decoder(on_meta(lambda: VAE(vae_networks(config, shape))), sizes)


class VAETrainer:
    """One Adam over the whole VAE; the loss of a batch is (recon + beta * KL) summed over it / its size."""

    sums = True  # forward's terms are batch sums
    shown = {"loss": "loss"}
    # a subclass whose forward pass calls the model's parts separately cannot go through DistributedDataParallel:
    # its gradients are averaged across processes by hand in `update`
    averages_by_hand = False

    def __init__(self, config: TrainConfig, shape: tuple[int, int, int], device: torch.device, world: World):
        self.config, self.options, self.device, self.world = config, config.options, device, world
        self.model = self.build(config, shape).to(device)
        self.modules = {"vae": self.model}
        self.optimizers = {"adam": fused_adam(self.model, self.options.lr, self.options.adam_betas)}
        if not self.averages_by_hand:
            self.net = wrap(self.model, config.compile, device, world)  # what the forward pass goes through

    def build(self, config: TrainConfig, shape: tuple[int, int, int]) -> VAE:
        """The model this trainer trains (a subclass builds its own VAE)."""
        return VAE(vae_networks(config, shape))

    def train_mode(self) -> None:
        self.model.train()

    def forward(self, x, y, progress: float, noise: torch.Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        o = self.options
        beta = kl_weight(o.beta, progress, o.warmup_epochs)
        if o.binarize:
            x = binarize(x, noise)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
            out = self.net(x, noise)
        posterior = DiagonalGaussian(out.posterior.mean.float(), out.posterior.logvar.float())  # losses in fp32
        sums = batch_sums(self.model.likelihood, out.output.float(), x, posterior, self.model.log_sigma)
        loss_sum = sums["recon"] + beta * sums["kl"]
        return {"loss": loss_sum, **sums}, loss_sum / x.shape[0]

    def encode_sample_decode(self, x: torch.Tensor, noise: torch.Generator):
        """(posterior in fp32, z, decoder output in fp32) of images `x`, the encoder and decoder called separately
        (each under the bf16 autocast `--precision` asks for), for trainers that need z between them."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
            posterior = self.model.encode(x)
        posterior = DiagonalGaussian(posterior.mean.float(), posterior.logvar.float())
        z = posterior.sample(noise)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
            output = self.model.decode(z)
        return posterior, z, output.float()

    def update(self, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        optimizer = self.optimizers["adam"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.averages_by_hand:
            average_gradients(self.model, self.world)
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        optimizer.step()
        return {}

    def test_terms(self, images: torch.Tensor, labels, epoch: int) -> dict[str, float]:
        o, cfg = self.options, self.config
        return split_terms(
            self.model,
            images,
            beta=kl_weight(o.beta, epoch, o.warmup_epochs),
            binarize=o.binarize,
            seed=cfg.seed + EVAL_SEED_OFFSET,
            batch_size=cfg.eval_batch_size,
            device=self.device,
            world=self.world,
        )

    def record(self, epoch: int) -> dict[str, Any]:
        return {
            "beta": kl_weight(self.options.beta, epoch, self.options.warmup_epochs),
            "lr": self.optimizers["adam"].param_groups[0]["lr"],
        }

    def set_lr(self, config: TrainConfig) -> None:
        set_lr(self.optimizers, config.options.lr)

    def extra_weights(self) -> dict[str, torch.nn.Module]:
        return {}


KIND = Kind(
    name="vae",
    help="a VAE (default): encoder -> q(z|x), reparameterization, decoder -> p(x|z), loss recon + beta * KL",
    title="VAE",
    options=VAEOptions,
    trainer=VAETrainer,
    build=VAE,
    encoder=True,
    likelihood=True,
    check=check,
    memory=memory,
)
