"""The registry of evaluation metrics: the sections of `vaelab eval`, in the order eval.json and the tables show them.

To add a metric: write one module ending with a `Metric(...)` (see `evaluate/metric.py`, and CONTRIBUTING.md) and
add it to `BUILT_IN` below. The runner measures every registered metric the run's kind can have; the text table,
the report, eval.json's reader and the comparison study's table all read these declarations.
"""

from __future__ import annotations

from vaelab.evaluate import disentanglement_section, latent_usage, likelihood, prior_mismatch, sample_quality
from vaelab.evaluate.metric import RESERVED, Metric

BUILT_IN = (
    likelihood.ELBO,
    likelihood.IWAE,
    latent_usage.LATENTS,
    latent_usage.RECONSTRUCTION,
    sample_quality.SAMPLES,
    sample_quality.SAMPLERS,
    prior_mismatch.PRIOR_MISMATCH,
    disentanglement_section.DISENTANGLEMENT,
)
KNOWN: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric (after those registered before it); its name is its key in eval.json."""
    if metric.name in RESERVED:
        raise ValueError(f"metric {metric.name}: the name is one of eval.json's own keys")
    KNOWN[metric.name] = metric
    return metric


def unregister(name: str) -> None:
    KNOWN.pop(name, None)


for _metric in BUILT_IN:
    register(_metric)


def for_kind(kind) -> list[Metric]:
    """The metrics a run of `kind` has, in order."""
    return [m for m in KNOWN.values() if m.applies(kind)]


def study_columns() -> list[str]:
    """The evaluation columns of a comparison study's table."""
    return [column for metric in KNOWN.values() for column in metric.columns]
