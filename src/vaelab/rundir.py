"""The on-disk format of a run directory: every path in it, and reading and writing its JSON files.

    config.json                 the kind, the model's architecture ("model"), the options ("train"), the data
    model.safetensors           the generative model's weights
    <name>.safetensors          a kind's other networks (a discriminator)
    training_state.safetensors  everything --resume needs, in one file
    metrics.jsonl               a header line (config, versions), then one line per epoch
    eval.json, report.html      `vaelab eval`'s numbers, the report
    <figure>.png, samples/epoch_NNN.png
`checkpoint` is the layer below (safetensors, atomic writes); `run.Run` adds the model and the data set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vaelab.checkpoint import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    STATE_FILE,
    atomic_write,
    read_json,
    read_text,
    write_json,
)
from vaelab.errors import RunError

EVAL_FILE, REPORT_FILE, SAMPLES_DIR = "eval.json", "report.html", "samples"
NO_STATE = (
    f"{STATE_FILE} is missing: the run was stopped before its first epoch ended, or this is not a run "
    "directory; run the same command without --resume to start it again"
)


class RunDir:
    """Paths and JSON files of one run directory (which need not exist yet)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # paths
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def eval_path(self) -> Path:
        return self.path / EVAL_FILE

    @property
    def report_path(self) -> Path:
        return self.path / REPORT_FILE

    def weights_path(self, name: str) -> Path:
        return self.path / f"{name}.safetensors"

    def figure_path(self, name: str) -> Path:
        return self.path / f"{name}.png"

    def epoch_samples_path(self, epoch: int) -> Path:
        return self.path / SAMPLES_DIR / f"epoch_{epoch:03d}.png"

    def has_state(self) -> bool:
        return self.state_path.exists()

    # config.json
    def read_config(self) -> dict[str, Any]:
        meta = read_json(self.config_path)
        if (
            not isinstance(meta, dict)
            or not isinstance(meta.get("model"), dict)
            or not isinstance(meta.get("train"), dict)
        ):
            raise RunError(f"{self.config_path}: not a vaelab run configuration (needs 'model' and 'train' tables)")
        return meta

    def write_config(self, meta: dict[str, Any]) -> None:
        write_json(self.config_path, meta)

    # metrics.jsonl
    def read_metrics(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """(header, epochs): the first line holds the config, each further line one epoch."""
        path = self.metrics_path
        try:
            lines = [json.loads(line) for line in read_text(path).splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise RunError(f"{path}: a line is not valid JSON ({exc}); delete the damaged lines") from None
        if not lines or not isinstance(lines[0], dict) or "config" not in lines[0]:
            raise RunError(f"{path}: has no header line")
        for number, line in enumerate(lines[1:], 2):
            if not _is_epoch(line):
                raise RunError(
                    f"{path}: line {number} is not an epoch record (epoch, train and test terms); "
                    "delete the damaged lines"
                )
        return lines[0], lines[1:]

    def start_metrics(self, header: dict[str, Any]) -> None:
        atomic_write(self.metrics_path, lambda temp: Path(temp).write_text(json.dumps(header) + "\n"))

    def append_metrics(self, record: dict[str, Any], after_epoch: int | None = None) -> None:
        """Add one epoch's line, rewriting the file atomically (a kill never leaves half a line); with
        `after_epoch`, lines of later epochs (written after the checkpoint a run resumed from) are dropped."""
        header, epochs = self.read_metrics()
        if after_epoch is not None:
            epochs = [e for e in epochs if e["epoch"] <= after_epoch]
        text = "".join(json.dumps(line) + "\n" for line in [header, *epochs, record])
        atomic_write(self.metrics_path, lambda temp: Path(temp).write_text(text))

    # eval.json
    def read_eval(self) -> dict[str, Any] | None:
        """The saved evaluation, or None when the run has not been evaluated."""
        if not self.eval_path.exists():
            return None
        result = read_json(self.eval_path)
        if not isinstance(result, dict) or not isinstance(result.get("samples"), dict):
            raise RunError(f"{self.eval_path}: not a vaelab evaluation; run `vaelab eval {self.path}` again")
        return result

    def write_eval(self, result: dict[str, Any]) -> None:
        write_json(self.eval_path, result)

    def write_report(self, text: str) -> Path:
        atomic_write(self.report_path, lambda temp: Path(temp).write_text(text))
        return self.report_path


def _is_epoch(line: Any) -> bool:
    return (
        isinstance(line, dict)
        and isinstance(line.get("epoch"), int)
        and isinstance(line.get("train"), dict)
        and isinstance(line.get("test"), dict)
    )
