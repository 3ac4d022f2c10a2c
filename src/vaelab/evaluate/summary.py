"""An evaluation result as rows of (quantity, value): the one source of the `vaelab eval` table and the
report's evaluation table. Each section's rows are its metric's (`Metric.rows`)."""

from __future__ import annotations

from vaelab.evaluate import metrics
from vaelab.evaluate.metric import Section
from vaelab.evaluate.result import EvalResult


def eval_rows(result: EvalResult) -> list[tuple[str, str]]:
    """Every number of an evaluation, formatted, in the registry's order; a section no registered metric knows
    is shown as it was saved."""
    rows: list[tuple[str, str]] = []
    for name, section in result.sections.items():
        metric = metrics.KNOWN.get(name)
        if metric is not None and isinstance(section, Section):
            rows += metric.rows(section)
        else:
            rows.append((name, str(section)))
    return rows


def format_table(result: EvalResult) -> str:
    """The text table `vaelab eval` prints."""
    rows = eval_rows(result)
    width = max(len(name) for name, _ in rows)
    head = f"{result.run}: {result.split} split, {result.n_images} images, seed {result.seed}"
    lines = [head] + [f"  {name:<{width}}  {value}" for name, value in rows]
    lines += [f"  note: {note}" for note in result.notes]
    return "\n".join(lines)
