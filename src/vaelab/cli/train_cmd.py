"""`vaelab train`: every TrainConfig key as an option; a TOML file below them; the library does the work."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from vaelab.config import ACTIVATIONS, DEVICES, PRECISIONS, TrainConfig, make_config, read_toml
from vaelab.device import World
from vaelab.errors import ConfigError

HELP = {
    "model": "vae (default), gan (the decoder architecture as a generator against a discriminator), or vaegan (Larsen et al. 2016)",
    "gan_loss": "GAN loss: ns (non-saturating, default) or hinge",
    "gan_lr": "Adam learning rate of every network of a GAN / VAE-GAN (default: 2e-4 for a GAN, 1e-3 for a VAE-GAN)",
    "gan_betas": "Adam betas of a GAN / VAE-GAN (default 0.5,0.999)",
    "gamma": "VAE-GAN: weight of the feature-space reconstruction in the decoder's loss (default 0.1)",
    "pixel_weight": "VAE-GAN: weight of the pixel reconstruction term (0: the paper's pure feature-space form; default 0.1)",
    "disc_layer": "VAE-GAN: hidden layer of the discriminator used as feature space (-1: the last)",
    "equilibrium": "VAE-GAN: target discriminator BCE for update gating (default 0.68)",
    "margin": "VAE-GAN: gating margin around the equilibrium (default 0.35)",
    "init_from": "GAN: start the generator from the decoder of this VAE run",
    "data": "data set name (mnist-mini, mnist, fashion-mnist) or path (IDX folder, .npz, image folder); default mnist-mini",
    "size": "resize an image folder's images to H W",
    "arch": "mlp (fully connected) or conv (convolutional); default mlp",
    "hidden": "hidden layer sizes, e.g. 400 or 512,256 (default: mlp 400, conv 256)",
    "channels": "conv channel widths, e.g. 32,64",
    "latent_dim": "latent dimension (default 10; the course compares 2 and 10)",
    "activation": f"hidden activation: {', '.join(ACTIVATIONS)}",
    "recon": "reconstruction likelihood: bernoulli (cross-entropy) or gaussian (squared error)",
    "sigma": "Gaussian likelihood's fixed standard deviation (default sqrt(1/2): -log p = ||x - x_hat||^2 + const)",
    "learn_sigma": "learn the Gaussian likelihood's standard deviation",
    "binarize": "dynamic binarization of the inputs, resampled every batch",
    "beta": "weight of the KL term (default 1: the ELBO)",
    "warmup_epochs": "ramp the KL weight linearly from 0 over this many epochs",
    "epochs": "number of epochs",
    "batch_size": "batch size",
    "lr": "Adam learning rate",
    "adam_betas": "Adam betas, e.g. 0.9,0.999",
    "grad_clip": "clip the gradient norm to this value (0: off)",
    "seed": "random seed (same seed and thread count: same result)",
    "threads": "CPU threads for torch (0: torch's default)",
    "device": f"{'|'.join(DEVICES)}",
    "eval_batch_size": "batch size for evaluation",
    "precision": "fp32, or bf16 to autocast the forward pass to bfloat16 (faster on CPUs with bf16 units and on GPUs)",
    "compile": "torch.compile the model (a start-up cost that pays off on long runs and GPUs)",
    "out": "run directory (default runs/<data>-<arch>-z<latent>)",
    "quiet": "no progress bar",
}
CHOICES = {"model": ("vae", "gan", "vaegan"), "gan_loss": ("ns", "hinge"), "arch": ("mlp", "conv"), "recon": ("bernoulli", "gaussian"), "device": DEVICES, "activation": ACTIVATIONS,
           "precision": PRECISIONS}  # fmt: skip


def add_config_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One option per TrainConfig field; None means 'not given', so a TOML file below is not overridden."""
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        if str(f.type) == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=HELP[f.name])
        elif f.name == "size":
            parser.add_argument(flag, type=int, nargs=2, metavar=("H", "W"), default=None, help=HELP[f.name])
        else:
            parser.add_argument(flag, default=None, choices=CHOICES.get(f.name), help=HELP[f.name])


def given_options(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> dict:
    names = {f.name for f in dataclasses.fields(TrainConfig)} - set(skip)
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def config_from_args(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> TrainConfig:
    file_values = read_toml(args.config) if args.config else {}
    return make_config(file_values, given_options(args, skip), origin="option")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train a VAE (or a GAN / VAE-GAN: --model)",
        description="Train a VAE, GAN or VAE-GAN; options override --config FILE.toml.",
    )
    parser.add_argument("--config", metavar="FILE.toml", help="read options from a TOML file (options given here win)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--eval", action="store_true", help="run `vaelab eval` on the test split at the end")
    add_config_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from vaelab.pipeline import train_run
    from vaelab.train import resume_config

    if args.resume:
        if not args.out:
            raise ConfigError("--resume needs --out RUN_DIR: the run to continue")
        file_values = read_toml(args.config) if args.config else {}
        config = resume_config(args.out, {**file_values, **given_options(args)})
    else:
        config = config_from_args(args)
    run_dir = train_run(config, resume=args.resume, evaluate=args.eval)
    if not World.from_env().is_main:
        return
    if args.eval:
        from vaelab.evaluate import format_table

        print(format_table(json.loads((run_dir / "eval.json").read_text())))
    print(f"run written to {run_dir} (open {run_dir / 'report.html'})", file=sys.stderr if config.quiet else sys.stdout)
