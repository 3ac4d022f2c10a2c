"""A Gaussian mixture fitted to the training set's posterior means, after training (Ghosh et al. 2020, sec. 5:
"ex-post density estimation"): sampling it instead of N(0, I) draws latents where the encoder put the data.

Fitted with scikit-learn's `GaussianMixture` (EM, full covariances; the optional extra `vaelab[samplers]`);
its weights, means and covariances are saved in safetensors and sampled with torch, so loading and sampling
need no scikit-learn."""

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


class GMMSampler:
    """A fitted mixture: `weights` `[K]`, `means` `[K, D]`, `covariances` `[K, D, D]`."""

    name = "gmm"

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor, info: dict[str, Any]):
        self.weights, self.means, self.covariances, self.info = (
            weights.double(),
            means.double(),
            covariances.double(),
            info,
        )
        self.cholesky = torch.linalg.cholesky(self.covariances)
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


def fit(means: torch.Tensor, components: int = 10, seed: int = 0) -> GMMSampler:
    """Fit a `components`-Gaussian mixture (full covariances) to posterior means `[N, D]`."""
    if not 1 <= components <= MAX_COMPONENTS:
        raise ConfigError(f"components: must lie in 1..{MAX_COMPONENTS}, got {components}")
    if components > means.shape[0]:
        raise ConfigError(f"components: {components} is more than the {means.shape[0]} training images")
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
    return GMMSampler(
        torch.from_numpy(mixture.weights_),
        torch.from_numpy(mixture.means_),
        torch.from_numpy(mixture.covariances_),
        info,
    )


def save(sampler: GMMSampler, path: str | Path) -> None:
    tensors = {
        "weights": sampler.weights.contiguous(),
        "means": sampler.means.contiguous(),
        "covariances": sampler.covariances.contiguous(),
    }
    atomic_write(Path(path), lambda temp: save_file(tensors, temp, metadata={"info": json.dumps(sampler.info)}))


def load(path: str | Path) -> GMMSampler:
    tensors, metadata = read_safetensors(Path(path))
    try:
        weights, means, covariances = tensors["weights"], tensors["means"], tensors["covariances"]
        info = json.loads(metadata.get("info", "{}"))
        k, d = means.shape
        if (
            weights.shape != (k,)
            or covariances.shape != (k, d, d)
            or not math.isclose(float(weights.sum()), 1.0, abs_tol=1e-6)
        ):
            raise ValueError("shapes or weights do not make a mixture")
        return GMMSampler(weights, means, covariances, info)
    except (KeyError, ValueError, json.JSONDecodeError, torch.linalg.LinAlgError) as exc:
        raise RunError(
            f"{path}: not a vaelab Gaussian-mixture sampler ({exc}); fit it again with `vaelab fit-sampler`"
        ) from None
