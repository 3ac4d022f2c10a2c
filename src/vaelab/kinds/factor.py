"""FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising", Algorithm 2): a VAE whose loss adds gamma times the
total correlation KL(q(z) || prod_d q(z_d)), estimated by a discriminator D on latent samples,

    TC(z) ~ E_q(z)[log D(z) / (1 - D(z))],   D(z) = the probability that z comes from q(z)

(the density-ratio trick): D's logit is the estimate. D learns to tell samples of q(z) from samples of
prod_d q(z_d), drawn by permuting each latent dimension independently across a batch (`permute_dims`, their
Algorithm 1). As the paper draws a second batch for D, D takes the batch's halves: the first half's z against the
second half's z, permuted; the VAE's loss takes the whole batch.

- VAE (encoder and decoder, one Adam): recon + kl + gamma * D's mean logit on the batch's z.
- D (its own Adam, the paper's lr 1e-4 and betas 0.5, 0.9): binary cross-entropy, q(z) against the permuted z,
  on z detached from the encoder.
D is the paper's MLP (LeakyReLU 0.2) of `disc_depth` hidden layers of `disc_width` units; the paper's is 6 x 1000,
the default here 6 x 256 (a quarter of the width, for CPU training). gamma defaults to 35, within the paper's
range for dSprites (10 to 40). Logged: `loss`, `recon`, `kl` (recon + kl is the true -ELBO), `tc_estimate`,
`discriminator_loss`, `discriminator_accuracy`.
"""

from __future__ import annotations

from dataclasses import fields, make_dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vaelab.config import TrainConfig, option
from vaelab.device import World
from vaelab.kinds.base import Kind, no_compile
from vaelab.kinds.memory import Footprint, StepSizes, encoder_decoder, layers, on_meta, parameters
from vaelab.kinds.vae import KLWeight, VAEOptions, VAETrainer, check, vae_networks
from vaelab.losses import batch_sums, binarize, log_likelihood
from vaelab.models import VAE
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.training.common import average_gradients, fused_adam, set_lr
from vaelab.training.split import split_means

# The VAE's options but its KL weight and warm-up (the paper's VAE term is the ELBO; whatever likelihood options the
# VAE has, this kind has too), gamma, and D's network and Adam.
FactorOptions = make_dataclass(
    "FactorOptions",
    [
        *[(f.name, f.type, f) for f in fields(VAEOptions) if f.name not in {f.name for f in fields(KLWeight)}],
        (
            "gamma",
            "float",
            option(
                35.0,
                "weight: VAE-GAN's feature-space reconstruction in the decoder's loss (default 0.1); "
                "FactorVAE's total correlation (default 35)",
                min=0,
                max=10_000,
            ),
        ),
        (
            "disc_width",
            "int",
            option(
                256,
                "FactorVAE: units per hidden layer of the discriminator (paper 1000; default 256)",
                min=1,
                max=16_384,
            ),
        ),
        (
            "disc_depth",
            "int",
            option(6, "FactorVAE: hidden layers of the discriminator (paper and default 6)", min=1, max=32),
        ),
        (
            "disc_lr",
            "float",
            option(
                1e-4,
                "FactorVAE: the discriminator's Adam learning rate (paper and default 1e-4)",
                above=0,
                resumable=True,
            ),
        ),
        (
            "disc_betas",
            "list[float]",
            option(
                [0.5, 0.9],
                "FactorVAE: the discriminator's Adam betas (paper and default 0.5,0.9)",
                length=2,
                min=0,
                below=1,
            ),
        ),
    ],
)


