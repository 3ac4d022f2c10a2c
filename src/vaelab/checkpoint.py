"""Run directories on disk: safetensors + JSON only, nothing pickled, every write atomic.

A run directory holds
- `config.json`: the model's and the training's configuration, the data set and library versions;
- `model.safetensors`: the model's weights (everything `load_run` needs with config.json);
- `training_state.safetensors`: weights, optimizer moments, random-generator states and the epoch, in
  one file (with JSON metadata), so that `--resume` reads a single consistent snapshot;
- `metrics.jsonl`, figures, and later `eval.json` and `report.html`.
Each file is written to a temporary name in the same folder and renamed over the old one, so a kill at
any moment leaves the previous version whole.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from vaelab.errors import RunError

STATE_FORMAT = "vaelab-training-state-1"
MODEL_FILE, CONFIG_FILE, STATE_FILE, METRICS_FILE = (
    "model.safetensors",
    "config.json",
    "training_state.safetensors",
    "metrics.jsonl",
)


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call `write(temp_path)`, flush it to disk, then rename it over `path`."""
    path = Path(path)
    handle, temp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(temp)
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(temp, 0o666 & ~_UMASK)  # mkstemp makes files private; give them the usual permissions
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, lambda temp: Path(temp).write_text(json.dumps(value, indent=2) + "\n"))


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunError(f"{path}: missing; is {Path(path).parent} a vaelab run directory?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{path}: not valid JSON ({exc})") from None


def _cpu_tensors(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_weights(path: Path, modules: dict[str, nn.Module]) -> None:
    """Write the state dicts of `modules` as one safetensors file, keys prefixed by each module's name.

    A single module named "" is written with its own keys, which is what `model.safetensors` holds."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        tensors.update(_cpu_tensors(module.state_dict(), f"{name}." if name else ""))
    atomic_write(path, lambda temp: save_file(tensors, temp, metadata={"format": "pt"}))


def read_safetensors(path: Path, tensors: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file in one read (`tensors=False`: metadata alone);
    a missing or unreadable file is a one-line RunError."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return ({key: f.get_tensor(key) for key in f.keys()} if tensors else {}), (f.metadata() or {})
    except FileNotFoundError:
        raise RunError(f"{path}: missing; is {Path(path).parent} a vaelab run directory?") from None
    except (SafetensorError, OSError) as exc:
        raise RunError(f"{path}: not a readable safetensors file ({exc})") from None


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    return read_safetensors(path)[0]


def load_weights(module: nn.Module, tensors: dict[str, torch.Tensor], origin: str) -> None:
    try:
        module.load_state_dict(tensors)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise RunError(f"{origin}: weights do not fit the configured model ({first})") from None


def save_training_state(
    path: Path,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    rng: dict[str, torch.Tensor],
    info: dict[str, Any],
) -> None:
    """One file with every tensor `--resume` needs; scalars and optimizer settings go to its metadata."""
    tensors: dict[str, torch.Tensor] = {}
    groups = {}
    for name, module in modules.items():
        tensors.update(_cpu_tensors(module.state_dict(), f"model/{name}/"))
    for name, optimizer in optimizers.items():
        state = optimizer.state_dict()
        for index, slots in state["state"].items():
            for slot, value in slots.items():
                value = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"optim/{name}/{index}/{slot}"] = value.detach().to("cpu").contiguous().clone()
        groups[name] = state["param_groups"]
    tensors.update(_cpu_tensors(rng, "rng/"))
    metadata = {"format": STATE_FORMAT, "info": json.dumps(info), "param_groups": json.dumps(groups)}
    atomic_write(path, lambda temp: save_file(tensors, temp, metadata=metadata))


def read_state_info(path: Path) -> dict[str, Any]:
    """The epoch and step of a training state, from its metadata alone (no tensors read)."""
    return json.loads(read_safetensors(path, tensors=False)[1].get("info", "{}"))


def load_training_state(
    path: Path, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore modules and optimizers in place; return the saved (rng states, info)."""
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != STATE_FORMAT:
        raise RunError(f"{path}: not a vaelab training state (format {metadata.get('format')!r})")
    groups = json.loads(metadata["param_groups"])
    for name, module in modules.items():
        prefix = f"model/{name}/"
        load_weights(module, {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, str(path))
    for name, optimizer in optimizers.items():
        prefix = f"optim/{name}/"
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, slot = key[len(prefix) :].split("/")
                state.setdefault(int(index), {})[slot] = value
        for group in groups[name]:
            if "betas" in group:
                group["betas"] = tuple(group["betas"])
        optimizer.load_state_dict({"state": state, "param_groups": groups[name]})
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng/")}
    return rng, json.loads(metadata["info"])
