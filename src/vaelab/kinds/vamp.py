"""The VampPrior (Tomczak & Welling 2018): a VAE whose prior is learned, the mixture of the posteriors of K learned
pseudo-inputs u_k (eq. 9),

    p(z) = (1/K) sum_k q(z | u_k),

so the prior can follow the aggregate posterior instead of forcing the encoder to fill N(0, I). The KL term has
no closed form any more: it is the Monte-Carlo estimate log q(z|x) - log p(z) at the z drawn for the
reconstruction (eq. 3 of the paper with one sample), logged as `kl`. Sampling, the IWAE log-likelihood, the
sample grids and the explorer draw from, and score with, the learned prior (`VampVAE.log_prior` / `sample_prior`).

Pseudo-inputs are images `[K, C, H, W]` kept in [0, 1] by a hard tanh, as in the paper (sec. 3.2, with the
identity-input layer replaced by free parameters, which is the same function class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vaelab.config import TrainConfig, option
from vaelab.kinds.base import Kind, no_compile
from vaelab.kinds.memory import MIXTURE_FLOATS, Footprint, StepSizes, encoder_decoder, layers, on_meta
from vaelab.kinds.vae import VAEOptions, VAETrainer, check, vae_networks
from vaelab.losses import binarize, log_likelihood
from vaelab.models import VAE, DiagonalGaussian, VAEConfig

LOG_2PI = math.log(2 * math.pi)


@dataclass
class VampConfig(VAEConfig):
    pseudo_inputs: int = 500  # K, the number of mixture components of the prior


@dataclass
class VampOptions(VAEOptions):
    pseudo_inputs: int = option(
        500, "VampPrior: number of learned pseudo-inputs K (components of the prior)", min=1, max=100_000
    )


def mixture_log_prob(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k N(z; means_k, diag(exp(logvars_k))): `z` `[..., D]`, `means`/`logvars` `[K, D]` -> `[...]`.

    The squared distances are expanded as a matrix product, so memory is `[..., K]`, not `[..., K, D]`."""
    precision = torch.exp(-logvars)  # [K, D]
    flat = z.reshape(-1, z.shape[-1])  # [M, D]
    # sum_d (z_d - m_kd)^2 p_kd = z^2 . p_k - 2 z . (m_k p_k) + sum_d m_kd^2 p_kd
    quad = flat.pow(2) @ precision.T - 2 * flat @ (means * precision).T + (means.pow(2) * precision).sum(1)
    log_norm = -0.5 * (logvars.sum(1) + z.shape[-1] * LOG_2PI)  # [K]
    log_components = log_norm - 0.5 * quad  # [M, K]
    return (torch.logsumexp(log_components, dim=1) - math.log(means.shape[0])).view(z.shape[:-1])


