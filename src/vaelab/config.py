"""Training configuration: one typed source of truth for every option, its default, choices and help.

Options are dataclass fields made with `option(...)`; their metadata (help, choices, bounds) is what the
command line builds its flags from and what every value is checked against. `TrainConfig` holds the options
every model kind shares; each kind adds its own in a dataclass of its own (see `vaelab.kinds`), and
`kinds.make_config` assembles the two. Values come from defaults in code, overridden by a TOML file,
overridden by command-line options. Every key is checked: an unknown key or a bad value raises
`ConfigError` naming it. Keys may be written with `-` or `_` (`latent-dim` or `latent_dim`); a TOML file may
nest them under a `[train]` table. This module imports no other part of vaelab but its errors.
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

# vaelab 0.1.0's names of options that have since been renamed; still accepted everywhere.
OLD_NAMES = {"model": "kind", "recon": "likelihood"}
ARCHS = ("mlp", "conv", "resnet")
ACTIVATIONS = ("relu", "leaky_relu", "elu", "silu")
LIKELIHOODS = ("bernoulli", "gaussian", "logistic")  # vaelab.models.likelihoods registers each
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")
LR_SCHEDULES = ("constant", "cosine")
MAX_WIDTH = 1 << 16  # hidden units, channels: far above what fits a laptop, far below an allocator overflow
MAX_SEED = (1 << 62) - 1  # seeds are offset by small constants and must stay a signed 64-bit integer


def option(default: Any, help: str, resumable: bool = False, **checks: Any) -> Any:
    """A config field: its default, its help line, and the checks its value must pass.

    checks: `choices` (a tuple), `min` / `max` (inclusive), `above` / `below` (exclusive), `length` or
    `nonempty` (of a list); each bound applies to every element of a list. Lists get a fresh copy of their default.
    `resumable`: the option may take a new value when a run is resumed (`--resume --epochs 50`, a lower learning
    rate after a divergence); every other option must match the saved run (`is_resumable`)."""
    metadata = {"help": help, **checks, **({"resumable": True} if resumable else {})}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """The options every kind shares; `options` holds the kind's own (its dataclass, see `vaelab.kinds`)."""

    kind: str = option("vae", "what to train (see `vaelab train --help` for the kinds)")
    # data
    data: str = option(
        "mnist-mini",
        "data set name (mnist-mini, mnist, fashion-mnist, dsprites, dsprites:N) or path (IDX folder, .npz, image folder); "
        "default mnist-mini",
    )
    size: list[int] | None = option(None, "resize an image folder's images to H W", min=1, max=4096, length=2)
    # networks
    arch: str = option(
        "mlp",
        "mlp (fully connected), conv (convolutional) or resnet (residual stages down to 4x4, for colour images); "
        "default mlp",
        choices=ARCHS,
    )
    hidden: list[int] | None = option(
        None, "hidden layer sizes, e.g. 400 or 512,256 (default: mlp 400, conv 256)", min=1, max=MAX_WIDTH
    )
    channels: list[int] = option([32, 64], "conv channel widths, e.g. 32,64", min=1, max=MAX_WIDTH, nonempty=True)
    kernel: int = option(
        3, "conv: kernel size of the stride-2 convolutions, 3 or 4 (4 was the default before 2026-11-30)", min=3, max=4
    )
    width: int | None = option(
        None, "resnet: the first stage's width, doubled per stage (default: 16 up to 64 px, then 8)", min=1, max=4096
    )
    blocks: int | None = option(None, "resnet: residual blocks per stage (default 1)", min=0, max=64)
    latent_dim: int = option(10, "latent dimension (default 10; the course compares 2 and 10)", min=1, max=MAX_WIDTH)
    activation: str = option("relu", f"hidden activation: {', '.join(ACTIVATIONS)}", choices=ACTIVATIONS)
    # optimisation
    epochs: int = option(20, "number of epochs", min=1, max=1_000_000, resumable=True)
    batch_size: int = option(128, "batch size", min=1, max=1 << 20)
    grad_clip: float = option(0.0, "clip the gradient norm to this value (0: off)", min=0, resumable=True)
    lr_schedule: str = option(
        "constant",
        "constant, or cosine: every learning rate falls along a half cosine to 0 at the end of --epochs",
        choices=LR_SCHEDULES,
        resumable=True,
    )
    lr_warmup: float = option(
        0.0, "epochs over which every learning rate ramps up linearly from 0 (0: none)", min=0, max=1e6, resumable=True
    )
    seed: int = option(
        0, "random seed (same seed and a fixed --threads N: the same result to the last digit)", min=0, max=MAX_SEED
    )
    threads: int = option(
        0,
        "CPU threads for torch (0: one per core other processes leave free, re-measured every second)",
        min=0,
        max=4096,
        resumable=True,
    )
    device: str = option("auto", "|".join(DEVICES), choices=DEVICES, resumable=True)
    precision: str = option(
        "auto",
        "fp32, bf16 (autocast the forward pass to bfloat16), or auto: bf16 where the device has bf16 units (a CPU with "
        "AVX512-BF16 or AMX, a GPU that supports it) and the kind trains in bf16, else fp32; config.json keeps the choice",
        choices=PRECISIONS,
        resumable=True,
    )
    compile: bool = option(
        False, "torch.compile the model (a start-up cost that pays off on long runs and GPUs)", resumable=True
    )
    eval_batch_size: int = option(1000, "batch size for evaluation", min=1, max=1 << 20, resumable=True)
    flip: bool = option(
        False,
        "mirror each training image left-right with probability 1/2 (augmentation for photos; not for digits or text)",
        resumable=True,
    )
    # outputs
    out: str | None = option(None, "run directory (default runs/<data>-<arch>-z<latent>)")
    quiet: bool = option(False, "no progress bar", resumable=True)
    # the kind's own options (a dataclass instance), filled by kinds.make_config
    options: Any = field(default=None, metadata={"internal": True})
    # set by kinds.make_config when it resolved --precision auto (the run says what it chose and why)
    precision_note: str | None = field(default=None, metadata={"internal": True})

    def to_dict(self) -> dict[str, Any]:
        """The flat dict saved in config.json: shared options, then the kind's own."""
        shared = {f.name: getattr(self, f.name) for f in option_fields(TrainConfig).values()}
        return {**shared, **dataclasses.asdict(self.options)}


