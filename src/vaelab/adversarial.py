"""Training of the adversarial models: a GAN whose generator is the VAE's decoder architecture, and the
VAE-GAN of Larsen, Sønderby, Larochelle & Winther (2016), "Autoencoding beyond pixels using a learned
similarity metric" (Algorithm 1). Both plug into `train._train` like the VAE does.

Multi-process: each network's gradients are averaged across processes with one all-reduce per step (the
computation DistributedDataParallel does; done by hand because a VAE-GAN step computes three losses on
one forward pass), and the VAE-GAN's gating decisions use the discriminator losses averaged over processes,
so every process takes the same decisions.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from vaelab import data
from vaelab.checkpoint import CONFIG_FILE, MODEL_FILE, load_weights, read_json, read_tensors
from vaelab.config import TrainConfig
from vaelab.device import World, any_flag, sum_across
from vaelab.errors import ConfigError
from vaelab.losses import (
    bernoulli_log_likelihood,
    binarize,
    discriminator_loss,
    feature_reconstruction,
    generator_loss,
    kl_weight,
)
from vaelab.models import VAE, VAEConfig
from vaelab.models.gan import Discriminator, Generator
from vaelab.train import EVAL_SEED_OFFSET, NonFinite, fused_adam, model_config


def adam(module: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    return fused_adam(module, config.adversarial_lr, config.gan_betas)


def average_gradients(module: torch.nn.Module, world: World) -> None:
    if world.size == 1:
        return
    import torch.distributed as dist

    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world.size)


def average_scalars(values: torch.Tensor, world: World) -> torch.Tensor:
    values = values.detach()
    if world.size == 1:
        return values
    import torch.distributed as dist

    values = values.clone()
    dist.all_reduce(values)
    return values / world.size


def _reduce_means(totals: dict[str, torch.Tensor], n_images: int, world: World) -> dict[str, float]:
    return {name: float(value) / n_images for name, value in sum_across(totals, world).items()}


def _accumulate(totals: dict[str, torch.Tensor], terms: dict[str, torch.Tensor], batch: int) -> None:
    for name, value in terms.items():
        totals[name] = (
            totals.get(name, torch.zeros((), dtype=torch.float64, device=value.device))
            + value.detach().double() * batch
        )


def _check(terms: dict[str, torch.Tensor], step: int, world: World) -> None:
    bad = any(not torch.isfinite(v) for v in terms.values())
    if any_flag(bad, world):
        raise NonFinite(terms, step)


def _init_generator(config: TrainConfig, shape, device) -> tuple[VAEConfig, dict | None]:
    """The generator's architecture, and the decoder weights of `--init-from RUN` when given (the VAE run's
    architecture and latent dimension then win over the options)."""
    if not config.init_from:
        return model_config(config, shape), None
    meta = read_json(f"{config.init_from}/{CONFIG_FILE}")
    if meta.get("kind", "vae") == "gan":
        raise ConfigError(
            f"init_from: {config.init_from} is a GAN run; give a VAE run, whose decoder starts the generator"
        )
    vae_config = VAEConfig(**meta["model"])
    if tuple(vae_config.shape) != tuple(shape):
        raise ConfigError(
            f"init_from: {config.init_from} was trained on images {list(vae_config.shape)}, this data is {list(shape)}"
        )
    if vae_config.likelihood != "bernoulli":
        raise ConfigError("init_from: only a Bernoulli VAE's decoder (logits) can start a GAN generator")
    weights = read_tensors(f"{config.init_from}/{MODEL_FILE}")
    return vae_config, {k[len("decoder.") :]: v for k, v in weights.items() if k.startswith("decoder.")}


class AdversarialTrainer:
    """What the GAN and VAE-GAN trainers share: optimizers' learning rate, the discriminator's file, the
    seeded test loop and the progress bar. Subclasses set `model`, `disc`, `optimizers` and `modules`."""

    config: TrainConfig
    device: torch.device
    world: World

    def set_lr(self, config: TrainConfig) -> None:
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = config.adversarial_lr

    def record(self, epoch: int) -> dict:
        return {"lr": self.config.adversarial_lr}

    def extra_weights(self) -> dict[str, torch.nn.Module]:
        return {"discriminator": self.disc}

    def _test(self, images: torch.Tensor, terms_of) -> dict[str, float]:
        """Exact means over the (sharded) test images of `terms_of(x, generator)`, with seeded noise."""
        cfg, world = self.config, self.world
        generator = torch.Generator(device=self.device).manual_seed(cfg.seed + EVAL_SEED_OFFSET + world.rank)
        self.model.eval()
        self.disc.eval()
        totals: dict[str, torch.Tensor] = {}
        with torch.inference_mode():
            for x, _ in data.batches(
                images, cfg.eval_batch_size, rank=world.rank, world_size=world.size, device=self.device
            ):
                _accumulate(totals, terms_of(x, generator), x.shape[0])
        return _reduce_means(totals, images.shape[0] // world.size * world.size, world)

    def _progress(self, bar, step: int, batch: int, **shown: torch.Tensor) -> None:
        if bar is not None:
            bar.update(batch * self.world.size)
            if step % 10 == 0:
                bar.set_postfix({k: f"{v.item():.3f}" for k, v in shown.items()}, refresh=False)


class GANTrainer(AdversarialTrainer):
    """G = the decoder architecture fed z ~ N(0, I); D = the encoder architecture ending in one logit."""

    def __init__(self, config: TrainConfig, shape, device: torch.device, world: World):
        self.config, self.device, self.world = config, device, world
        gen_config, decoder_weights = _init_generator(config, shape, device)
        self.model = Generator(gen_config)
        if decoder_weights is not None:
            load_weights(self.model.decoder, decoder_weights, f"{config.init_from}/{MODEL_FILE}")
        self.model.to(device)
        self.disc = Discriminator(gen_config).to(device)
        self.modules = {"generator": self.model, "discriminator": self.disc}
        self.optimizers = {"generator": adam(self.model, config), "discriminator": adam(self.disc, config)}

    def train_epoch(self, images, epoch, order_gen, noise_gen, bar) -> tuple[dict[str, float], float]:
        cfg, world = self.config, self.world
        self.model.train()
        self.disc.train()
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        totals: dict[str, torch.Tensor] = {}
        n_images = images.shape[0] // world.size * world.size
        started = time.perf_counter()
        for i, (x, _) in enumerate(data.batches(images, cfg.batch_size // world.size, shuffle=True, generator=order_gen,
                                                 rank=world.rank, world_size=world.size, device=self.device)):  # fmt: skip
            b = x.shape[0]
            z = torch.randn(b, self.model.latent_dim, generator=noise_gen, device=self.device)
            fake = self.model(z)
            # D step: real and generated images in one pass
            logits, _ = self.disc(torch.cat([x, fake.detach()]))
            real_logits, fake_logits = logits[:b], logits[b:]
            d_loss = discriminator_loss(real_logits, fake_logits, cfg.gan_loss)
            # G step
            g_logits, _ = self.disc(fake)
            g_loss = generator_loss(g_logits, cfg.gan_loss)
            terms = {
                "d_loss": d_loss,
                "g_loss": g_loss,
                "d_real": torch.sigmoid(real_logits).mean(),
                "d_fake": torch.sigmoid(fake_logits).mean(),
            }
            _check(terms, i + 1, world)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward(inputs=list(self.disc.parameters()))
            average_gradients(self.disc, world)
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward(inputs=list(self.model.parameters()))
            average_gradients(self.model, world)
            opt_g.step()
            _accumulate(totals, terms, b)
            self._progress(bar, i, b, d=d_loss, g=g_loss)
        return _reduce_means(totals, n_images, world), time.perf_counter() - started

    def test_terms(self, images: torch.Tensor, epoch: int) -> dict[str, float]:
        """D's losses on the test images against as many seeded generator samples."""
        return self._test(images, self._test_pass)

    def _test_pass(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        b = x.shape[0]
        fake = self.model(torch.randn(b, self.model.latent_dim, generator=generator, device=self.device))
        logits, _ = self.disc(torch.cat([x, fake]))
        real_logits, fake_logits = logits[:b], logits[b:]
        return {"d_loss": discriminator_loss(real_logits, fake_logits, self.config.gan_loss),
                "g_loss": generator_loss(fake_logits, self.config.gan_loss),
                "d_real": torch.sigmoid(real_logits).mean(), "d_fake": torch.sigmoid(fake_logits).mean()}  # fmt: skip


class VAEGANTrainer(AdversarialTrainer):
    """Encoder + decoder (a VAE) + discriminator, one Adam each (Larsen et al. 2016, Algorithm 1):

    - encoder: beta * KL + L_llike, where L_llike = 0.5 ||D_l(x) - D_l(x_tilde)||^2 is the reconstruction
      measured in the discriminator's hidden layer l (`disc_layer`);
    - decoder: gamma * L_llike + the non-saturating GAN loss on reconstructions x_tilde and on prior samples x_p;
    - discriminator: real images against both x_tilde and x_p.
    Equilibrium gating (after the authors' code, on D's mean BCE over real and fake images): D is not updated
    while that BCE is below `equilibrium - margin` (D too strong), and the decoder's adversarial term is
    dropped while it is above `equilibrium + margin` (D too weak to teach anything).
    `pixel_weight` adds the pixel (Bernoulli) reconstruction to the encoder's and decoder's losses: without
    it, on small data, the weak feature-space term lets the KL collapse the posterior (0 restores the paper).
    """

    def __init__(self, config: TrainConfig, shape, device: torch.device, world: World):
        self.config, self.device, self.world = config, device, world
        vae_config = model_config(config, shape)
        self.model = VAE(vae_config).to(device)
        self.disc = Discriminator(vae_config, config.disc_layer).to(device)
        self.modules = {"vae": self.model, "discriminator": self.disc}
        self.optimizers = {"encoder": adam(self.model.encoder, config), "decoder": adam(self.model.decoder, config),
                           "discriminator": adam(self.disc, config)}  # fmt: skip

    def _pass(
        self, x: torch.Tensor, noise_gen: torch.Generator, beta: float
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One forward pass; returns (logged terms, the three losses)."""
        b = x.shape[0]
        posterior = self.model.encode(x)
        rec_logits = self.model.decode(posterior.sample(noise_gen))
        prior = torch.randn(b, self.model.latent_dim, generator=noise_gen, device=x.device)
        fakes = torch.cat([torch.sigmoid(rec_logits), torch.sigmoid(self.model.decode(prior))])
        logits, features = self.disc(torch.cat([x, fakes]))
        real, rec, prior_logits = logits[:b], logits[b : 2 * b], logits[2 * b :]
        llike = feature_reconstruction(features[:b], features[b : 2 * b]).mean()
        kl = posterior.kl().mean()
        bce_real, bce_rec, bce_prior = F.softplus(-real).mean(), F.softplus(rec).mean(), F.softplus(prior_logits).mean()
        g_adv = generator_loss(rec) + generator_loss(prior_logits)
        terms = {"recon": -bernoulli_log_likelihood(rec_logits, x).mean(), "kl": kl, "feature_recon": llike,
                 "d_loss": bce_real + bce_rec + bce_prior, "g_loss": g_adv, "d_real": torch.sigmoid(real).mean(),
                 "d_fake": torch.sigmoid(torch.cat([rec, prior_logits])).mean()}  # fmt: skip
        pixel = self.config.pixel_weight * terms["recon"]
        losses = {"encoder": beta * kl + llike + pixel, "decoder_llike": self.config.gamma * llike + pixel, "decoder_adv": g_adv,
                  "discriminator": terms["d_loss"], "bce": torch.stack([bce_real, (bce_rec + bce_prior) / 2])}  # fmt: skip
        return terms, losses

    def train_epoch(self, images, epoch, order_gen, noise_gen, bar) -> tuple[dict[str, float], float]:
        cfg, world = self.config, self.world
        self.model.train()
        self.disc.train()
        enc, dec = self.model.encoder, self.model.decoder
        totals: dict[str, torch.Tensor] = {}
        n_images = images.shape[0] // world.size * world.size
        steps = math.ceil(n_images // world.size / (cfg.batch_size // world.size))
        started = time.perf_counter()
        for i, (x, _) in enumerate(data.batches(images, cfg.batch_size // world.size, shuffle=True, generator=order_gen,
                                                 rank=world.rank, world_size=world.size, device=self.device)):  # fmt: skip
            beta = kl_weight(cfg.beta, epoch - 1 + i / steps, cfg.warmup_epochs)
            terms, losses = self._pass(x, noise_gen, beta)
            _check(terms, i + 1, world)
            bce = float(average_scalars(losses["bce"], world).mean())  # D's mean BCE, real and fake
            train_dis = bce >= cfg.equilibrium - cfg.margin  # else D is too strong: let the decoder catch up
            train_dec = bce <= cfg.equilibrium + cfg.margin  # else D is too weak to teach the decoder
            for opt in self.optimizers.values():
                opt.zero_grad(set_to_none=True)
            # each network gets the gradient of its own loss only (backward's `inputs`)
            losses["encoder"].backward(inputs=list(enc.parameters()), retain_graph=True)
            decoder_loss = losses["decoder_llike"] + (losses["decoder_adv"] if train_dec else 0)
            decoder_loss.backward(inputs=list(dec.parameters()), retain_graph=train_dis)
            if train_dis:
                losses["discriminator"].backward(inputs=list(self.disc.parameters()))
            for name, module in (("encoder", enc), ("decoder", dec), ("discriminator", self.disc)):
                if name != "discriminator" or train_dis:
                    average_gradients(module, world)
                    self.optimizers[name].step()
            terms = {
                **terms,
                "d_updated": torch.tensor(float(train_dis)),
                "dec_adv_updated": torch.tensor(float(train_dec)),
            }
            _accumulate(totals, terms, x.shape[0])
            self._progress(bar, i, x.shape[0], recon=terms["recon"], d=terms["d_loss"])
        return _reduce_means(totals, n_images, world), time.perf_counter() - started

    def test_terms(self, images: torch.Tensor, epoch: int) -> dict[str, float]:
        beta = kl_weight(self.config.beta, epoch, self.config.warmup_epochs)
        return self._test(images, lambda x, generator: self._pass(x, generator, beta)[0])


TRAINERS = {"gan": GANTrainer, "vaegan": VAEGANTrainer}
__all__ = ["TRAINERS", "binarize"]
