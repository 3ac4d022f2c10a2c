"""A run directory opened for use: its kind, options, data set and trained model, each loaded once.

Figures, evaluation and the report take a `Run`; after training, the pipeline hands them the `Run` of the
model and data set still in memory, so nothing is loaded twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from vaelab import data, kinds
from vaelab.checkpoint import load_weights, read_tensors
from vaelab.config import COMMAND_LINE, Layer, TrainConfig, is_resumable, option_fields
from vaelab.device import memory_bytes
from vaelab.errors import ConfigError, RunError
from vaelab.models import parameter_count
from vaelab.rundir import NO_STATE, RunDir


def load_dataset(config: TrainConfig) -> data.Dataset:
    """The data set a config names (the one place that turns options into a data set)."""
    return data.load(config.data, size=tuple(config.size) if config.size else None, quiet=config.quiet)


class Run(RunDir):
    """A run directory with its kind, options, data set and model (the last two loaded on first use)."""

    def __init__(
        self,
        path: str | Path,
        meta: dict[str, Any],
        device: str | torch.device = "cpu",
        model: nn.Module | None = None,
        dataset: data.Dataset | None = None,
    ):
        super().__init__(path)
        self.meta, self.device = meta, torch.device(device)
        try:
            self.config = kinds.config_from_saved(meta["train"])
        except ConfigError as exc:
            raise RunError(f"{self.config_path}: the train section is invalid: {exc}") from None
        self.kind = kinds.get(self.config.kind)
        self._model, self._dataset = model, dataset

    @classmethod
    def open(cls, path: str | Path, device: str | torch.device = "cpu", **loaded: Any) -> Run:
        path = Path(path)
        if not path.is_dir():
            raise RunError(f"{path}: no such run directory")
        return cls(path, RunDir(path).read_config(), device, **loaded)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model(self) -> nn.Module:
        """The generative model in eval mode (a VAE, or a GAN's generator: `decode` and `sample` only)."""
        if self._model is None:
            model = build_model(self.meta["model"], self.kind, self.config_path)
            load_weights(model, read_tensors(self.model_path), str(self.model_path))
            self._model = model.to(self.device).eval()
        return self._model

    def dataset(self) -> data.Dataset:
        if self._dataset is None:
            self._dataset = load_dataset(self.config)
        return self._dataset


def build_model(model_config: dict[str, Any], kind: kinds.Kind, origin: str | Path = "config.json") -> nn.Module:
    """The generative model of a run from config.json's "model" section (first counted on the meta device,
    so that an edited size cannot exhaust the memory)."""
    try:
        config = kind.model_config(**model_config)
        n = parameter_count(lambda: kind.build(config))
        if 4 * n > memory_bytes() // 2:
            raise RunError(f"{origin}: the model section describes {n:,} parameters, more than this machine can hold")
        return kind.build(config)
    except (TypeError, KeyError, ValueError) as exc:
        raise RunError(f"{origin}: the model section is invalid ({exc})") from None


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The trained model of a run directory, in eval mode, ready for `encode`, `decode` and `sample`
    (a GAN run gives its generator, which has `decode` and `sample` but no encoder)."""
    return Run.open(run_dir, device).model


def resumable_options(kind: kinds.Kind) -> list[str]:
    """The options of `kind` that may change when a run is resumed: those declared `option(..., resumable=True)`."""
    fields = {**option_fields(TrainConfig), **option_fields(kind.options)}
    return [name for name, field_ in fields.items() if is_resumable(field_)]


def resume_config(run_dir: str | Path, *overrides: dict[str, Any]) -> TrainConfig:
    """The saved config of `run_dir` with the allowed `overrides` applied (a lower lr after a divergence, say).

    `overrides` are layers, later ones winning: a `config.Layer` (a TOML file) is named in the errors its values
    cause; plain dicts are the command line's. A bad value saved in config.json names that file."""
    run = RunDir(run_dir)
    if not run.has_state():
        raise RunError(f"{run_dir}: no training state to resume from ({NO_STATE})")
    try:
        saved = kinds.config_from_saved(run.read_config()["train"]).to_dict()
    except ConfigError as exc:
        raise ConfigError(
            f"{run.config_path}: the saved train section is invalid ({exc}); restore the file, or train a new run"
        ) from None
    layers = [layer if isinstance(layer, Layer) else Layer(layer, COMMAND_LINE) for layer in overrides]
    origin = {name: layer.origin for layer in layers for name, value in layer.items() if value is not None}
    given = {name: value for layer in layers for name, value in layer.items() if value is not None}
    if given.get("kind", saved["kind"]) != saved["kind"]:
        raise ConfigError(
            _named(origin["kind"], f"kind: cannot change on --resume (the run was trained as {saved['kind']!r})")
        )
    kind = kinds.get(saved["kind"])
    wanted = kinds.make_config(saved, *overrides).to_dict()  # a TOML layer names its file in its errors
    resumable = resumable_options(kind)
    for name in given:
        if name not in resumable and name != "out" and wanted.get(name) != saved.get(name):
            raise ConfigError(
                _named(
                    origin[name], f"{name}: cannot change on --resume (the run was trained with {saved.get(name)!r})"
                )
            )
    return kinds.make_config(saved, {k: wanted[k] for k in resumable if k in wanted}, {"out": str(run_dir)})


def _named(origin: str, message: str) -> str:
    """A message about a value, prefixed with the file it came from (a value from the command line is named by its
    option alone)."""
    return message if origin == COMMAND_LINE else f"{origin}: {message}"


# The resumable options of the built-in kinds, by name (the resume code asks each kind's fields).
RESUMABLE = tuple(dict.fromkeys(name for kind in kinds.KINDS.values() for name in resumable_options(kind)))
