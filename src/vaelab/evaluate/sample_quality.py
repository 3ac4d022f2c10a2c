"""Sample quality in `vaelab eval`: Frechet distance, precision and recall of samples against the split's images,
in the features of a classifier trained once per data set (cached). Two metrics:

- `samples`: samples from the model's own prior (every kind has it);
- `samplers`: samples decoded from every sampler fitted to the run (`vaelab fit-sampler`), when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from vaelab import data
from vaelab.evaluate import classifier as feature_net
from vaelab.evaluate.frechet import frechet_distance, precision_recall
from vaelab.evaluate.metric import Context, Metric, Section, optional


@dataclass
class SampleQuality(Section):
    available: bool
    why: str | None = optional()  # why it was not measured
    fd_classifier: float | None = optional()
    precision: float | None = optional()
    recall: float | None = optional()
    n_samples: int | None = optional()
    classifier_test_accuracy: float | None = optional()
    feature_space: str | None = optional()


def sample_quality(
    model, dataset: data.Dataset, images: torch.Tensor, seed: int, cache_dir, device, quiet: bool = True
) -> SampleQuality:
    """FD, precision and recall of as many samples of `model` as there are `images`."""
    if dataset.train.labels is None:
        return SampleQuality(available=False, why="the data set has no labels to train the feature classifier on")
    if images.shape[0] < 2 or dataset.num_classes is None or dataset.num_classes < 2:
        return SampleQuality(available=False, why="sample quality needs at least 2 images and 2 classes")
    net, info = feature_net.load_or_train(dataset, cache_dir, device, quiet)
    real = feature_net.features(net, data.to_float(images), device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    samples = torch.cat(
        [model.sample(min(1000, images.shape[0] - s), generator) for s in range(0, images.shape[0], 1000)]
    )
    fake = feature_net.features(net, samples, device=device)
    precision, recall = precision_recall(real, fake)
    return SampleQuality(
        available=True,
        fd_classifier=frechet_distance(real, fake),
        precision=precision,
        recall=recall,
        n_samples=int(samples.shape[0]),
        classifier_test_accuracy=info["test_accuracy"],
        feature_space=f"penultimate layer ({info['features']} units) of a CNN trained on {dataset.name}'s training split",
    )


def quality_rows(s: SampleQuality) -> list[tuple[str, str]]:
    if not s.available:
        return [("sample quality", f"unavailable: {s.why}")]
    return [
        ("FD (classifier features)", f"{s.fd_classifier:.3f}"),
        ("precision / recall", f"{s.precision:.3f} / {s.recall:.3f}"),
        ("feature classifier accuracy", f"{s.classifier_test_accuracy:.4f}"),
    ]


class SamplerModel:
    """A model whose `sample` decodes a fitted sampler's latents instead of the prior's."""

    def __init__(self, model, sampler):
        self.model, self.sampler = model, sampler

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.model.sample(n, z=self.sampler.sample(n, generator))


@dataclass
class SamplerQuality:
    """One fitted sampler: its description, what its fit recorded, and the quality of its samples (eval.json
    keeps the three in one table)."""

    description: str
    info: dict[str, Any]
    quality: SampleQuality

    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, **self.info, **self.quality.to_dict()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplerQuality:
        quality_keys = SampleQuality.__dataclass_fields__
        info = {k: v for k, v in values.items() if k != "description" and k not in quality_keys}
        quality = SampleQuality.from_dict({k: v for k, v in values.items() if k in quality_keys})
        return cls(description=str(values["description"]), info=info, quality=quality)


@dataclass
class SamplersResult(Section):
    samplers: dict[str, SamplerQuality] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {name: s.to_dict() for name, s in self.samplers.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplersResult:
        if not isinstance(values, dict):
            raise TypeError(f"samplers: expected a table, got {type(values).__name__}")
        return cls({name: SamplerQuality.from_dict(s) for name, s in values.items()})


def measure_samplers(ctx: Context) -> tuple[SamplersResult | None, list[str]]:
    fitted = ctx.samplers
    if not fitted:
        return None, []
    found = {
        name: SamplerQuality(
            sampler.description,
            dict(sampler.info),
            sample_quality(
                SamplerModel(ctx.model, sampler),
                ctx.dataset,
                ctx.images,
                ctx.seed,
                ctx.cache_dir,
                ctx.device,
                ctx.quiet,
            ),
        )
        for name, sampler in fitted.items()
    }
    return SamplersResult(found), []


def samplers_rows(result: SamplersResult) -> list[tuple[str, str]]:
    return [
        (f"sampler {name}: FD / precision / recall", f"{q.fd_classifier:.3f} / {q.precision:.3f} / {q.recall:.3f}")
        for name, q in ((name, s.quality) for name, s in result.samplers.items())
        if q.available
    ]


SAMPLES = Metric(
    name="samples",
    result=SampleQuality,
    measure=lambda ctx: (
        sample_quality(ctx.model, ctx.dataset, ctx.images, ctx.seed, ctx.cache_dir, ctx.device, ctx.quiet),
        [],
    ),
    rows=quality_rows,
    columns=("FD (classifier)", "precision", "recall"),
    cells=lambda s: [s.fd_classifier, s.precision, s.recall] if s.available else ["n/a"] * 3,
)
SAMPLERS = Metric(name="samplers", result=SamplersResult, measure=measure_samplers, rows=samplers_rows)
