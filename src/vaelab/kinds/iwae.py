"""The importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2016): the VAE's networks trained on the
k-sample bound (eq. 8) instead of the ELBO,

    L_k(x) = log (1/k) sum_i w_i,   w_i = p(x | z_i) p(z_i) / q(z_i | x),   z_i ~ q(z | x)  (reparameterized)

L_1 is the ELBO's one-sample estimate, and E[L_k] grows with k towards log p(x) (their theorem 1): a tighter
bound lets the encoder's posterior be less exact without the decoder paying for it. Logged per epoch: `bound`
(L_k, nats), `ess` (the effective sample size (sum w)^2 / sum w^2 of the k normalized weights, between 1 and k:
how many samples carry the bound), and the ELBO's `recon` and `kl` for comparison with a VAE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from vaelab.config import TrainConfig, option
from vaelab.device import World
from vaelab.kinds.base import Kind, no_compile
from vaelab.kinds.memory import Footprint, StepSizes, encoder_decoder, on_meta
from vaelab.kinds.vae import VAEOptions, VAETrainer, check, vae_networks
from vaelab.losses import binarize, log_likelihood
from vaelab.models import VAE, DiagonalGaussian
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.training.split import split_means, split_terms


@dataclass
class IWAEOptions:
    """The VAE's options but the KL weight (the bound has none), and k."""

    likelihood: str = VAEOptions.__dataclass_fields__["likelihood"]
    mixtures: int | None = VAEOptions.__dataclass_fields__["mixtures"]
    sigma: float = VAEOptions.__dataclass_fields__["sigma"]
    learn_sigma: bool = VAEOptions.__dataclass_fields__["learn_sigma"]
    binarize: bool = VAEOptions.__dataclass_fields__["binarize"]
    lr: float = VAEOptions.__dataclass_fields__["lr"]
    adam_betas: list[float] = VAEOptions.__dataclass_fields__["adam_betas"]
    k: int = option(
        5, "IWAE: importance samples per image in the training bound (k = 1: the VAE's ELBO)", min=1, max=10_000
    )


def iwae_terms(
    model: VAE, x: torch.Tensor, k: int, generator: torch.Generator | None, posterior: DiagonalGaussian | None = None
) -> dict[str, torch.Tensor]:
    """Per-image `[B]` terms of the k-sample bound on images `x` `[B, C, H, W]`: `bound` (L_k), `ess`, and the
    k samples' mean `recon` (-log p(x|z)) and `kl` (log q(z|x) - log p(z), a Monte-Carlo KL).

    The log-weights are those of `evaluate.iwae` (the evaluation's estimator) with gradients kept."""
    posterior = posterior or model.encode(x)
    z = _sample_k(posterior, k, generator)  # [k, B, D]
    output = model.decode(z.reshape(-1, z.shape[-1])).float()
    output = output.view(k, x.shape[0], *output.shape[1:])  # [k, B, C * outputs, H, W]
    log_px = log_likelihood(model.likelihood, output, x, model.log_sigma)  # [k, B]
    kl = posterior.log_prob(z) - model.log_prior(z)  # [k, B]
    log_w = log_px - kl
    bound = torch.logsumexp(log_w, dim=0) - math.log(k)
    normalized = torch.softmax(log_w.detach(), dim=0)
    ess = 1.0 / normalized.pow(2).sum(0)
    return {"bound": bound, "ess": ess, "recon": -log_px.mean(0), "kl": kl.mean(0)}


def _sample_k(posterior: DiagonalGaussian, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """`[k, B, D]` reparameterized draws from q(z|x)."""
    mean = posterior.mean
    eps = torch.randn((k, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + posterior.std * eps


def split_bound(
    model: VAE,
    images: torch.Tensor,
    k: int,
    *,
    binarize_images: bool,
    seed: int,
    batch_size: int,
    device: torch.device,
    world: World,
) -> dict[str, float]:
    """Means per image over a split of `bound` and `ess` (seeded, like `split_terms`)."""

    def terms_of(x: torch.Tensor, y, generator: torch.Generator) -> dict[str, torch.Tensor]:
        terms = iwae_terms(model, x, k, generator)
        return {"bound": terms["bound"], "ess": terms["ess"]}

    return split_means(
        model,
        images,
        terms_of,
        binarize=binarize_images,
        seed=seed,
        batch_size=max(1, batch_size // k),
        device=device,
        world=world,
    )


def memory(config: TrainConfig, shape: tuple[int, int, int], sizes: StepSizes) -> Footprint:
    """A step decodes k latent samples per image, each with its likelihood terms (`iwae_terms`: [k, B, C, H, W]);
    the test split's bound decodes `eval_batch // k` images k times (`split_bound`)."""
    model = on_meta(lambda: VAE(vae_networks(config, shape)))
    return encoder_decoder(model, sizes, samples=config.options.k, lower=("k",))


class IWAETrainer(VAETrainer):
    """The VAE's networks and Adam; the loss of a batch is -L_k summed over it / its size."""

    shown = {"-bound": "loss", "ess": "ess"}

    averages_by_hand = True  # encode and decode are called separately

    def forward(self, x, y, progress: float, noise: torch.Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        o = self.options
        if o.binarize:
            x = binarize(x, noise)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
            posterior = self.model.encode(x)
        posterior = DiagonalGaussian(posterior.mean.float(), posterior.logvar.float())
        terms = iwae_terms(self.model, x, o.k, noise, posterior)
        loss_sum = -terms["bound"].sum()
        sums = {name: value.sum() for name, value in terms.items()}
        return {"loss": loss_sum, **sums}, loss_sum / x.shape[0]

    def test_terms(self, images: torch.Tensor, labels, epoch: int) -> dict[str, float]:
        o, cfg = self.options, self.config
        seed = cfg.seed + EVAL_SEED_OFFSET
        terms = split_terms(
            self.model,
            images,
            binarize=o.binarize,
            seed=seed,
            batch_size=cfg.eval_batch_size,
            device=self.device,
            world=self.world,
        )
        bound = split_bound(
            self.model,
            images,
            o.k,
            binarize_images=o.binarize,
            seed=seed,
            batch_size=cfg.eval_batch_size,
            device=self.device,
            world=self.world,
        )
        return {"loss": -bound["bound"], "recon": terms["recon"], "kl": terms["kl"], **bound}

    def record(self, epoch: int) -> dict[str, Any]:
        return {"k": self.options.k, "lr": self.optimizers["adam"].param_groups[0]["lr"]}


KIND = Kind(
    name="iwae",
    help="an importance-weighted autoencoder (Burda et al. 2016): the VAE's networks trained on the k-sample bound (--k)",
    title="IWAE",
    options=IWAEOptions,
    trainer=IWAETrainer,
    build=VAE,
    encoder=True,
    likelihood=True,
    refuses={"beta": "the IWAE bound has no KL weight", "warmup_epochs": "the IWAE bound has no KL weight"},
    check=no_compile("iwae", check),
    memory=memory,  # bf16 yes; its forward bypasses torch.compile
)
