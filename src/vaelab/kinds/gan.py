"""A GAN whose generator is the VAE's decoder architecture fed z ~ N(0, I), against a discriminator built from
the encoder architecture (Goodfellow et al. 2014; the non-saturating loss, or the hinge loss of Lim & Ye 2017).

Multi-process: each network's gradients are averaged across processes with one all-reduce per step (what
DistributedDataParallel does, by hand, since a step takes two losses from one forward pass).
`AdversarialTrainer` is shared with the VAE-GAN (`kinds.vaegan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaelab import data
from vaelab.checkpoint import CONFIG_FILE, MODEL_FILE, load_weights, read_json, read_tensors
from vaelab.config import TrainConfig, option
from vaelab.device import World, sum_across
from vaelab.errors import ConfigError, RunError
from vaelab.kinds.base import Kind, networks, no_compile
from vaelab.kinds.memory import Footprint, StepSizes, layers, on_meta, parameters
from vaelab.losses import discriminator_loss, generator_loss
from vaelab.models import VAEConfig
from vaelab.models.gan import Discriminator, Generator
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.training.common import average_gradients, fused_adam, set_lr


@dataclass
class AdversarialOptions:
    """The Adam of every network of an adversarial kind (Radford et al. 2016's settings for a GAN)."""

    gan_lr: float = option(
        2e-4, "Adam learning rate of every network of a GAN (2e-4) / VAE-GAN (1e-3)", above=0, resumable=True
    )
    gan_betas: list[float] = option(
        [0.5, 0.999], "Adam betas of a GAN / VAE-GAN (default 0.5,0.999)", length=2, min=0, below=1
    )


@dataclass
class GANOptions(AdversarialOptions):
    gan_loss: str = option("ns", "GAN loss: ns (non-saturating, default) or hinge", choices=("ns", "hinge"))
    init_from: str | None = option(None, "GAN: start the generator from the decoder of this VAE run")


def adam(module: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    return fused_adam(module, config.options.gan_lr, config.options.gan_betas)


def clip(module: torch.nn.Module, config: TrainConfig) -> None:
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)


def generator_networks(config: TrainConfig, shape: tuple[int, int, int]) -> VAEConfig:
    """The generator's architecture: the options', or that of the `--init-from` run (whose decoder it takes)."""
    if not config.options.init_from:
        return networks(config, shape)
    meta = read_json(Path(config.options.init_from) / CONFIG_FILE)
    try:
        source = VAEConfig(**meta["model"])
    except (TypeError, KeyError, ValueError) as exc:
        raise RunError(f"{config.options.init_from}/{CONFIG_FILE}: the model section is invalid ({exc})") from None
    if tuple(source.shape) != tuple(shape):
        raise ConfigError(
            f"init_from: {config.options.init_from} was trained on images {list(source.shape)}, "
            f"this data is {list(shape)}"
        )
    if source.likelihood != "bernoulli":
        raise ConfigError("init_from: only a Bernoulli VAE's decoder (logits) can start a GAN generator")
    return source


def memory(config: TrainConfig, shape: tuple[int, int, int], sizes: StepSizes) -> Footprint:
    """G decodes a batch of z; D sees the real and generated images in one pass, then the generated ones again for
    G's loss (`GANTrainer.forward`), and both networks have an Adam. Per image: z, G's layers, the input, the
    generated image and the two concatenated, and D's layers three times. The test pass runs D on both halves."""
    net = generator_networks(config, shape)
    gen, disc = on_meta(lambda: Generator(net)), on_meta(lambda: Discriminator(net))
    g, d, pixels = layers(gen.decoder, net.latent_dim), layers(disc, *shape), math.prod(shape)
    train = sizes.batch * (net.latent_dim + g.total + 4 * pixels + 3 * d.total)
    evaluate = sizes.eval_batch * (net.latent_dim + 2 * g.widest + 4 * pixels + 4 * d.widest)
    return Footprint(parameters(gen, disc), train, evaluate)


class AdversarialTrainer:
    """What the GAN and VAE-GAN trainers share: terms are batch means, the discriminator's file, the
    learning rate, and the seeded test loop. Subclasses set `model`, `disc`, `optimizers` and `modules`."""

    sums = False  # forward's terms are batch means

    def __init__(self, config: TrainConfig, device: torch.device, world: World):
        self.config, self.options, self.device, self.world = config, config.options, device, world

    def train_mode(self) -> None:
        self.model.train()
        self.disc.train()

    def set_lr(self, config: TrainConfig) -> None:
        set_lr(self.optimizers, config.options.gan_lr)

    def record(self, epoch: int) -> dict[str, Any]:
        return {"lr": self.options.gan_lr}

    def extra_weights(self) -> dict[str, torch.nn.Module]:
        return {"discriminator": self.disc}

    def step(self, name: str, module: torch.nn.Module) -> None:
        """Average `module`'s gradients across processes, clip them if asked, and step its optimizer."""
        average_gradients(module, self.world)
        clip(module, self.config)
        self.optimizers[name].step()

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
                for name, value in terms_of(x, generator).items():
                    zero = torch.zeros((), dtype=torch.float64, device=value.device)
                    totals[name] = totals.get(name, zero) + value.double() * x.shape[0]
        n = images.shape[0] // world.size * world.size
        return {name: float(value) / n for name, value in sum_across(totals, world).items()}


class GANTrainer(AdversarialTrainer):
    """G = the decoder architecture fed z ~ N(0, I); D = the encoder architecture ending in one logit."""

    shown = {"d": "d_loss", "g": "g_loss"}

    def __init__(self, config: TrainConfig, shape, device: torch.device, world: World):
        super().__init__(config, device, world)
        gen_config = generator_networks(config, shape)
        self.model = Generator(gen_config)
        if config.options.init_from:
            source = Path(config.options.init_from) / MODEL_FILE
            weights = read_tensors(source)
            decoder = {k[len("decoder.") :]: v for k, v in weights.items() if k.startswith("decoder.")}
            load_weights(self.model.decoder, decoder, str(source))
        self.model.to(device)
        self.disc = Discriminator(gen_config).to(device)
        self.modules = {"generator": self.model, "discriminator": self.disc}
        self.optimizers = {"generator": adam(self.model, config), "discriminator": adam(self.disc, config)}

    def forward(self, x, y, progress: float, noise: torch.Generator) -> tuple[dict[str, torch.Tensor], Any]:
        b, loss = x.shape[0], self.options.gan_loss
        fake = self.model(torch.randn(b, self.model.latent_dim, generator=noise, device=self.device))
        logits, _ = self.disc(torch.cat([x, fake.detach()]))  # D: real and generated images in one pass
        real_logits, fake_logits = logits[:b], logits[b:]
        g_logits, _ = self.disc(fake)
        terms = {
            "d_loss": discriminator_loss(real_logits, fake_logits, loss),
            "g_loss": generator_loss(g_logits, loss),
            "d_real": torch.sigmoid(real_logits).mean(),
            "d_fake": torch.sigmoid(fake_logits).mean(),
        }
        return terms, terms

    def update(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        opt_d, opt_g = self.optimizers["discriminator"], self.optimizers["generator"]
        opt_d.zero_grad(set_to_none=True)
        opt_g.zero_grad(set_to_none=True)
        terms["d_loss"].backward(inputs=list(self.disc.parameters()))
        # both backward passes before either step: G's backward reads D's weights, which D's step changes in place
        terms["g_loss"].backward(inputs=list(self.model.parameters()))
        self.step("discriminator", self.disc)
        self.step("generator", self.model)
        return {}

    def test_terms(self, images: torch.Tensor, labels, epoch: int) -> dict[str, float]:
        """D's losses on the test images against as many seeded generator samples."""
        return self._test(images, self._test_pass)

    def _test_pass(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        b = x.shape[0]
        fake = self.model(torch.randn(b, self.model.latent_dim, generator=generator, device=self.device))
        logits, _ = self.disc(torch.cat([x, fake]))
        real_logits, fake_logits = logits[:b], logits[b:]
        return {
            "d_loss": discriminator_loss(real_logits, fake_logits, self.options.gan_loss),
            "g_loss": generator_loss(fake_logits, self.options.gan_loss),
            "d_real": torch.sigmoid(real_logits).mean(),
            "d_fake": torch.sigmoid(fake_logits).mean(),
        }


KIND = Kind(
    name="gan",
    help="a GAN: the decoder architecture as a generator against a discriminator (the encoder architecture)",
    title="GAN (generator: the decoder architecture)",
    options=GANOptions,
    trainer=GANTrainer,
    build=Generator,
    encoder=False,
    likelihood=False,
    discriminator=True,
    lr_option="gan_lr",
    refuses={"lr": "use gan_lr / gan_betas", "adam_betas": "use gan_lr / gan_betas"},
    bf16=False,  # its trainer has no autocast
    check=no_compile("gan"),  # its trainer has no autocast and no torch.compile
    memory=memory,
)
