"""The registry of model kinds, and the assembly of a checked config from the shared options and a kind's own.

To add a kind: write one module like `kinds/vae.py` ending in `KIND = Kind(...)`, and add it to `BUILT_IN`
below (see CONTRIBUTING.md). Everything else (the CLI's options and help, config checking, loading a run,
figures, evaluation, reports, compare) asks the registry and the kind's declared abilities.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vaelab.config import COMMAND_LINE, OLD_NAMES, Layer, TrainConfig, option_fields, set_options, unknown_key
from vaelab.device import bf16_units
from vaelab.errors import ConfigError
from vaelab.kinds import betatc, cvae, factor, gan, iwae, vae, vaegan, vamp
from vaelab.kinds.base import Kind, Trainer
from vaelab.models.vae import KERNEL_BEFORE

__all__ = ["Kind", "Trainer", "all_options", "config_from_saved", "get", "make_config", "names", "register"]

BUILT_IN = (vae.KIND, gan.KIND, vaegan.KIND, iwae.KIND, vamp.KIND, cvae.KIND, betatc.KIND, factor.KIND)
KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add a kind to the registry (a kind's options must not clash with the shared ones)."""
    clash = set(option_fields(kind.options)) & set(option_fields(TrainConfig))
    if clash:
        raise ValueError(f"kind {kind.name}: options {sorted(clash)} clash with the shared options")
    KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    KINDS.pop(name, None)


for _kind in BUILT_IN:
    register(_kind)


def names() -> list[str]:
    return list(KINDS)


def get(name: str) -> Kind:
    """The kind called `name`; an unknown name is a ConfigError that lists the known ones."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"kind: unknown kind {name!r}; known kinds: {', '.join(KINDS)}") from None


def all_options() -> dict[str, tuple[dataclasses.Field, list[str]]]:
    """Every option of every kind: name -> (its field, the kinds that have it); shared options first."""
    table: dict[str, tuple[dataclasses.Field, list[str]]] = {
        name: (f, list(KINDS)) for name, f in option_fields(TrainConfig).items()
    }
    for kind in KINDS.values():
        for name, f in option_fields(kind.options).items():
            table.setdefault(name, (f, []))[1].append(kind.name)
    return table


def make_config(*layers: dict[str, Any], origin: str = COMMAND_LINE) -> TrainConfig:
    """A checked TrainConfig from dicts of values, later ones winning (None means 'not given').

    A `config.Layer` names its own origin in errors (a TOML file: `run.toml: lr: must be...`); plain dicts are
    `origin`, named only for an unknown key."""
    named = [isinstance(layer, Layer) and layer.origin != COMMAND_LINE for layer in layers]
    layers = [layer if isinstance(layer, Layer) else Layer(layer, origin) for layer in layers]
    given = [Layer({k: v for k, v in layer.items() if v is not None}, layer.origin) for layer in layers]
    kind_name = next((layer["kind"] for layer in reversed(given) if "kind" in layer), TrainConfig().kind)
    kind = get(kind_name)
    config, options = TrainConfig(), kind.options()
    shared, own, known = option_fields(TrainConfig), option_fields(kind.options), list(all_options())
    for layer, is_named in zip(given, named):
        for key in layer:
            if key in shared or key in own:
                continue
            if key not in known:
                raise unknown_key(key, known, layer.origin)
            reason = f" ({kind.refuses[key]})" if key in kind.refuses else ""
            prefix = f"{layer.origin}: " if is_named else ""
            raise ConfigError(f"{prefix}{key}: has no meaning with --kind {kind.name}{reason}")
        try:
            set_options(config, {k: v for k, v in layer.items() if k in shared})
            set_options(options, {k: v for k, v in layer.items() if k in own})
        except ConfigError as exc:
            if not is_named:
                raise
            raise ConfigError(f"{layer.origin}: {exc}") from None  # the file's value, not the option's
    config.options = options
    choose_precision(config, kind)
    if kind.check:
        kind.check(config)
    return config


def choose_precision(config: TrainConfig, kind: Kind) -> None:
    """Resolve `--precision auto`: bf16 where the kind trains in bf16 and the device has bf16 units (conv training
    1.4-1.6x faster at the same test loss: README, Performance), else fp32; an explicit bf16 the kind cannot honour is
    refused rather than ignored."""
    if config.precision == "bf16" and not kind.bf16:
        raise ConfigError(f"precision: not available for --kind {kind.name} yet (bf16); use --precision fp32 or auto")
    if config.precision != "auto":
        return
    units = bf16_units(config.device) if kind.bf16 else None
    config.precision = "bf16" if units else "fp32"
    why = units or (f"the {kind.name} kind trains in fp32" if not kind.bf16 else "no bf16 units on this device")
    config.precision_note = f"precision: {config.precision} (auto: {why}; --precision fp32 or bf16 to choose)"


def config_from_saved(values: dict[str, Any]) -> TrainConfig:
    """The TrainConfig saved in a run's config.json ("train"), also as vaelab 0.1.0 wrote it (every kind's
    options, under their old names: those the run's kind does not have are dropped)."""
    if not isinstance(values, dict):
        raise ConfigError(f"config.json: the train section must be a table of options, got {type(values).__name__}")
    values = {OLD_NAMES.get(k, k): v for k, v in values.items()}
    values.setdefault("kernel", KERNEL_BEFORE)  # saved before the option existed: the conv stack's kernel was 4
    kind = get(values.get("kind", TrainConfig().kind))
    mine = {**option_fields(TrainConfig), **option_fields(kind.options)}
    kept = {k: v for k, v in values.items() if k in mine and not (v is None and mine[k].default is not None)}
    return make_config(kept, origin="config.json")
