"""What a figure declares: everything the report, the command line and a kind's figure list know of it.

A figure is one `Figure(...)` in `figures.py` (or registered with `figures.register`): its file name, the
report's caption, what the run's kind must offer, what the model and data must offer, its draw function and,
when it has one, the `vaelab` command that draws it alone with that command's options. The report's figures and
captions, the `vaelab sample | reconstruct | interpolate | manifold | latents` commands and the figures of every
run are derived from these declarations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Argument:
    """One option of a figure's command, as `argparse.ArgumentParser.add_argument` takes it; its value is
    passed to the draw function under its `dest`."""

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def argument(*flags: str, **options: Any) -> Argument:
    return Argument(flags, options)


@dataclass(frozen=True)
class Figure:
    name: str  # the file: RUN/<name>.png
    caption: str  # the report's caption
    draw: Callable[..., Path | tuple[Path, ...]]  # draw(run, out=None, **options) -> the file(s) it wrote
    needs: tuple[str, ...] = ()  # abilities the run's kind must have (`Kind` attributes): "encoder", "labels"
    when: Callable[[Any], bool] | None = None  # what the run's model and data must offer too (e.g. 2 test images)
    also: tuple[tuple[str, str], ...] = ()  # other files the draw writes, as (name, caption)
    default: bool = True  # drawn for every run (False: drawn on demand only)
    command: str | None = None  # `vaelab COMMAND RUN` draws it alone
    help: str = ""  # the command's help line
    arguments: tuple[Argument, ...] = ()  # the command's own options

    def applies(self, kind) -> bool:
        return all(getattr(kind, ability) for ability in self.needs)

    def files(self) -> list[tuple[str, str]]:
        """(name, caption) of every file the figure writes, in the report's order."""
        return [(self.name, self.caption), *self.also]


@dataclass(frozen=True)
class StudyFigure:
    """A figure of a comparison study: all members side by side, in STUDY/<name>.png under its report heading."""

    name: str
    title: str  # the report's heading
    caption: str
    draw: Callable[..., bool]  # draw(path, runs, dataset, seed) -> whether it had anything to draw
