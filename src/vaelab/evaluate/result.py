"""An evaluation's result: a header (which run, split, images, seed), one typed section per metric, the notes.

eval.json is `EvalResult.to_dict()`, unchanged from earlier versions: the header's keys, then each section under
its metric's name, then "notes" and "seconds". `EvalResult.from_dict` reads it through the metric registry, so
an eval.json written by an older vaelab loads too; a section no registered metric knows is kept as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vaelab.evaluate import metrics
from vaelab.evaluate.metric import HEADER, RESERVED, Section


@dataclass
class EvalResult:
    run: str
    split: str
    n_images: int
    seed: int | None = None
    likelihood: str | None = None
    binarized: bool | None = None
    kind: str | None = None  # written since the kind registry (older files have none)
    sections: dict[str, Section | dict] = field(default_factory=dict)  # metric name -> its result, in order
    notes: list[str] = field(default_factory=list)
    seconds: float | None = None

    def __contains__(self, name: str) -> bool:
        return name in self.sections

    def get(self, name: str) -> Any:
        """The section of metric `name`, or None when this result has none."""
        return self.sections.get(name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {key: getattr(self, key) for key in HEADER if getattr(self, key) is not None}
        for name, section in self.sections.items():
            out[name] = section.to_dict() if isinstance(section, Section) else section
        out["notes"] = list(self.notes)
        if self.seconds is not None:
            out["seconds"] = self.seconds
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EvalResult:
        """Read an eval.json; a missing or mistyped required key is a KeyError / TypeError naming it."""
        if not isinstance(values, dict):
            raise TypeError(f"an evaluation must be a table, got {type(values).__name__}")
        header = {key: values[key] for key in HEADER if key in values}
        for key in ("split", "n_images"):
            if key not in header:
                raise KeyError(key)
        sections: dict[str, Section | dict] = {}
        for name, value in values.items():
            if name in RESERVED:
                continue
            metric = metrics.KNOWN.get(name)
            sections[name] = metric.result.from_dict(value) if metric else value
        notes = values.get("notes", [])
        if not isinstance(notes, list):
            raise TypeError(f"notes: expected a list, got {type(notes).__name__}")
        return cls(
            run=str(header.pop("run", "")), **header, sections=sections, notes=notes, seconds=values.get("seconds")
        )
