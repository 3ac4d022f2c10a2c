"""The conditional VAE (Sohn, Lee & Yan 2015; the M2 model's conditioning, Kingma et al. 2014): the encoder and the
decoder both see the label y (one-hot), q(z | x, y) and p(x | z, y), trained on the conditional ELBO

    log p(x | y) >= E_q[log p(x | z, y)] - KL(q(z | x, y) || N(0, I)).

The label says which digit; z is left to carry the style, so `sample(n, labels=...)` draws a chosen digit and the
same z written as every class shows one style across digits (the `classes` figure).

The decoder takes [z, one-hot(y)]; the encoder adds a learned embedding of y to its mean and log-variance.
A share `--label-dropout` of the training images have their label hidden (an all-zero one-hot, as in the
classifier-free guidance of Ho & Salimans 2022), so the same networks also model p(x) without a label: what the
code paths that hold no labels (reconstructions, interpolation, the IWAE log-likelihood, sample grids) measure.
Data without labels is a one-line error (`prepare`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vaelab import data
from vaelab.config import TrainConfig, option
from vaelab.errors import ConfigError, DataError
from vaelab.kinds.base import Kind, no_compile
from vaelab.kinds.memory import Footprint, StepSizes, encoder_decoder, on_meta
from vaelab.kinds.vae import VAEOptions, VAETrainer, check, vae_networks
from vaelab.losses import batch_sums, binarize, kl_weight, vae_terms
from vaelab.models import VAE, DiagonalGaussian, VAEConfig
from vaelab.models.vae import VAEOutput, build_decoder
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.training.split import split_means

MAX_CLASSES = 10_000


@dataclass
class CVAEConfig(VAEConfig):
    classes: int = 10  # size of the one-hot label


@dataclass
class CVAEOptions(VAEOptions):
    classes: int = option(0, "CVAE: number of classes (0: the data set's)", min=0, max=MAX_CLASSES)
    label_dropout: float = option(
        0.1,
        "CVAE: share of training images whose label is hidden, so the model also learns p(x) without one",
        min=0,
        below=1,
    )


class CVAE(VAE):
    """A VAE whose encoder and decoder take a label; every method takes `y` (int64 `[N]`) or None (label hidden)."""

    def __init__(self, config: CVAEConfig):
        super().__init__(config)
        self.decoder = build_decoder(
            replace(VAEConfig(**_base_fields(config)), latent_dim=config.latent_dim + config.classes)
        )
        # the label enters the encoder's first dense layer: [features, one-hot] -> hidden, written as a sum
        self.first_dense = next(m for m in self.encoder.modules() if isinstance(m, nn.Linear))
        self.label_embedding = nn.Linear(config.classes, self.first_dense.out_features, bias=False)

    @property
    def classes(self) -> int:
        return self.config.classes

    def one_hot(self, y: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
        """`[n, classes]`: one-hot labels, or zeros for a hidden label."""
        if y is None:
            return torch.zeros(n, self.classes, device=device)
        return F.one_hot(y.to(device).long(), self.classes).float()

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z | x, y); with y None, the label's input is all zeros (a hidden label)."""
        if y is None:
            return super().encode(x)
        shift = self.label_embedding(self.one_hot(y, x.shape[0], x.device))
        handle = self.first_dense.register_forward_hook(lambda module, args, out: out + shift)
        try:
            return super().encode(x)
        finally:
            handle.remove()

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """`[..., D]` latents (+ labels `[...]`) -> images; leading dimensions are flattened into the batch."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, z.shape[-1])
        labels = None if y is None else y.expand(lead).reshape(-1)
        out = self.decoder(torch.cat([flat, self.one_hot(labels, flat.shape[0], flat.device)], dim=1))
        return out.view(*lead, *out.shape[1:]) if len(lead) > 1 else out

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None, y: torch.Tensor | None = None
    ) -> VAEOutput:
        posterior = self.encode(x, y)
        z = posterior.sample(generator)
        return VAEOutput(posterior, z, self.decode(z, y))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        z: torch.Tensor | None = None,
        labels: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """Images decoded from z ~ N(0, I) (or the given `z`) with the given labels (an int: that class for every
        image), in [0, 1]. Without labels: with z drawn here, labels drawn uniformly too (the CVAE's generative
        model p(y) p(z) p(x | z, y), which eval's sample quality measures); with a given z, the label hidden."""
        device = next(self.parameters()).device
        if z is None:
            z = self.sample_prior(n, generator)
            if labels is None:
                gen_device = generator.device if generator is not None else torch.device("cpu")
                labels = torch.randint(self.classes, (n,), generator=generator, device=gen_device)
        z = z.to(device)
        if isinstance(labels, int):
            labels = torch.full((z.shape[0],), labels, dtype=torch.long)
        return self.to_image(self.decode(z, None if labels is None else labels.to(device)))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.to_image(self.decode(self.encode(x, y).mean, y))


def _base_fields(config: VAEConfig) -> dict[str, Any]:
    return {k: v for k, v in config.to_dict().items() if k in VAEConfig.__dataclass_fields__}


def build(config: VAEConfig) -> CVAE:
    return CVAE(config if isinstance(config, CVAEConfig) else CVAEConfig(**config.to_dict()))


def prepare(config: TrainConfig, dataset: data.Dataset) -> None:
    """Labels are required; `classes` is read from the data set (or checked against it)."""
    if dataset.train.labels is None or dataset.test.labels is None:
        raise DataError(
            f"{dataset.source or dataset.name}: has no labels, and a conditional VAE (--kind cvae) needs one per image; "
            "use a labelled data set (mnist-mini, an .npz with train_labels and test_labels, or an "
            "image folder with one subfolder per class)"
        )
    found = int(dataset.num_classes)
    if config.options.classes == 0:
        config.options.classes = found
    elif config.options.classes < found:
        raise ConfigError(f"classes: the data set has {found} classes, more than --classes {config.options.classes}")


def memory(config: TrainConfig, shape: tuple[int, int, int], sizes: StepSizes) -> Footprint:
    """The encoder runs twice per image (with the label, and without it for the hidden ones), the label's one-hot
    and its embedding enter the step, and the decoder takes [z, one-hot] (the classes as `prepare` read them)."""
    classes = max(1, config.options.classes)
    model = on_meta(lambda: CVAE(CVAEConfig(**vae_networks(config, shape).to_dict(), classes=classes)))
    return encoder_decoder(model, sizes, encodes=2, per_image=classes + model.label_embedding.out_features)


def conditional_terms(
    model: CVAE,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    binarize_images: bool,
    seed: int,
    batch_size: int,
    device: torch.device,
    world,
    beta: float = 1.0,
) -> dict[str, float]:
    """Means per image of the conditional ELBO's terms over a split (seeded, like `training.split`); `loss` weighs
    the KL by `beta`, as the training loss does."""

    def terms_of(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        out = model(x, generator, y)
        return vae_terms(model.likelihood, out.output, x, out.posterior, model.log_sigma, beta)

    return split_means(
        model,
        images,
        terms_of,
        labels=labels,
        binarize=binarize_images,
        seed=seed,
        batch_size=batch_size,
        device=device,
        world=world,
    )


class CVAETrainer(VAETrainer):
    """The VAE's trainer with labels in both networks (one label in `label_dropout` hidden)."""

    averages_by_hand = True  # encoder and decoder are called separately, with the labels

    def build(self, config: TrainConfig, shape: tuple[int, int, int]) -> CVAE:
        if not config.options.classes:
            raise ConfigError("classes: unknown; train through vaelab.training.loop, which reads them from the data")
        networks = vae_networks(config, shape)
        return CVAE(CVAEConfig(**networks.to_dict(), classes=config.options.classes))

    def forward(self, x, y, progress: float, noise: torch.Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        o = self.options
        beta = kl_weight(o.beta, progress, o.warmup_epochs)
        if o.binarize:
            x = binarize(x, noise)
        hidden = torch.rand(x.shape[0], generator=noise, device=x.device) < o.label_dropout
        posterior = self.model.encode(x, y)
        free = self.model.encode(x)  # the label hidden: q(z|x) without the embedding
        keep = (~hidden)[:, None]
        posterior = DiagonalGaussian(
            torch.where(keep, posterior.mean, free.mean), torch.where(keep, posterior.logvar, free.logvar)
        )
        z = posterior.sample(noise)
        onehot = self.model.one_hot(y, x.shape[0], x.device) * keep
        output = self.model.decoder(torch.cat([z, onehot], dim=1))
        sums = batch_sums(self.model.likelihood, output, x, posterior, self.model.log_sigma)
        loss_sum = sums["recon"] + beta * sums["kl"]
        return {"loss": loss_sum, **sums}, loss_sum / x.shape[0]

    def test_terms(self, images: torch.Tensor, labels, epoch: int) -> dict[str, float]:
        o, cfg = self.options, self.config
        return conditional_terms(
            self.model,
            images,
            labels,
            binarize_images=o.binarize,
            seed=cfg.seed + EVAL_SEED_OFFSET,
            batch_size=cfg.eval_batch_size,
            device=self.device,
            world=self.world,
            beta=kl_weight(o.beta, epoch, o.warmup_epochs),
        )


KIND = Kind(
    name="cvae",
    help="a conditional VAE (Sohn et al. 2015): encoder and decoder take the label, so samples can be of a chosen class",
    title="conditional VAE",
    options=CVAEOptions,
    trainer=CVAETrainer,
    build=build,
    encoder=True,
    likelihood=True,
    bf16=False,  # its trainer has no autocast
    check=no_compile("cvae", check),
    model_config=CVAEConfig,
    prepare=prepare,
    labels=True,
    memory=memory,
)
