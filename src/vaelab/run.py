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
from vaelab.config import Layer, TrainConfig
from vaelab.device import memory_bytes
from vaelab.errors import ConfigError, RunError
from vaelab.models import parameter_count
from vaelab.rundir import NO_STATE, RunDir

# What may change when a run is resumed; every other option must match the saved run.
RESUMABLE = (
    "epochs",
    "lr",
    "gan_lr",
    "grad_clip",
    "quiet",
    "device",
    "threads",
    "eval_batch_size",
    "precision",
    "compile",
)


def load_dataset(config: TrainConfig) -> data.Dataset:
    """The data set a config names (the one place that turns options into a data set)."""
    return data.load(config.data, size=tuple(config.size) if config.size else None)


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


def resume_config(run_dir: str | Path, overrides: dict[str, Any]) -> TrainConfig:
    """The saved config of `run_dir` with the allowed `overrides` applied (a lower lr after a divergence, say)."""
    run = RunDir(run_dir)
    if not run.has_state():
        raise RunError(f"{run_dir}: no training state to resume from ({NO_STATE})")
    saved = kinds.config_from_saved(run.read_config()["train"]).to_dict()
    given = Layer(overrides, "option")
    if given.get("kind", saved["kind"]) != saved["kind"]:
        raise ConfigError(f"kind: cannot change on --resume (the run was trained as {saved['kind']!r})")
    wanted = kinds.make_config(saved, given).to_dict()
    for name in given:
        if name not in RESUMABLE and name != "out" and wanted.get(name) != saved.get(name):
            raise ConfigError(f"{name}: cannot change on --resume (the run was trained with {saved.get(name)!r})")
    return kinds.make_config(saved, {k: wanted[k] for k in RESUMABLE if k in wanted}, {"out": str(run_dir)})
