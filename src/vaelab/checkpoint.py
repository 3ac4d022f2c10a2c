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


TEMP_SUFFIX = ".tmp"
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call `write(temp_path)`, flush it to disk, then rename it over `path`.

    A write that fails (a full disk, a read-only folder) is a one-line RunError, and `path` keeps its
    previous content; a kill leaves at most a `.NAME.*.tmp` file, which `remove_orphans` clears."""
    path = Path(path)
    temp = None
    try:
        # made inside the `try` whose `finally` removes it: a SIGTERM (raised as an exception wherever the program
        # is) that lands between creating the file and entering a `try` left it behind (seen once under load)
        try:
            handle, temp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=TEMP_SUFFIX, dir=path.parent)
        except OSError as exc:
            raise RunError(
                f"cannot write {path} ({exc.strerror or exc}); check that {path.parent} is a writable folder"
            ) from None
        os.close(handle)
        write(temp)
        with open(temp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(temp, 0o666 & ~_UMASK)  # mkstemp makes files private; give them the usual permissions
        os.replace(temp, path)
    except (OSError, SafetensorError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        kept = "its previous version is intact" if path.exists() else "nothing was written"
        raise RunError(f"could not write {path} ({reason}); {kept}; free some space or choose another folder") from None
    finally:
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)


def remove_orphans(folder: Path) -> list[Path]:
    """Delete the temporary files that writes killed midway left in `folder` (and its sub-folders)."""
    orphans = [p for p in Path(folder).rglob(".*" + TEMP_SUFFIX) if p.is_file()]
    for p in orphans:
        p.unlink(missing_ok=True)
    return orphans


def check_writable(folder: Path) -> None:
    """Fail early, before any work, when `folder` could not be created or written to (nothing is created)."""
    folder = Path(folder).absolute()
    existing = next(p for p in [folder, *folder.parents] if p.exists())
    if not existing.is_dir():
        raise RunError(f"{folder}: {existing} is a file, not a folder; choose another output path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunError(f"{folder}: {existing} is not writable; choose another output path")


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, lambda temp: Path(temp).write_text(json.dumps(value, indent=2) + "\n"))


def read_text(path: Path) -> str:
    """A run file's text; missing, unreadable or not text is a one-line RunError."""
    try:
        return Path(path).read_text()
    except FileNotFoundError:
        raise RunError(f"{path}: missing; is {Path(path).parent} a vaelab run directory?") from None
    except UnicodeDecodeError as exc:
        raise RunError(f"{path}: not text ({exc})") from None
    except OSError as exc:
        raise RunError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
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
    """Load `tensors` into `module`; a mismatch names the first missing or unexpected key, or the two shapes."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    if missing or unexpected:
        what = f"missing key {missing[0]!r}" if missing else f"unexpected key {unexpected[0]!r}"
        raise RunError(
            f"{origin}: weights do not fit the configured model ({what}; "
            f"{len(missing)} missing, {len(unexpected)} unexpected)"
        )
    for key, value in expected.items():
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise RunError(
                f"{origin}: weights do not fit the configured model ({key}: the file holds "
                f"{list(tensors[key].shape)}, the model needs {list(value.shape)})"
            )
        if tensors[key].is_floating_point() and not torch.isfinite(tensors[key]).all():
            raise RunError(
                f"{origin}: {key} holds non-finite values (NaN or inf): the run diverged or the file "
                "is damaged; resume from an earlier copy or train again"
            )
    module.load_state_dict(tensors)


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
    try:
        info = json.loads(read_safetensors(path, tensors=False)[1].get("info", "{}"))
    except json.JSONDecodeError:
        info = None
    if not isinstance(info, dict) or not isinstance(info.get("epoch"), int):
        raise RunError(f"{path}: damaged training state (no epoch in its metadata); train again without --resume")
    return info


def load_training_state(
    path: Path, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Restore modules and optimizers in place; return the saved (rng states, info)."""
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != STATE_FORMAT:
        raise RunError(f"{path}: not a vaelab training state (format {metadata.get('format')!r})")
    try:
        return _restore_state(tensors, metadata, modules, optimizers, path)
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
        raise RunError(
            f"{path}: damaged training state ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "train again without --resume"
        ) from None


def _restore_state(tensors, metadata, modules, optimizers, path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
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