def option_fields(cls: type) -> dict[str, dataclasses.Field]:
    """The option fields of a config dataclass, by name."""
    return {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}


def is_resumable(field_: dataclasses.Field) -> bool:
    """Whether an option may change when a run is resumed (declared with `option(..., resumable=True)`)."""
    return bool(field_.metadata.get("resumable"))


COMMAND_LINE = "option"  # the origin of values given as options (a message names the option alone)


class Layer(dict):
    """Option values from one origin (a TOML file, the command line), keys normalized. An error about one of
    its values names its origin (`kinds.make_config`), so that a bad value in a file is not blamed on an option."""

    def __init__(self, values: dict[str, Any], origin: str):
        super().__init__({OLD_NAMES.get(k.replace("-", "_"), k.replace("-", "_")): v for k, v in values.items()})
        self.origin = origin


def read_toml(path: str | Path) -> Layer:
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; --config takes a TOML file") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot be read (permission denied)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    if set(values) == {"train"} and isinstance(values["train"], dict):
        values = values["train"]
    return Layer(values, str(path))


def unknown_key(key: str, known: list[str], origin: str) -> ConfigError:
    close = [k for k in known if k.startswith(key[:3])]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ConfigError(f"{origin}: unknown key {key!r}{hint}")


def set_options(target: Any, values: dict[str, Any]) -> None:
    """Coerce and check `values` onto the config dataclass `target` (every key must be one of its options)."""
    fields = option_fields(type(target))
    for name, value in values.items():
        setattr(target, name, coerce(name, value, fields[name]))


def type_name(field_: dataclasses.Field) -> str:
    """A field's annotation as written ("float", "list[int] | None"), with or without postponed annotations."""
    return field_.type if isinstance(field_.type, str) else getattr(field_.type, "__name__", str(field_.type))


def coerce(name: str, value: Any, field_: dataclasses.Field) -> Any:
    """Bring a value from TOML, JSON or the command line to the field's type and check it, or raise ConfigError."""
    annotation = type_name(field_)
    if value is None and "None" in annotation:
        return None
    value = _to_type(name, value, annotation.replace(" | None", ""))
    _check_value(name, value, field_.metadata)
    return value


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {value!r}") from None


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{name}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name}: must be a finite number, got {value!r}")
    return number


def _to_type(name: str, value: Any, annotation: str) -> Any:
    if annotation.startswith("list["):
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected a list like 512,256, got {value!r}")
        if annotation == "list[int]":
            try:
                return [_int(name, v) for v in value]
            except ConfigError:
                raise ConfigError(f"{name}: expected comma-separated integers like 512,256, got {value!r}") from None
        try:
            return [_float(name, v) for v in value]
        except ConfigError:
            raise ConfigError(f"{name}: expected a list of numbers, got {value!r}") from None
    if annotation == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if annotation == "int":
        return _int(name, value)
    if annotation == "float":
        return _float(name, value)
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    return value


def _check_value(name: str, value: Any, checks: dict[str, Any]) -> None:
    choices = checks.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{name}: must be one of {', '.join(choices)}, got {value!r}")
    items = value if isinstance(value, list) else [value]
    if "length" in checks and len(items) != checks["length"]:
        raise ConfigError(f"{name}: expected {checks['length']} values, got {value!r}")
    if checks.get("nonempty") and not items:
        raise ConfigError(f"{name}: expected at least one value, got {value!r}")
    for key, holds, word in (
        ("min", lambda v, b: v >= b, ">="),
        ("max", lambda v, b: v <= b, "<="),
        ("above", lambda v, b: v > b, ">"),
        ("below", lambda v, b: v < b, "<"),
    ):
        if key in checks and not all(holds(v, checks[key]) for v in items):
            bound = "a positive number" if key == "above" and checks[key] == 0 else f"{word} {checks[key]}"
            raise ConfigError(f"{name}: must be {bound}, got {value!r}")
