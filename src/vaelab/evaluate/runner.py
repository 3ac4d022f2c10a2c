"""`vaelab eval`: every registered metric the run's kind can have (`metrics.for_kind`), in one `EvalResult`."""

from __future__ import annotations

import time
from pathlib import Path

from vaelab import samplers, threads
from vaelab.checkpoint import check_writable
from vaelab.device import resolve_device
from vaelab.errors import ConfigError
from vaelab.evaluate import metrics, sample_quality
from vaelab.evaluate.metric import Context
from vaelab.evaluate.result import EvalResult
from vaelab.run import Run


def check_options(split: str, iwae_k: int, precision: str, features: str = "auto") -> None:
    if split not in ("train", "test"):
        raise ConfigError(f"split: must be train or test, got {split!r}")
    if not 1 <= iwae_k <= 1_000_000:
        raise ConfigError(f"iwae_k: must lie in 1..1000000, got {iwae_k}")
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision: must be fp32 or bf16, got {precision!r}")
    sample_quality.check_features(features)


def check_required(require, kind, dataset) -> None:
    """A one-line ConfigError for a required section that is unknown or that this run cannot have."""
    for name in require:
        metric = metrics.KNOWN.get(name)
        if metric is None:
            raise ConfigError(f"--require {name}: no such evaluation section (known: {', '.join(metrics.KNOWN)})")
        if not metric.applies(kind):
            missing = ", ".join(a for a in metric.needs if not getattr(kind, a))
            raise ConfigError(f"--require {name}: a {kind.name} run has no {missing}")
        why = metric.unavailable(dataset) if metric.unavailable else None
        if why:
            raise ConfigError(f"--require {name}: {why}")


def evaluate_run(
    run: Run | str | Path,
    split: str = "test",
    iwae_k: int = 1000,
    seed: int = 0,
    precision: str = "fp32",
    device: str = "auto",
    cache_dir: str | Path | None = None,
    write: bool = True,
    quiet: bool = True,
    require: tuple[str, ...] = (),
    features: str = "auto",
) -> EvalResult:
    """Every number of `vaelab eval` that the run's kind has; written to RUN/eval.json when `write` (checked
    to be writable before the work starts). Progress bars on stderr unless `quiet`. `require` names sections that
    must be measured: a run that cannot have one (its kind, its data) is refused before any work. `features`: the
    sample-quality feature space (auto, classifier, random: `sample_quality.feature_space`)."""
    check_options(split, iwae_k, precision, features)
    dev = resolve_device(device)
    run = run if isinstance(run, Run) else Run.open(run, dev)
    if write:
        check_writable(run.path)
    fitted = samplers.fitted(run.path)  # a damaged sampler file is refused before any work
    model, dataset = run.model.to(dev), run.dataset()
    check_required(require, run.kind, dataset)
    images = getattr(dataset, split).images
    sample_quality.feature_space(features, dataset)  # a classifier asked of unlabelled data: refused before work
    binarize = bool(getattr(run.config.options, "binarize", False))
    started = time.perf_counter()
    ctx = Context(
        run, model, dataset, images, split, seed, iwae_k, precision, dev, cache_dir, quiet, binarize, fitted, features
    )
    result = EvalResult(
        run=str(run.path),
        split=split,
        n_images=int(images.shape[0]),
        seed=seed,
        likelihood=model.likelihood,
        binarized=binarize,
        kind=run.kind.name,
    )
    threads.govern(None)
    for metric in metrics.for_kind(run.kind):
        threads.tick()
        section, notes = metric.measure(ctx)
        if section is not None:
            result.sections[metric.name] = section
        result.notes += notes
    if not run.kind.likelihood:
        measured = "latent usage, reconstruction and sample quality are" if run.kind.encoder else "sample quality is"
        result.notes.append(f"a {run.kind.name} run has no likelihood: only {measured} measured")
    result.seconds = time.perf_counter() - started
    if write:
        run.write_eval(result.to_dict())
    return result


def read_eval(run) -> EvalResult | None:
    """The saved evaluation of `run` (a `Run` or a `RunDir`) (eval.json, also as older versions wrote it), or None when it has none."""
    saved = run.read_eval()
    return None if saved is None else EvalResult.from_dict(saved)
