"""Training configuration: defaults in code, overridden by a TOML file, overridden by command-line options.

Every key is checked: an unknown key or a bad value raises `ConfigError` naming it. Keys may be written
with `-` or `_` (`latent-dim` or `latent_dim`); a TOML file may also nest them under a `[train]` table.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaelab.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")
MODELS = ("vae", "gan", "vaegan")
GAN_ONLY = ("init_from",)
ADVERSARIAL = ("gan_loss", "gan_lr", "gan_betas")
VAEGAN_ONLY = ("gamma", "pixel_weight", "disc_layer", "equilibrium", "margin")
VAE_OBJECTIVE = ("recon", "sigma", "learn_sigma", "binarize", "beta", "warmup_epochs", "lr", "adam_betas")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "silu")


@dataclass
class TrainConfig:
    # what to train: a VAE, a GAN whose generator is the decoder architecture, or a VAE-GAN
    model: str = "vae"
    # data
    data: str = "mnist-mini"
    size: list[int] | None = None  # resize an image folder to [H, W]
    # model
    arch: str = "mlp"
    hidden: list[int] | None = None  # None: mlp [400], conv [256]
    channels: list[int] = field(default_factory=lambda: [32, 64])
    latent_dim: int = 10
    activation: str = "relu"
    recon: str = "bernoulli"
    sigma: float = math.sqrt(0.5)
    learn_sigma: bool = False
    # objective
    binarize: bool = False
    beta: float = 1.0
    warmup_epochs: float = 0.0
    # optimisation
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 0.0  # 0: off
    seed: int = 0
    threads: int = 0  # 0: leave torch's default
    device: str = "auto"
    precision: str = "fp32"  # bf16: autocast the forward pass to bfloat16 (CPUs with bf16 units, GPUs)
    compile: bool = False  # torch.compile the model (pays off on long runs and on GPUs)
    eval_batch_size: int = 1000
    # adversarial models (--model gan / vaegan)
    gan_loss: str = "ns"  # ns: non-saturating (Goodfellow et al. 2014); hinge (Lim & Ye 2017), GAN only
    gan_lr: float | None = (
        None  # Adam for every network; None: 2e-4 for a GAN (Radford et al. 2016), 1e-3 for a VAE-GAN
    )
    gan_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    gamma: float = 0.1  # VAE-GAN: weight of the feature-space reconstruction in the decoder's loss
    pixel_weight: float = 0.1  # VAE-GAN: weight of the pixel (Bernoulli) reconstruction; 0 = Larsen et al.'s pure form
    disc_layer: int = -1  # VAE-GAN: which hidden layer of D is the feature space (-1: the last)
    equilibrium: float = 0.68  # VAE-GAN: skip D's update when its BCE falls below equilibrium - margin,
    margin: float = 0.35  # and the decoder's adversarial update when D's BCE rises above equilibrium + margin
    init_from: str | None = None  # GAN: start the generator from this VAE run's decoder
    # outputs
    out: str | None = None
    quiet: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def adversarial_lr(self) -> float:
        """The Adam learning rate of a GAN's / VAE-GAN's networks."""
        if self.gan_lr is not None:
            return self.gan_lr
        return 1e-3 if self.model == "vaegan" else 2e-4


def _int_list(name: str, value: Any) -> list[int]:
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.replace(" ", "").split(",") if v]
        except ValueError:
            raise ConfigError(f"{name}: expected comma-separated integers like 512,256, got {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{name}: expected a list of integers, got {value!r}")
    return value


def _coerce(name: str, value: Any, default: Any, annotation: str) -> Any:
    """Bring a value from TOML or the command line to the field's type, or raise ConfigError."""
    if value is None and "None" in annotation:
        return None
    annotation = annotation.replace(" | None", "")
    if annotation.startswith("list[int]"):
        return _int_list(name, value)
    if annotation.startswith("list[float]"):
        if isinstance(value, str):
            value = value.split(",")
        try:
            return [float(v) for v in value]
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a list of numbers, got {value!r}") from None
    if annotation == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name}: expected an integer, got {value!r}") from None
    if annotation == "float":
        if isinstance(value, bool):
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    return value


