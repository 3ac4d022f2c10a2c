"""Training watched in the trackers people already use: `train --log tensorboard` or `--log mlflow`.

A tracker is one module in this package ending with a `Tracker(...)`, registered in `TRACKERS` below; nothing else
names one. What a tracked run sends, whatever the tracker:

- at its first epoch, the options as hyper-parameters (config.json's "train" section);
- every epoch, each number of its metrics.jsonl line under the same name (`train/loss`, `test/kl`, `lr`,
  `seconds`...; nested tables joined with "/"), at step = the epoch, and the epoch's sample grid as an image;
- at the end, the run's figures as images and its evaluation's numbers (`eval/iwae/nll`...), at the last epoch.

metrics.jsonl stays the record: a tracker only mirrors it. A resumed run continues the same tracker run, at the
epochs that follow (where it is kept: RUN/tracking.json). The members of a comparison study are grouped: one
MLflow experiment, one TensorBoard folder with a sub-folder per member.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaelab.checkpoint import read_json, read_state_info, write_json
from vaelab.config import TrainConfig
from vaelab.device import World
from vaelab.errors import ConfigError, RunError, one_line
from vaelab.extras import require
from vaelab.rundir import RunDir
from vaelab.tracking import mlflow, tensorboard
from vaelab.tracking.base import Destination, Session, Tracker

__all__ = ["TRACKERS", "Destination", "Log", "Session", "Tracked", "Tracker", "get", "names", "start"]

STATE_FILE = "tracking.json"  # in the run directory: which tracker run this one continues on --resume
TRACKERS: dict[str, Tracker] = {t.name: t for t in (tensorboard.TRACKER, mlflow.TRACKER)}


def names() -> list[str]:
    return list(TRACKERS)


def get(name: str) -> Tracker:
    try:
        return TRACKERS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"log: unknown tracker {name!r}; known: {', '.join(TRACKERS)}") from None


@dataclass(frozen=True)
class Log:
    """What to track a run with: a tracker's name, where it writes (`uri`: its default when None), and the
    comparison study the run belongs to (its folder), if any."""

    tracker: str
    uri: str | None = None
    study: str | None = None

    def check(self) -> Tracker:
        """The tracker, its packages imported: an unknown name or a missing extra is a one-line error, before
        any work."""
        tracker = get(self.tracker)
        require(f"--log {tracker.name}", tracker.extra, *tracker.modules)
        return tracker

    def member(self, study: str | Path) -> Log:
        return Log(self.tracker, self.uri, str(Path(study).absolute()))


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a metrics.jsonl line (or an evaluation), nested tables joined with "/"; the epoch (the step)
    and anything that is not a number are left out."""
    flat: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and name != "epoch":
            flat[name] = float(value)
    return flat


def hyper_parameters(config: TrainConfig) -> dict[str, str | int | float | bool]:
    """The options as a tracker takes them: numbers, strings and booleans (lists written out, None as "none")."""
    values = {}
    for name, value in config.to_dict().items():
        if value is None:
            value = "none"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        values[name] = value
    return values


class Tracked:
    """One run's tracking: opened before training, a callback around the per-epoch one, then `finish` after the
    figures and the evaluation (or closed as failed when training stops)."""

    def __init__(self, session: Session | None = None):
        self.session = session
        self.last_epoch = 0

    def on_epoch(self, draw: Callable | None) -> Callable | None:
        """`draw` (the loop's per-epoch callback: the sample grid), followed by the epoch's numbers and grid. The
        loop saves the epoch's checkpoint after this: a tracker that fails here is reported once and left, so that
        training and its checkpoints go on."""
        if self.session is None:
            return draw

        def epoch_done(run_dir: RunDir, epoch: int, model) -> None:
            if draw:
                draw(run_dir, epoch, model)
            self.last_epoch = epoch
            try:
                _, epochs = run_dir.read_metrics()
                self.session.scalars(flatten(epochs[-1]), epoch)
                grid = run_dir.epoch_samples_path(epoch)
                if grid.exists():
                    self.session.image("samples", grid, epoch)
                self.session.flush()
            except Exception as exc:  # a server gone away, a full disk: the run itself is not at fault
                print(f"vaelab: warning: tracking stopped at epoch {epoch} ({one_line(str(exc))})", file=sys.stderr)
                self.close(finished=False)

        return epoch_done

    def finish(self, run) -> None:
        """The run's figures as images, its evaluation's numbers and report, at the last epoch; then the tracker's
        run is closed as finished."""
        if self.session is None:
            return
        from vaelab import figures
        from vaelab.evaluate import read_eval

        step = self.last_epoch or _last_epoch(run)
        for name, _ in figures.captions():
            path = run.figure_path(name)
            if path.exists():
                self.session.image(f"figures/{name}", path, step)
        result = read_eval(run)
        if result is not None:
            self.session.scalars(flatten(_sections(result), "eval/"), step)
        if run.report_path.exists():
            self.session.file(run.report_path)
        self.close(finished=True)

    def close(self, finished: bool) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            session.close(finished)

    def __enter__(self) -> Tracked:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(finished=kind is None)


def start(log: Log | None, run_dir: RunDir, config: TrainConfig, resume: bool) -> Tracked:
    """The tracking of one run, its tracker run opened (or continued, with `resume`) before training starts; a
    no-op without `log`, and on every process but the main one. A tracker that cannot be reached is a one-line
    error here, before any work."""
    if log is None or not World.from_env().is_main:
        return Tracked()
    tracker = log.check()
    state_path = run_dir.path / STATE_FILE
    state = read_json(state_path) if resume and state_path.exists() else {}
    if not isinstance(state, dict):
        raise RunError(f"{state_path}: not a tracking record; delete it to start a new tracker run")
    saved = state.get(tracker.name) if isinstance(state.get(tracker.name), dict) else None
    first = read_state_info(run_dir.state_path)["epoch"] + 1 if resume else 1
    destination = Destination(run_dir.path, run_dir.path.name, log.uri, log.study, first)
    session, keep = tracker.open(destination, saved)
    try:
        session.hyper_parameters(hyper_parameters(config), resumed=saved is not None)
        run_dir.path.mkdir(parents=True, exist_ok=True)
        write_json(state_path, {**state, tracker.name: keep})
    except BaseException:
        session.close(False)
        raise
    return Tracked(session)


def _sections(result) -> dict[str, Any]:
    """An evaluation's sections as eval.json holds them (the header, the notes and the timing left out)."""
    saved = result.to_dict()
    return {name: saved[name] for name in result.sections}


def _last_epoch(run) -> int:
    _, epochs = run.read_metrics()
    return epochs[-1]["epoch"] if epochs else 0
