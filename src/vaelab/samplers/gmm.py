"""A Gaussian mixture fitted to the training set's posterior means, after training (Ghosh et al. 2020, sec. 5:
"ex-post density estimation"): sampling it instead of N(0, I) draws latents where the encoder put the data.

Fitted with scikit-learn's `GaussianMixture` (EM, full covariances; the optional extra `vaelab[samplers]`);
its weights, means and covariances are saved in safetensors and sampled with torch, so loading and sampling
need no scikit-learn. A file is checked on load as a model's weights are, and a `GMMSampler` is valid by
construction (`check_mixture`): a mixture that loads samples finite latents; any other file is a one-line error
naming it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from vaelab.checkpoint import atomic_write, read_safetensors
from vaelab.errors import ConfigError, RunError

MAX_COMPONENTS = 1000
SEED_MAX = 2**32 - 1  # numpy's RandomState, which scikit-learn's random_state becomes, takes 0..2**32-1
# Posterior means of a trained VAE are O(1) (O(100) with a KL weight near 0). Bounding every mean and standard
# deviation keeps a draw mean + L eps below ~1e8, far from float32's overflow, and the decoder's input sane.
MAX_MAGNITUDE = 1e6
WEIGHT_TOLERANCE = 1e-6  # |sum of weights - 1|: float32 rounding of 1000 weights stays well below it
SYMMETRY_TOLERANCE = 1e-6  # |C - C^T|, relative to the largest variance of the component
TENSORS = ("weights", "means", "covariances")
DTYPES = (torch.float32, torch.float64)
HEADER_BYTES = 1 << 20  # a generous allowance for the safetensors header and the JSON metadata
INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "sampler": str,
    "components": int,
    "seed": int,
    "n_fitted": int,
    "converged": bool,
    "iterations": int,
    "mean_log_likelihood": (int, float),
}


class InvalidMixture(ValueError):
    """What keeps three tensors from being a mixture that samples finite latents (one line)."""


class GMMSampler:
    """A fitted mixture: `weights` `[K]`, `means` `[K, D]`, `covariances` `[K, D, D]`; `InvalidMixture` if they do
    not make one (`check_mixture`)."""

    name = "gmm"

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor, info: dict[str, Any]):
        self.weights, self.means, self.covariances, self.info = (
            weights.double(),
            means.double(),
            covariances.double(),
            info,
        )
        self.cholesky = check_mixture(self.weights, self.means, self.covariances)  # [K, D, D]
        self.description = f"a {len(weights)}-component Gaussian mixture fitted to the training posterior means"

    @property
    def latent_dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`[n, D]` latents (float32, on the generator's device): a component by its weight, then its Gaussian."""
        device = generator.device if generator is not None else torch.device("cpu")
        component = torch.multinomial(self.weights.to(device), n, replacement=True, generator=generator)
        eps = torch.randn(n, self.latent_dim, generator=generator, device=device, dtype=torch.float64)
        component = component.cpu()
        z = self.means[component] + (self.cholesky[component] @ eps.cpu()[:, :, None])[:, :, 0]
        return z.float().to(device)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log density of `[N, D]` latents under the mixture."""
        mixture = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(probs=self.weights),
            torch.distributions.MultivariateNormal(self.means, scale_tril=self.cholesky),
        )
        return mixture.log_prob(z.double().cpu())


def check_options(components: int, seed: int, n_points: int | None = None) -> None:
    """The options of a fit against their real bounds, before any work (`n_points`: the training images)."""
    if not 1 <= components <= MAX_COMPONENTS:
        raise ConfigError(f"components: must lie in 1..{MAX_COMPONENTS}, got {components}")
    if not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed: must lie in 0..{SEED_MAX} (the range scikit-learn's fit takes), got {seed}")
    if n_points is not None and components > n_points:
        raise ConfigError(f"components: {components} is more than the {n_points} training images")


def fit(means: torch.Tensor, components: int = 10, seed: int = 0) -> GMMSampler:
    """Fit a `components`-Gaussian mixture (full covariances) to posterior means `[N, D]`."""
    check_options(components, seed, means.shape[0])
    if not torch.isfinite(means).all() or means.abs().max() > MAX_MAGNITUDE:
        raise RunError(
            f"the posterior means of the training images are not finite or exceed {MAX_MAGNITUDE:g} in magnitude "
            "(a damaged model); train the run again"
        )
    try:
        from sklearn.mixture import GaussianMixture
    except ImportError:
        raise ConfigError("fit-sampler needs scikit-learn: pip install 'vaelab[samplers]'") from None
    array = means.double().cpu().numpy()
    mixture = GaussianMixture(components, covariance_type="full", reg_covar=1e-6, random_state=seed, max_iter=200)
    mixture.fit(array)
    info = {
        "sampler": "gmm",
        "components": components,
        "seed": seed,
        "n_fitted": int(array.shape[0]),
        "converged": bool(mixture.converged_),
        "iterations": int(mixture.n_iter_),
        "mean_log_likelihood": float(mixture.score(array)),
    }
    try:
        return GMMSampler(
            *(torch.from_numpy(a) for a in (mixture.weights_, mixture.means_, mixture.covariances_)), info
        )
    except InvalidMixture as exc:  # the means were checked above, so this is a failure of EM, not of the data
        raise RunError(
            f"fit-sampler: the fitted mixture is not usable ({exc}); try another --seed or fewer --components"
        ) from None


def save(sampler: GMMSampler, path: str | Path) -> None:
    tensors = {
        "weights": sampler.weights.contiguous(),
        "means": sampler.means.contiguous(),
        "covariances": sampler.covariances.contiguous(),
    }
    atomic_write(Path(path), lambda temp: save_file(tensors, temp, metadata={"info": json.dumps(sampler.info)}))


def max_file_bytes(latent_dim: int) -> int:
    """The size of the largest valid file in `latent_dim` dimensions (float64, MAX_COMPONENTS components)."""
    return 8 * MAX_COMPONENTS * (1 + latent_dim + latent_dim**2) + HEADER_BYTES


def load(path: str | Path, latent_dim: int | None = None) -> GMMSampler:
    """The mixture saved at `path`, checked (for a run's latent space of `latent_dim` dimensions, when given);
    any fault is a one-line RunError naming the file, the fault and how to fit it again."""
    path = Path(path)

    def refused(fault: str) -> RunError:
        return RunError(f"{path}: {fault}; fit it again with `vaelab fit-sampler {path.parent}`")

    if latent_dim is not None and path.is_file() and path.stat().st_size > max_file_bytes(latent_dim):
        size = path.stat().st_size
        raise refused(
            f"{size:,} bytes, more than a mixture of at most {MAX_COMPONENTS} components in {latent_dim} dimensions holds"
        )
    try:
        tensors, metadata = read_safetensors(path)
    except RunError as exc:
        raise RunError(f"{exc}; fit it again with `vaelab fit-sampler {path.parent}`") from None
    fault = tensors_fault(tensors, latent_dim)
    if fault:
        raise refused(fault)
    info, fault = read_info(metadata, len(tensors["weights"]))
    try:
        sampler = GMMSampler(*(tensors[key] for key in TENSORS), info)
    except InvalidMixture as exc:
        raise refused(str(exc)) from None
    if fault:
        raise refused(fault)
    return sampler


def tensors_fault(tensors: dict[str, torch.Tensor], latent_dim: int | None) -> str | None:
    """What keeps `tensors` from being a mixture's in `latent_dim` dimensions (keys, dtypes, shapes), or None."""
    missing = [k for k in TENSORS if k not in tensors]
    unexpected = [k for k in tensors if k not in TENSORS]
    if missing or unexpected:
        what = f"no tensor {missing[0]!r}" if missing else f"an unexpected tensor {unexpected[0]!r}"
        return f"holds {what} (a Gaussian-mixture sampler holds exactly {', '.join(TENSORS)})"
    for key in TENSORS:
        if tensors[key].dtype not in DTYPES:
            return f"{key} are {str(tensors[key].dtype).removeprefix('torch.')}, not float32 or float64"
    means = tensors["means"]
    if means.dim() != 2 or not 1 <= means.shape[0] <= MAX_COMPONENTS or means.shape[1] < 1:
        return f"means have shape {list(means.shape)}, not [components (1..{MAX_COMPONENTS}), latent dimensions]"
    k, d = means.shape
    if latent_dim is not None and d != latent_dim:
        return f"means are {d}-dimensional, but the run's latent space has {latent_dim} dimensions"
    for key, shape in (("weights", [k]), ("covariances", [k, d, d])):
        if list(tensors[key].shape) != shape:
            return f"{key} have shape {list(tensors[key].shape)}, but {k} components of {d} dimensions need {shape}"
    return None


def check_mixture(weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor) -> torch.Tensor:
    """The Cholesky factors `[K, D, D]` of float64 `covariances`, when with `weights` `[K]` and `means` `[K, D]` they
    make a mixture that samples finite latents (finite and bounded values, weights summing to 1, covariances
    symmetric positive-definite); otherwise `InvalidMixture` saying why."""
    for key, value in zip(TENSORS, (weights, means, covariances), strict=True):
        if not torch.isfinite(value).all():
            raise InvalidMixture(f"{key} hold non-finite values (NaN or inf)")
    total = float(weights.sum())
    if float(weights.min()) < 0 or not math.isclose(total, 1.0, rel_tol=0, abs_tol=WEIGHT_TOLERANCE):
        low = f"; weight {int(weights.argmin())} is {float(weights.min()):g}" if float(weights.min()) < 0 else ""
        raise InvalidMixture(f"weights must be >= 0 and sum to 1 (sum {total:.6g}{low})")
    largest = float(means.abs().max())
    if largest > MAX_MAGNITUDE:
        raise InvalidMixture(f"means reach {largest:.3g}, beyond the {MAX_MAGNITUDE:g} a latent space holds")
    variances = covariances.diagonal(dim1=1, dim2=2)  # [K, D]
    if float(variances.max()) > MAX_MAGNITUDE**2:
        raise InvalidMixture(
            f"covariances hold a variance of {float(variances.max()):.3g}, beyond {MAX_MAGNITUDE**2:g}"
        )
    asymmetry = (covariances - covariances.mT).abs().amax(dim=(1, 2))  # [K]
    scale = variances.abs().amax(dim=1)
    if (asymmetry > SYMMETRY_TOLERANCE * scale).any():
        raise InvalidMixture(f"covariance {int((asymmetry - SYMMETRY_TOLERANCE * scale).argmax())} is not symmetric")
    cholesky, failed = torch.linalg.cholesky_ex(covariances)
    if bool(failed.any()) or not torch.isfinite(cholesky).all():
        raise InvalidMixture(f"covariance {int(failed.nonzero()[0]) if failed.any() else 0} is not positive-definite")
    return cholesky


def read_info(metadata: dict[str, str], components: int) -> tuple[dict[str, Any], str | None]:
    """(the fit's description from the file's metadata, the fault that keeps it from being one or None);
    keys other than INFO_TYPES' are dropped, so that nothing else reaches eval.json."""
    try:
        raw = json.loads(metadata.get("info", "{}"))
    except json.JSONDecodeError:
        return {}, "its metadata 'info' is not valid JSON"
    if not isinstance(raw, dict):
        return {}, "its metadata 'info' is not a JSON object"
    info = {key: raw[key] for key in INFO_TYPES if key in raw}
    for key, value in info.items():
        wanted = INFO_TYPES[key]
        if not isinstance(value, wanted) or (isinstance(value, bool) and wanted is not bool):
            return {}, f"its metadata 'info' holds {key} = {str(value)[:40]!r}, not a {key} of a fit"
        if isinstance(value, float) and not math.isfinite(value):
            return {}, f"its metadata 'info' holds {key} = {value}, not a finite number"
    if info.get("sampler", "gmm") != "gmm":
        return {}, f"its metadata describes a {str(info['sampler'])[:40]!r} sampler, not a Gaussian mixture"
    if info.get("components", components) != components:
        return {}, f"its metadata says {info['components']} components, but it holds {components}"
    return info, None