def _check(config: TrainConfig) -> None:
    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    from vaelab.losses import LIKELIHOODS
    from vaelab.models import ARCHS

    need(config.arch in ARCHS, f"arch: must be one of {', '.join(ARCHS)}, got {config.arch!r}")
    need(config.recon in LIKELIHOODS, f"recon: must be one of {', '.join(LIKELIHOODS)}, got {config.recon!r}")
    need(
        config.activation in ACTIVATIONS,
        f"activation: must be one of {', '.join(ACTIVATIONS)}, got {config.activation!r}",
    )
    need(config.precision in PRECISIONS, f"precision: must be one of {', '.join(PRECISIONS)}, got {config.precision!r}")
    need(config.device in DEVICES, f"device: must be one of {', '.join(DEVICES)}, got {config.device!r}")
    need(config.latent_dim >= 1, f"latent_dim: must be >= 1, got {config.latent_dim}")
    need(config.epochs >= 1, f"epochs: must be >= 1, got {config.epochs}")
    need(config.batch_size >= 1, f"batch_size: must be >= 1, got {config.batch_size}")
    need(config.eval_batch_size >= 1, f"eval_batch_size: must be >= 1, got {config.eval_batch_size}")
    need(math.isfinite(config.lr) and config.lr > 0, f"lr: must be a positive number, got {config.lr}")
    need(
        len(config.adam_betas) == 2 and all(0 <= b < 1 for b in config.adam_betas),
        f"adam_betas: must be two numbers in [0, 1), got {config.adam_betas}",
    )
    need(math.isfinite(config.beta) and config.beta >= 0, f"beta: must be >= 0, got {config.beta}")
    need(config.warmup_epochs >= 0, f"warmup_epochs: must be >= 0, got {config.warmup_epochs}")
    need(config.grad_clip >= 0, f"grad_clip: must be >= 0 (0 turns it off), got {config.grad_clip}")
    need(config.sigma > 0, f"sigma: must be > 0, got {config.sigma}")
    need(config.threads >= 0, f"threads: must be >= 0, got {config.threads}")
    need(
        config.hidden is None or all(h >= 1 for h in config.hidden), f"hidden: sizes must be >= 1, got {config.hidden}"
    )
    need(
        len(config.channels) >= 1 and all(c >= 1 for c in config.channels),
        f"channels: must be positive, got {config.channels}",
    )
    need(
        config.size is None or (len(config.size) == 2 and min(config.size) >= 1),
        f"size: must be two positive integers H W, got {config.size}",
    )
    need(not (config.binarize and config.recon != "bernoulli"), "binarize: only makes sense with recon = bernoulli")
    _check_model_options(config, need)


def _check_model_options(config: TrainConfig, need) -> None:
    """Options that mean nothing for the chosen --model are errors, not silently ignored."""
    need(config.model in MODELS, f"model: must be one of {', '.join(MODELS)}, got {config.model!r}")
    defaults = TrainConfig()
    changed = {
        name
        for name in (*GAN_ONLY, *ADVERSARIAL, *VAEGAN_ONLY, *VAE_OBJECTIVE)
        if getattr(config, name) != getattr(defaults, name)
    }
    misplaced = {
        "vae": changed & {*GAN_ONLY, *ADVERSARIAL, *VAEGAN_ONLY},
        "gan": changed & {*VAEGAN_ONLY, *VAE_OBJECTIVE},
        "vaegan": changed & {*GAN_ONLY, "recon", "sigma", "learn_sigma", "binarize", "lr", "adam_betas"},
    }[config.model]
    if misplaced:
        name = sorted(misplaced)[0]
        need(
            False,
            f"{name}: has no meaning with --model {config.model}"
            + (" (use gan_lr / gan_betas)" if name in ("lr", "adam_betas") else ""),
        )
    need(config.gan_loss in ("ns", "hinge"), f"gan_loss: must be ns or hinge, got {config.gan_loss!r}")
    need(
        not (config.model == "vaegan" and config.gan_loss != "ns"),
        "gan_loss: the VAE-GAN's equilibrium gating is defined for ns only",
    )
    need(
        config.gan_lr is None or (math.isfinite(config.gan_lr) and config.gan_lr > 0),
        f"gan_lr: must be a positive number, got {config.gan_lr}",
    )
    need(
        len(config.gan_betas) == 2 and all(0 <= b < 1 for b in config.gan_betas),
        f"gan_betas: must be two numbers in [0, 1), got {config.gan_betas}",
    )
    need(
        config.gamma >= 0 and config.margin >= 0 and 0 < config.equilibrium < 10,
        "gamma, margin must be >= 0 and equilibrium > 0",
    )
    need(not (config.learn_sigma and config.recon != "gaussian"), "learn_sigma: only makes sense with recon = gaussian")


def _fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def normalize_keys(values: dict[str, Any], origin: str) -> dict[str, Any]:
    """`latent-dim` -> `latent_dim`; an unknown key is an error that names it and the file it came from."""
    known = _fields()
    out = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in known:
            close = [k for k in known if k.startswith(name[:3])]
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"{origin}: unknown key {key!r}{hint}")
        out[name] = value
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    if set(values) == {"train"} and isinstance(values["train"], dict):
        values = values["train"]
    return normalize_keys(values, str(path))


def make_config(*layers: dict[str, Any], origin: str = "option") -> TrainConfig:
    """Build a checked TrainConfig from dicts of overrides, later ones winning (None means 'not given')."""
    known = _fields()
    config = TrainConfig()
    for layer in layers:
        for name, value in normalize_keys(layer, origin).items():
            field_ = known[name]
            setattr(config, name, _coerce(name, value, field_.default, str(field_.type)))
    _check(config)
    return config


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Rebuild the TrainConfig saved in a run's config.json."""
    return make_config(values, origin="config.json")
