"""What a tracker declares, and what an open tracker run does (`Session`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Destination:
    """Where a run is tracked: its run directory and name, the `--log-uri` given (None: the tracker's default),
    and the folder of the comparison study it belongs to (None for a run of its own)."""

    run_dir: Path
    name: str
    uri: str | None
    study: str | None
    first_epoch: int  # the epoch the run logs next (a resumed run's earlier events after it are superseded)


class Session(Protocol):
    """An open tracker run. Steps are epochs."""

    def hyper_parameters(self, values: dict[str, Any], resumed: bool) -> None: ...
    def scalars(self, values: dict[str, float], step: int) -> None: ...
    def image(self, name: str, path: Path, step: int) -> None: ...
    def file(self, path: Path) -> None: ...
    def flush(self) -> None: ...
    def close(self, finished: bool) -> None: ...


@dataclass(frozen=True)
class Tracker:
    name: str  # the value of --log
    help: str
    extra: str  # pip install 'vaelab[EXTRA]'
    modules: tuple[str, ...]  # what must import for it to work
    # open(destination, saved) -> (the session, what to save in RUN/tracking.json to continue it on --resume);
    # `saved` is what a previous open returned, or None for a new tracker run
    open: Callable[[Destination, dict[str, Any] | None], tuple[Session, dict[str, Any]]]
