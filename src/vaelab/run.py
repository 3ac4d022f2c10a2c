"""Open a run directory: its configuration, its metrics and its trained model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaelab.checkpoint import CONFIG_FILE, METRICS_FILE, MODEL_FILE, load_weights, read_json, read_tensors
from vaelab.errors import RunError
from vaelab.models import VAE, VAEConfig
from vaelab.models.gan import Generator


def build_model(model_config: dict[str, Any], kind: str = "vae") -> VAE | Generator:
    """The generative model of a run: the VAE (of a VAE or VAE-GAN run) or a GAN's generator."""
    try:
        config = VAEConfig(**model_config)
        return Generator(config) if kind == "gan" else VAE(config)
    except (TypeError, KeyError, ValueError) as exc:
        raise RunError(f"config.json: the model section is invalid ({exc})") from None


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> VAE | Generator:
    """The trained model of a run directory, in eval mode, ready for `encode`, `decode` and `sample`
    (a GAN run gives its generator, which has `decode` and `sample` but no encoder)."""
    return Run.open(run_dir, device).model


def _load_model(run_dir: Path, config: dict[str, Any], device) -> VAE | Generator:
    model = build_model(config["model"], config.get("kind", "vae"))
    load_weights(model, read_tensors(run_dir / MODEL_FILE), str(run_dir / MODEL_FILE))
    return model.to(device).eval()


def read_metrics(run_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, epochs) from `metrics.jsonl`: the first line holds the config, each further line one epoch."""
    path = Path(run_dir) / METRICS_FILE
    try:
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise RunError(f"{path}: missing; is {run_dir} a vaelab run directory?") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: a line is not valid JSON ({exc})") from None
    if not lines or "config" not in lines[0]:
        raise RunError(f"{path}: has no header line")
    return lines[0], lines[1:]


@dataclass
class Run:
    """A run directory opened for reading: its config.json and its trained model."""

    path: Path
    config: dict[str, Any]
    model: VAE | Generator

    @property
    def kind(self) -> str:
        return self.config.get("kind", "vae")

    @classmethod
    def open(cls, run_dir: str | Path, device: str | torch.device = "cpu") -> Run:
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RunError(f"{run_dir}: no such run directory")
        config = read_json(run_dir / CONFIG_FILE)
        return cls(run_dir, config, _load_model(run_dir, config, device))
