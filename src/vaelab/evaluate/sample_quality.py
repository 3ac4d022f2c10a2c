"""Sample quality in `vaelab eval`: Frechet distance, precision and recall of samples against the split's images,
in a feature space made once per data set (cached): a classifier's penultimate layer when the data has labels
of at least 2 classes, else the principal components of a fixed random CNN's statistics (`random_features`);
`--features` chooses. Two metrics:

- `samples`: samples from the model's own prior (every kind has it);
- `samplers`: samples decoded from every sampler fitted to the run (`vaelab fit-sampler`), when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from vaelab import data
from vaelab.errors import ConfigError
from vaelab.evaluate import classifier as feature_net
from vaelab.evaluate import random_features
from vaelab.evaluate.frechet import frechet_distance, precision_recall
from vaelab.evaluate.metric import Context, Metric, Section, optional

FEATURES = ("auto", "classifier", "random", "inception")
INCEPTION_MISSING = (
    "--features inception: vaelab has no Inception-v3 network to load FID weights into (torchvision is not a "
    "dependency and the network is not written yet); use --features random or classifier (or auto)"
)


def check_features(choice: str) -> None:
    """Refuse an unknown or unavailable feature space before any work."""
    if choice not in FEATURES:
        raise ConfigError(f"features: must be one of {', '.join(FEATURES)}, got {choice!r}")
    if choice == "inception":
        raise ConfigError(INCEPTION_MISSING)


def labelled(dataset: data.Dataset) -> bool:
    """Whether a classifier can be trained on the data set: labels of at least 2 classes."""
    return dataset.train.labels is not None and dataset.num_classes is not None and dataset.num_classes >= 2


def feature_space(choice: str, dataset: data.Dataset) -> str:
    """The feature space `choice` means for `dataset`: `auto` is the classifier when there are labels of at least
    2 classes, else the random CNN; the classifier on data without them is refused in one line."""
    check_features(choice)
    if choice == "auto":
        return "classifier" if labelled(dataset) else "random"
    if choice == "classifier" and not labelled(dataset):
        raise ConfigError(
            f"--features classifier: {dataset.name} has no labels of 2 or more classes to train a classifier on; "
            "use --features random (or auto)"
        )
    return choice


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
    fd: float | None = optional()  # FD in the label-free features (`fd_classifier` in the classifier's)
    features: str | None = optional()  # which: "random" (left out for the classifier, as eval.json always was)

    @property
    def distance(self) -> float | None:
        """The Frechet distance, whichever feature space measured it."""
        return self.fd_classifier if self.fd_classifier is not None else self.fd


def sample_quality(
    model,
    dataset: data.Dataset,
    images: torch.Tensor,
    seed: int,
    cache_dir,
    device,
    quiet: bool = True,
    features: str = "auto",
) -> SampleQuality:
    """FD, precision and recall of as many samples of `model` as there are `images`, in `features`' space."""
    space = feature_space(features, dataset)
    if images.shape[0] < 2:
        return SampleQuality(available=False, why="sample quality needs at least 2 images")
    if space == "random":
        net, _ = random_features.load_or_build(dataset, cache_dir, device)
        real = random_features.features(net, images, device=device)
        samples = _samples(model, images.shape[0], seed, device)
        fake = random_features.features(net, samples, device=device)
        precision, recall = precision_recall(real, fake)
        return SampleQuality(
            available=True,
            precision=precision,
            recall=recall,
            n_samples=int(samples.shape[0]),
            feature_space=f"{random_features.COMPONENTS} whitened principal components of a fixed random CNN's "
            f"channel statistics, fitted on {dataset.name}'s training split (not Inception: compare within a data set)",
            fd=frechet_distance(real, fake),
            features="random",
        )
    net, info = feature_net.load_or_train(dataset, cache_dir, device, quiet)
    real = feature_net.features(net, data.to_float(images), device=device)
    samples = _samples(model, images.shape[0], seed, device)
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


def _samples(model, n: int, seed: int, device) -> torch.Tensor:
    generator = torch.Generator(device=device).manual_seed(seed)
    return torch.cat([model.sample(min(1000, n - s), generator) for s in range(0, n, 1000)])


def quality_rows(s: SampleQuality) -> list[tuple[str, str]]:
    if not s.available:
        return [("sample quality", f"unavailable: {s.why}")]
    if s.fd_classifier is None:
        return [
            ("FD (random-CNN features)", f"{s.fd:.3f}"),
            ("precision / recall", f"{s.precision:.3f} / {s.recall:.3f}"),
        ]
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
                ctx.features,
            ),
        )
        for name, sampler in fitted.items()
    }
    return SamplersResult(found), []


def samplers_rows(result: SamplersResult) -> list[tuple[str, str]]:
    return [
        (f"sampler {name}: FD / precision / recall", f"{q.distance:.3f} / {q.precision:.3f} / {q.recall:.3f}")
        for name, q in ((name, s.quality) for name, s in result.samplers.items())
        if q.available
    ]


SAMPLES = Metric(
    name="samples",
    result=SampleQuality,
    measure=lambda ctx: (
        sample_quality(
            ctx.model, ctx.dataset, ctx.images, ctx.seed, ctx.cache_dir, ctx.device, ctx.quiet, ctx.features
        ),
        [],
    ),
    rows=quality_rows,
    columns=("FD (classifier)", "precision", "recall"),
    cells=lambda s: [s.distance, s.precision, s.recall] if s.available else ["n/a"] * 3,
)
SAMPLERS = Metric(name="samplers", result=SamplersResult, measure=measure_samplers, rows=samplers_rows)
