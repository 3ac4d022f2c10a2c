"""The VAE-GAN of Larsen, Sønderby, Larochelle & Winther (2016), "Autoencoding beyond pixels using a learned
similarity metric" (Algorithm 1): a VAE plus a discriminator, by composition, one Adam per network.

- encoder: beta * KL + L_llike, where L_llike = 0.5 ||D_l(x) - D_l(x_tilde)||^2 is the reconstruction
  measured in the discriminator's hidden layer l (`disc_layer`);
- decoder: gamma * L_llike + the non-saturating GAN loss on reconstructions x_tilde and on prior samples x_p;
- discriminator: real images against both x_tilde and x_p.
Equilibrium gating (after the authors' code, on D's mean BCE over real and fake images): D is not updated
while that BCE is below `equilibrium - margin` (D too strong), and the decoder's adversarial term is
dropped while it is above `equilibrium + margin` (D too weak to teach anything). Multi-process, the gating
uses D's losses averaged over processes, so every process takes the same decisions.
`pixel_weight` adds the pixel (Bernoulli) reconstruction to the encoder's and decoder's losses: without
it, on small data, the weak feature-space term lets the KL collapse the posterior (0 restores the paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from vaelab.config import TrainConfig, option
from vaelab.device import World
from vaelab.kinds.base import Kind, networks, no_compile
from vaelab.kinds.gan import AdversarialOptions, AdversarialTrainer, adam
from vaelab.kinds.memory import Footprint, StepSizes, encoder_decoder, layers, on_meta, parameters
from vaelab.kinds.vae import KLWeight
from vaelab.losses import bernoulli_log_likelihood, feature_reconstruction, generator_loss, kl_weight
from vaelab.models import VAE
from vaelab.models.gan import Discriminator
from vaelab.training.common import average_scalars


@dataclass
class VAEGANOptions(KLWeight, AdversarialOptions):
    gan_lr: float = option(
        1e-3, "Adam learning rate of every network of a GAN (2e-4) / VAE-GAN (1e-3)", above=0, resumable=True
    )
    gamma: float = option(
        0.1,
        "weight: VAE-GAN's feature-space reconstruction in the decoder's loss (default 0.1); "
        "FactorVAE's total correlation (default 35)",
        min=0,
    )
    pixel_weight: float = option(
        0.1,
        "VAE-GAN: weight of the pixel reconstruction term (0: the paper's pure feature-space form; default 0.1)",
        min=0,
    )
    disc_layer: int = option(-1, "VAE-GAN: hidden layer of the discriminator used as feature space (-1: the last)")
    equilibrium: float = option(
        0.68, "VAE-GAN: target discriminator BCE for update gating (default 0.68)", above=0, below=10
    )
    margin: float = option(0.35, "VAE-GAN: gating margin around the equilibrium (default 0.35)", min=0)


def memory(config: TrainConfig, shape: tuple[int, int, int], sizes: StepSizes) -> Footprint:
    """The VAE's step (`encoder_decoder`), plus a second decode (of prior samples), the two images' sigmoids, the
    real, reconstructed and sampled images concatenated and D's layers on all three (`VAEGANTrainer._pass`):
    retain_graph keeps it all through the three backward passes, and D has its own Adam."""
    net = networks(config, shape)
    vae = on_meta(lambda: VAE(net))
    disc = on_meta(lambda: Discriminator(net, config.options.disc_layer))
    plain = encoder_decoder(vae, sizes)
    dec, d, pixels = layers(vae.decoder, net.latent_dim), layers(disc, *shape), math.prod(shape)
    train = plain.train + sizes.batch * (net.latent_dim + dec.total + 5 * pixels + 3 * d.total)
    test = sizes.eval_batch * (net.latent_dim + 2 * dec.widest + 5 * pixels + 6 * d.widest)
    return Footprint(parameters(vae, disc), train, max(plain.evaluate, test))


class VAEGANTrainer(AdversarialTrainer):
    shown = {"recon": "recon", "d": "d_loss"}

    def __init__(self, config: TrainConfig, shape, device: torch.device, world: World):
        super().__init__(config, device, world)
        vae_config = networks(config, shape)
        self.model = VAE(vae_config).to(device)
        self.disc = Discriminator(vae_config, config.options.disc_layer).to(device)
        self.modules = {"vae": self.model, "discriminator": self.disc}
        self.optimizers = {
            "encoder": adam(self.model.encoder, config),
            "decoder": adam(self.model.decoder, config),
            "discriminator": adam(self.disc, config),
        }

    def _pass(
        self, x: torch.Tensor, noise: torch.Generator, beta: float
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One forward pass; returns (logged terms, the three losses)."""
        b, o = x.shape[0], self.options
        posterior = self.model.encode(x)
        rec_logits = self.model.decode(posterior.sample(noise))
        prior = torch.randn(b, self.model.latent_dim, generator=noise, device=x.device)
        fakes = torch.cat([torch.sigmoid(rec_logits), torch.sigmoid(self.model.decode(prior))])
        logits, features = self.disc(torch.cat([x, fakes]))
        real, rec, prior_logits = logits[:b], logits[b : 2 * b], logits[2 * b :]
        llike = feature_reconstruction(features[:b], features[b : 2 * b]).mean()
        kl = posterior.kl().mean()
        bce_real, bce_rec, bce_prior = F.softplus(-real).mean(), F.softplus(rec).mean(), F.softplus(prior_logits).mean()
        g_adv = generator_loss(rec) + generator_loss(prior_logits)
        terms = {
            "recon": -bernoulli_log_likelihood(rec_logits, x).mean(),
            "kl": kl,
            "feature_recon": llike,
            "d_loss": bce_real + bce_rec + bce_prior,
            "g_loss": g_adv,
            "d_real": torch.sigmoid(real).mean(),
            "d_fake": torch.sigmoid(torch.cat([rec, prior_logits])).mean(),
        }
        pixel = o.pixel_weight * terms["recon"]
        losses = {
            "encoder": beta * kl + llike + pixel,
            "decoder_llike": o.gamma * llike + pixel,
            "decoder_adv": g_adv,
            "discriminator": terms["d_loss"],
            "bce": torch.stack([bce_real, (bce_rec + bce_prior) / 2]),
        }
        return terms, losses

    def forward(self, x, y, progress: float, noise: torch.Generator) -> tuple[dict[str, torch.Tensor], Any]:
        return self._pass(x, noise, kl_weight(self.options.beta, progress, self.options.warmup_epochs))

    def update(self, losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        o, enc, dec = self.options, self.model.encoder, self.model.decoder
        bce = float(average_scalars(losses["bce"], self.world).mean())  # D's mean BCE, real and fake
        train_dis = bce >= o.equilibrium - o.margin  # else D is too strong: let the decoder catch up
        train_dec = bce <= o.equilibrium + o.margin  # else D is too weak to teach the decoder
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        # each network gets the gradient of its own loss only (backward's `inputs`)
        losses["encoder"].backward(inputs=list(enc.parameters()), retain_graph=True)
        decoder_loss = losses["decoder_llike"] + (losses["decoder_adv"] if train_dec else 0)
        decoder_loss.backward(inputs=list(dec.parameters()), retain_graph=train_dis)
        if train_dis:
            losses["discriminator"].backward(inputs=list(self.disc.parameters()))
        for name, module in (("encoder", enc), ("decoder", dec), ("discriminator", self.disc)):
            if name != "discriminator" or train_dis:
                self.step(name, module)
        return {"d_updated": torch.tensor(float(train_dis)), "dec_adv_updated": torch.tensor(float(train_dec))}

    def record(self, epoch: int) -> dict[str, Any]:
        return {"beta": kl_weight(self.options.beta, epoch, self.options.warmup_epochs), **super().record(epoch)}

    def test_terms(self, images: torch.Tensor, labels, epoch: int) -> dict[str, float]:
        beta = kl_weight(self.options.beta, epoch, self.options.warmup_epochs)
        return self._test(images, lambda x, generator: self._pass(x, generator, beta)[0])


KIND = Kind(
    name="vaegan",
    help="a VAE-GAN (Larsen et al. 2016): a VAE whose reconstructions are measured in a discriminator's features",
    title="VAE-GAN",
    options=VAEGANOptions,
    trainer=VAEGANTrainer,
    build=VAE,
    encoder=True,
    likelihood=True,
    discriminator=True,
    lr_option="gan_lr",
    refuses={
        "gan_loss": "the VAE-GAN's equilibrium gating is defined for ns only",
        "lr": "use gan_lr / gan_betas",
        "adam_betas": "use gan_lr / gan_betas",
    },
    bf16=False,  # its trainer has no autocast
    check=no_compile("vaegan"),  # its trainer has no autocast and no torch.compile
    memory=memory,
)