def monte_carlo_kl(
    posterior: DiagonalGaussian, log_prior, samples: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(q(z|x) || p(z)) per image estimated with `samples` draws of z ~ q: (mean `[N]`, standard error `[N]`)."""
    eps = torch.randn((samples, *posterior.mean.shape), generator=generator, device=posterior.mean.device)
    z = posterior.mean + posterior.std * eps
    values = posterior.log_prob(z) - log_prior(z)  # [S, N]
    return values.mean(0), values.std(0) / math.sqrt(samples)


class VampPosterior(DiagonalGaussian):
    """q(z|x) whose `kl()` is the Monte-Carlo KL against the VampPrior at the last z drawn from it (the one the
    reconstruction term used), so the ELBO of `losses.vae_terms` and `training.split` is the paper's estimate.

    `kl_per_dim` stays the closed-form KL to N(0, I) per dimension: a mixture prior has no per-dimension KL, and
    the figure of KL per dimension only uses it to show which dimensions carry information."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor, log_prior):
        super().__init__(mean, logvar)
        self.log_prior, self.last_z = log_prior, None

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        self.last_z = super().sample(generator)
        return self.last_z

    def kl(self) -> torch.Tensor:
        z = self.last_z if self.last_z is not None else self.sample()
        return self.log_prob(z) - self.log_prior(z)


class VampVAE(VAE):
    """A VAE with the VampPrior: the same encoder and decoder, plus K pseudo-inputs."""

    def __init__(self, config: VampConfig):
        super().__init__(config)
        c, h, w = config.shape
        # initialised as faint random images, as the paper's N(0.05, 0.01) on binary MNIST does
        self.pseudo = nn.Parameter(0.05 + 0.01 * torch.randn(config.pseudo_inputs, c, h, w))

    def pseudo_inputs(self) -> torch.Tensor:
        return F.hardtanh(self.pseudo, 0.0, 1.0)

    def prior_components(self) -> DiagonalGaussian:
        """q(z | u_k) for the K pseudo-inputs: means and log-variances `[K, D]`."""
        return VAE.encode(self, self.pseudo_inputs())

    def encode(self, x: torch.Tensor) -> VampPosterior:
        q = super().encode(x)
        return VampPosterior(q.mean, q.logvar, self.log_prior)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) of the VampPrior: `[..., D]` -> `[...]`."""
        components = self.prior_components()
        return mixture_log_prob(z, components.mean.to(z.dtype), components.logvar.to(z.dtype))

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ p(z): a pseudo-input chosen uniformly, then z ~ q(z | u_k). Drawn with `generator` (on its device)."""
        device = generator.device if generator is not None else torch.device("cpu")
        k = torch.randint(self.config.pseudo_inputs, (n,), generator=generator, device=device)
        eps = torch.randn(n, self.latent_dim, generator=generator, device=device)
        model_device = next(self.parameters()).device
        components = self.prior_components()
        k, eps = k.to(model_device), eps.to(model_device)
        return components.mean[k] + components.std[k] * eps

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
        """Images decoded from z ~ p(z), the learned prior (or from the given `z`), in [0, 1]."""
        if z is None:
            z = self.sample_prior(n, generator)
        return super().sample(n, z=z)


def build(config: VAEConfig) -> VampVAE:
    return VampVAE(config if isinstance(config, VampConfig) else VampConfig(**config.to_dict()))


def memory(config: TrainConfig, shape: tuple[int, int, int], sizes: StepSizes) -> Footprint:
    """Every step passes the K pseudo-inputs through the encoder (with gradients: `prior_components`), and log p(z)
    of each latent is a mixture over the K components (`mixture_log_prob`: [batch, K] tables)."""
    k = config.options.pseudo_inputs
    model = on_meta(lambda: VampVAE(VampConfig(**vae_networks(config, shape).to_dict(), pseudo_inputs=k)))
    pseudo = k * (math.prod(shape) + layers(model.encoder, *shape).total)
    return encoder_decoder(model, sizes, prior=MIXTURE_FLOATS * k, per_step=pseudo, lower=("pseudo_inputs",))


class VampTrainer(VAETrainer):
    """One Adam over the encoder, decoder and pseudo-inputs; loss = recon + beta * (log q(z|x) - log p(z))."""

    averages_by_hand = True  # encode, decode and the prior are called separately

    def build(self, config: TrainConfig, shape: tuple[int, int, int]) -> VampVAE:
        networks = vae_networks(config, shape)
        return VampVAE(VampConfig(**networks.to_dict(), pseudo_inputs=config.options.pseudo_inputs))

    def forward(self, x, y, progress: float, noise: torch.Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        from vaelab.losses import kl_weight

        o = self.options
        beta = kl_weight(o.beta, progress, o.warmup_epochs)
        if o.binarize:
            x = binarize(x, noise)
        posterior = self.model.encode(x)
        z = posterior.sample(noise)
        recon = -log_likelihood(self.model.likelihood, self.model.decode(z), x, self.model.log_sigma).sum()
        kl = (posterior.log_prob(z) - self.model.log_prior(z)).sum()  # Monte-Carlo KL, one sample per image
        loss_sum = recon + beta * kl
        return {"loss": loss_sum, "recon": recon, "kl": kl}, loss_sum / x.shape[0]

    def record(self, epoch: int) -> dict[str, Any]:
        return {**super().record(epoch), "pseudo_inputs": self.options.pseudo_inputs}


KIND = Kind(
    name="vamp",
    help="a VAE with the VampPrior (Tomczak & Welling 2018): a learned prior, the mixture of the posteriors of --pseudo-inputs learned images",
    title="VampPrior VAE",
    options=VampOptions,
    trainer=VampTrainer,
    build=build,
    encoder=True,
    likelihood=True,
    bf16=False,  # its trainer has no autocast
    check=no_compile("vamp", check),
    model_config=VampConfig,
    memory=memory,
)
