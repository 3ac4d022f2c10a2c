"""Samplers fitted after training (ex-post density estimation, Ghosh et al. 2020; Dai & Wipf 2019): a density
fitted to the training set's posterior means, sampled instead of the prior when the encoder's aggregate
posterior does not fill p(z). One module per sampler, registered in `SAMPLERS`; each is saved in the run
directory as `sampler-<name>.safetensors` (parameters + JSON metadata, never pickled)."""

from __future__ import annotations

from pathlib import Path

from vaelab.errors import ConfigError
from vaelab.samplers import gmm

SAMPLERS = {"gmm": gmm}

__all__ = ["SAMPLERS", "fitted", "get", "load", "sampler_path"]


def get(name: str):
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ConfigError(f"sampler: unknown sampler {name!r}; known samplers: {', '.join(SAMPLERS)}, prior") from None


def sampler_path(run_path: str | Path, name: str) -> Path:
    return Path(run_path) / f"sampler-{name}.safetensors"


def load(run_path: str | Path, name: str):
    """The sampler `name` fitted to a run (`vaelab fit-sampler RUN`), or a one-line error saying how to fit it."""
    module = get(name)
    path = sampler_path(run_path, name)
    if not path.exists():
        raise ConfigError(
            f"{path}: no {name} sampler fitted to this run; run `vaelab fit-sampler {run_path} --sampler {name}` first"
        )
    return module.load(path)


def fitted(run_path: str | Path) -> dict:
    """Every sampler fitted to a run, by name."""
    return {name: load(run_path, name) for name in SAMPLERS if sampler_path(run_path, name).exists()}


def fit_run(run, name: str = "gmm", components: int = 10, seed: int = 0) -> Path:
    """Fit sampler `name` to the posterior means of `run`'s training split; write RUN/sampler-<name>.safetensors."""
    from vaelab.evaluate.latents import posterior_stats

    module = get(name)
    if not run.kind.encoder:
        raise ConfigError(f"fit-sampler: a {run.kind.title} has no encoder, so no posterior means to fit a sampler to")
    device = next(run.model.parameters()).device
    means = posterior_stats(run.model, run.dataset().train.images, device=device)["means"]
    sampler = module.fit(means, components, seed)
    path = sampler_path(run.path, name)
    module.save(sampler, path)
    return path
