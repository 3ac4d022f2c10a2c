"""What an evaluation metric declares: one section of `vaelab eval`, its typed result, and how it is shown.

A metric is one module ending with a `Metric(...)` (registered in `evaluate/metrics.py`): its name (its key in
eval.json), the dataclass of its result, what the run's kind must offer (`needs`: "likelihood", "encoder"),
how it is measured from a `Context`, the rows it adds to the `vaelab eval` table and the report, and the columns
it adds to a comparison study's table. The runner, the text table, the HTML report and compare read these
declarations; none of them names a metric.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

NA = "n/a"  # a study's cell for a member without that number
# eval.json's own keys, around the sections: the header, then the sections, then "notes" and "seconds"
HEADER = ("run", "split", "n_images", "seed", "likelihood", "binarized", "kind")
RESERVED = (*HEADER, "notes", "seconds")


def optional(default: Any = None) -> Any:
    """A result field that eval.json leaves out while it is None (it exists for some runs or versions only)."""
    return field(default=default, metadata={"omit_if_none": True})


class Section:
    """Base of a metric's result: a dataclass whose fields are its keys in eval.json, in that order.

    `from_dict` reads what `to_dict` wrote (and what older versions wrote: a field marked `optional` may be
    missing); a required field that is missing is a KeyError naming it."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_if_none"):
                continue
            out[f.name] = value.to_dict() if isinstance(value, Section) else value
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        if not isinstance(values, dict):
            raise TypeError(f"{cls.__name__}: expected a table, got {type(values).__name__}")
        kept = {}
        for f in dataclasses.fields(cls):
            if f.name in values:
                kept[f.name] = values[f.name]
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KeyError(f.name)
        return cls(**kept)


@dataclass
class Context:
    """Everything a metric may measure with: the run, its model and data set, the split's images, the options."""

    run: Any  # vaelab.run.Run
    model: torch.nn.Module
    dataset: Any  # vaelab.data.Dataset
    images: torch.Tensor  # uint8 [N, C, H, W] of the evaluated split
    split: str
    seed: int
    iwae_k: int
    precision: str
    device: torch.device
    cache_dir: Any
    quiet: bool
    binarize: bool  # the run was trained on binarized images: its likelihoods are measured on a seeded binarization
    samplers: dict[str, Any]  # the samplers fitted to the run (`vaelab fit-sampler`), checked when the run was opened
    features: str = "auto"  # the sample-quality feature space (`vaelab eval --features`)


@dataclass(frozen=True)
class Metric:
    name: str  # its key in eval.json
    result: type  # a Section dataclass
    measure: Callable[[Context], tuple[Section | None, list[str]]]  # the result (None: nothing to report) + notes
    rows: Callable[[Section], list[tuple[str, str]]]  # (quantity, formatted value) for the table and the report
    needs: tuple[str, ...] = ()  # abilities the kind must have (`Kind` attributes): "likelihood", "encoder"
    columns: tuple[str, ...] = ()  # its columns in a comparison study's table
    cells: Callable[[Section], list[Any]] | None = None  # the values of `columns` for one member
    # why the run's data set cannot have this section (None: it can); `measure` then returns None, and
    # `vaelab eval --require NAME` refuses the run in one line before any work
    unavailable: Callable[[Any], str | None] | None = None

    def applies(self, kind) -> bool:
        return all(getattr(kind, ability) for ability in self.needs)

    def study_cells(self, section: Section | None) -> list[Any]:
        """This metric's cells of a member's row: n/a where the member has no such section."""
        if section is None or self.cells is None:
            return [NA] * len(self.columns)
        return list(self.cells(section))