class LatentDiscriminator(nn.Module):
    """D: `[B, D]` latents -> `[B]` logits log D(z) / (1 - D(z)) (positive: z looks like a sample of q(z))."""

    def __init__(self, latent_dim: int, width: int, depth: int):
        super().__init__()
        stack: list[nn.Module] = []
        for i in range(depth):
            stack += [nn.Linear(latent_dim if i == 0 else width, width), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*stack, nn.Linear(width, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(1)


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each latent dimension of `z` `[B, D]` shuffled across the batch by its own permutation (Kim & Mnih,
    Algorithm 1): samples of prod_d q(z_d) when z's rows are samples of q(z)."""
    b, d = z.shape
    keys = torch.rand(b, d, generator=generator, device=z.device)
    return torch.gather(z, 0, keys.argsort(dim=0))  # argsort of iid keys: a uniform permutation per column


def discriminator_terms(disc: nn.Module, z: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """D's loss and accuracy on a batch of z (detached): its first half against its second half permuted.
    Batch means; zeros for a batch of one image (no pair to compare)."""
    half = z.shape[0] // 2
    if half == 0:
        zero = z.new_zeros(())
        return {"discriminator_loss": zero, "discriminator_accuracy": zero}
    real = disc(z[:half])
    shuffled = disc(permute_dims(z[half:], generator))
    loss = 0.5 * (F.softplus(-real).mean() + F.softplus(shuffled).mean())
    correct = torch.cat([real > 0, shuffled < 0]).float().mean()
    return {"discriminator_loss": loss, "discriminator_accuracy": correct}


def memory(config: TrainConfig, shape: tuple[int, int, int], sizes: StepSizes) -> Footprint:
    """A VAE's step (`encoder_decoder`), plus D's layers three times per image (on z for the VAE's loss, on the
    halves for its own) and D's weights and Adam."""
    o = config.options
    model = on_meta(lambda: VAE(vae_networks(config, shape)))
    disc = on_meta(lambda: LatentDiscriminator(config.latent_dim, o.disc_width, o.disc_depth))
    plain = encoder_decoder(model, sizes)
    d = layers(disc, config.latent_dim)
    return Footprint(
        parameters(model, disc),
        plain.train + sizes.batch * 3 * d.total,
        plain.evaluate + sizes.eval_batch * 2 * d.widest,
    )


class FactorTrainer(VAETrainer):
    """The VAE with its Adam, and D with its own."""

    shown = {"loss": "loss", "tc": "tc_estimate", "d_acc": "discriminator_accuracy"}
    averages_by_hand = True  # encode, decode and D are called separately

    def __init__(self, config: TrainConfig, shape: tuple[int, int, int], device: torch.device, world: World):
        super().__init__(config, shape, device, world)
        o = self.options
        self.disc = LatentDiscriminator(config.latent_dim, o.disc_width, o.disc_depth).to(device)
        self.modules["discriminator"] = self.disc
        self.optimizers["discriminator"] = fused_adam(self.disc, o.disc_lr, o.disc_betas)

    def train_mode(self) -> None:
        self.model.train()
        self.disc.train()

    def _pass(self, x: torch.Tensor, noise: torch.Generator) -> dict[str, torch.Tensor]:
        """Per-image VAE terms, D's logits on z and z itself."""
        posterior, z, output = self.encode_sample_decode(x, noise)
        return {"output": output, "posterior": posterior, "z": z, "tc": self.disc(z)}

    def forward(self, x, y, progress: float, noise: torch.Generator) -> tuple[dict[str, torch.Tensor], Any]:
        o = self.options
        if o.binarize:
            x = binarize(x, noise)
        b = x.shape[0]
        t = self._pass(x, noise)
        sums = batch_sums(self.model.likelihood, t["output"], x, t["posterior"], self.model.log_sigma)
        tc = t["tc"].sum()
        vae_loss = sums["recon"] + sums["kl"] + o.gamma * tc
        d = discriminator_terms(self.disc, t["z"].detach(), noise)
        terms = {"loss": vae_loss, **sums, "tc_estimate": tc, **{name: value * b for name, value in d.items()}}
        return terms, {"vae": vae_loss / b, "discriminator": d["discriminator_loss"]}

    def update(self, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        # each network gets the gradient of its own loss only: D's logit in the VAE's loss must not train D
        losses["vae"].backward(inputs=list(self.model.parameters()))
        if losses["discriminator"].requires_grad:
            losses["discriminator"].backward(inputs=list(self.disc.parameters()))
        for name, module in (("adam", self.model), ("discriminator", self.disc)):
            self._step(name, module)
        return {}

    def _step(self, name: str, module: nn.Module) -> None:
        average_gradients(module, self.world)
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(module.parameters(), self.config.grad_clip)
        self.optimizers[name].step()

    def test_terms(self, images: torch.Tensor, labels, epoch: int) -> dict[str, float]:
        o, cfg = self.options, self.config
        was_training = self.disc.training
        self.disc.eval()

        def terms_of(x: torch.Tensor, y, generator: torch.Generator) -> dict[str, torch.Tensor]:
            t = self._pass(x, generator)
            recon = -log_likelihood(self.model.likelihood, t["output"], x, self.model.log_sigma)
            kl = t["posterior"].kl()
            d = discriminator_terms(self.disc, t["z"], generator)
            per_image = {name: value.expand(x.shape[0]) for name, value in d.items()}
            return {"loss": recon + kl + o.gamma * t["tc"], "recon": recon, "kl": kl, "tc_estimate": t["tc"]} | (
                per_image
            )

        try:
            return split_means(
                self.model,
                images,
                terms_of,
                binarize=o.binarize,
                seed=cfg.seed + EVAL_SEED_OFFSET,
                batch_size=cfg.eval_batch_size,
                device=self.device,
                world=self.world,
            )
        finally:
            self.disc.train(was_training)

    def record(self, epoch: int) -> dict[str, Any]:
        return {
            "gamma": self.options.gamma,
            "lr": self.optimizers["adam"].param_groups[0]["lr"],
            "disc_lr": self.optimizers["discriminator"].param_groups[0]["lr"],
        }

    def set_lr(self, config: TrainConfig) -> None:
        set_lr({"adam": self.optimizers["adam"]}, config.options.lr)
        set_lr({"discriminator": self.optimizers["discriminator"]}, config.options.disc_lr)

    def extra_weights(self) -> dict[str, nn.Module]:
        return {"discriminator": self.disc}


KIND = Kind(
    name="factor",
    help="a FactorVAE (Kim & Mnih 2018): a VAE plus --gamma times the total correlation estimated by a "
    "discriminator on latent samples against dimension-permuted ones",
    title="FactorVAE",
    options=FactorOptions,
    trainer=FactorTrainer,
    build=VAE,
    encoder=True,
    likelihood=True,
    refuses={
        "beta": "the FactorVAE's VAE term is the ELBO; --gamma weighs the total correlation",
        "warmup_epochs": "the FactorVAE's VAE term is the ELBO; --gamma weighs the total correlation",
    },
    check=no_compile("factor", check),  # its forward bypasses torch.compile
    memory=memory,
)
