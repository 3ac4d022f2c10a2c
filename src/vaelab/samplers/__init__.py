"""Samplers fitted after training (ex-post density estimation, Ghosh et al. 2020; Dai & Wipf 2019): a density
fitted to the training set's posterior means, sampled instead of the prior when the encoder's aggregate
posterior does not fill p(z). One module per sampler, registered in `SAMPLERS`; each is saved in the run
directory as `sampler-<name>.safetensors` (parameters + JSON metadata, never pickled).

A sampler module has `check_options(components, seed, n_points=None)` (the fit's options against their real
bounds, before any work), `fit(means, components, seed)`, `save(sampler, path)` and `load(path, latent_dim)`,
which checks the file against the run's latent space as `model.safetensors` is checked against its model."""

from __future__ import annotations

from pathlib import Path

from vaelab.checkpoint import check_writable
from vaelab.errors import ConfigError, RunError
from vaelab.rundir import RunDir
from vaelab.samplers import gmm

SAMPLERS = {"gmm": gmm}

__all__ = ["SAMPLERS", "fitted", "get", "load", "sampler_path"]


def get(name: str, others: tuple[str, ...] = ("prior",)):
    """The module of sampler `name`; an unknown name lists the known ones (with `others`, what else the option
    takes: `vaelab sample --sampler prior`)."""
    try:
        return SAMPLERS[name]
    except KeyError:
        known = ", ".join([*SAMPLERS, *others])
        raise ConfigError(f"sampler: unknown sampler {name!r}; known samplers: {known}") from None


def sampler_path(run_path: str | Path, name: str) -> Path:
    return Path(run_path) / f"sampler-{name}.safetensors"


def latent_dim(run_path: str | Path) -> int:
    """The latent dimension of a run, from its config.json (what a sampler file is checked against)."""
    run = RunDir(run_path)
    dim = run.read_config()["model"].get("latent_dim")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise RunError(f"{run.config_path}: the model section has no latent_dim; is this a vaelab run directory?")
    return dim


def load(run_path: str | Path, name: str):
    """The sampler `name` fitted to a run (`vaelab fit-sampler RUN`), checked against the run's latent space; a
    missing or damaged file is a one-line error saying how to fit it."""
    module = get(name)
    path = sampler_path(run_path, name)
    if not path.exists():
        raise ConfigError(
            f"{path}: no {name} sampler fitted to this run; run `vaelab fit-sampler {run_path} --sampler {name}` first"
        )
    return module.load(path, latent_dim(run_path))


def fitted(run_path: str | Path) -> dict:
    """Every sampler fitted to a run, by name."""
    return {name: load(run_path, name) for name in SAMPLERS if sampler_path(run_path, name).exists()}


def fit_run(run, name: str = "gmm", components: int = 10, seed: int = 0) -> Path:
    """Fit sampler `name` to the posterior means of `run`'s training split; write RUN/sampler-<name>.safetensors.
    Every option is checked, and the run directory found writable, before the posterior means are computed."""
    from vaelab.evaluate.latents import posterior_stats

    module = get(name, others=())
    module.check_options(components, seed)
    if not run.kind.encoder:
        raise ConfigError(f"fit-sampler: a {run.kind.title} has no encoder, so no posterior means to fit a sampler to")
    images = run.dataset().train.images
    module.check_options(components, seed, images.shape[0])
    check_writable(run.path)
    device = next(run.model.parameters()).device
    means = posterior_stats(run.model, images, device=device)["means"]
    sampler = module.fit(means, components, seed)
    path = sampler_path(run.path, name)
    module.save(sampler, path)
    return path
