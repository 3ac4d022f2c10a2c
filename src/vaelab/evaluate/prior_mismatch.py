"""How far the prior is from where the encoder puts the data (the "holes" of Rezende & Viola 2018; the reason
ex-post samplers help, Ghosh et al. 2020): the observation of the course's lab report that with 10 latent
dimensions the samples do not improve with the reconstructions, measured.

- `gaussian_kl`: KL(N(m_p, S_p) || N(m_q, S_q)) between Gaussians fitted to the prior's samples and to the
  aggregate posterior q(z) = (1/N) sum_i q(z | x_i) (moments: mean of the means; covariance of the means plus
  the mean posterior variance). 0 when the two match to second order.
- `holes`: the share of prior samples where the aggregate posterior has (almost) no mass: log q(z) below the
  level that 99% of samples from the aggregate posterior itself exceed (measured on held-out images, so no
  sample is scored against its own component).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

from vaelab import data
from vaelab.evaluate.metric import Context, Metric, Section

LOG_2PI = math.log(2 * math.pi)
LEVEL = 0.01  # the share of the aggregate posterior's own samples below the "no mass" level


def aggregate_posterior(model, images: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and log-variances `[N, D]` (float64, CPU) of `images`."""
    means, logvars = [], []
    with torch.inference_mode():
        for x, _ in data.batches(images, 1000, device=device):
            q = model.encode(x)
            means.append(q.mean.double().cpu())
            logvars.append(q.logvar.double().cpu())
    return torch.cat(means), torch.cat(logvars)


def mixture_log_density(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """log (1/N) sum_i N(z; means_i, diag exp(logvars_i)) for `z` `[M, D]` (float64), in chunks of z."""
    precision = torch.exp(-logvars)
    log_norm = -0.5 * (logvars.sum(1) + means.shape[1] * LOG_2PI)
    out = []
    for start in range(0, z.shape[0], chunk):
        block = z[start : start + chunk].double()
        quad = block.pow(2) @ precision.T - 2 * block @ (means * precision).T + (means.pow(2) * precision).sum(1)
        out.append(torch.logsumexp(log_norm - 0.5 * quad, dim=1) - math.log(means.shape[0]))
    return torch.cat(out)


def gaussian_kl(m0: torch.Tensor, s0: torch.Tensor, m1: torch.Tensor, s1: torch.Tensor) -> float:
    """KL(N(m0, s0) || N(m1, s1)) in nats (full covariances)."""
    d = m0.shape[0]
    inv1 = torch.linalg.inv(s1)
    diff = m1 - m0
    logdet = torch.linalg.slogdet(s1)[1] - torch.linalg.slogdet(s0)[1]
    return float(0.5 * (torch.trace(inv1 @ s0) + diff @ inv1 @ diff - d + logdet))


def moments(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z = z.double()
    return z.mean(0), torch.cov(z.T).reshape(z.shape[1], z.shape[1])


def prior_mismatch(model, images: torch.Tensor, samplers: dict, seed: int = 0, n: int = 2000, device="cpu") -> dict:
    """The prior's (and every fitted sampler's) distance to the aggregate posterior of `images` (a training split)."""
    half = min(n, images.shape[0] // 2)
    means, logvars = aggregate_posterior(model, images[: 2 * half], device)
    ref_means, ref_logvars = means[:half], logvars[:half]  # the aggregate posterior's components
    generator = torch.Generator().manual_seed(seed)
    held_out = means[half:] + torch.exp(0.5 * logvars[half:]) * torch.randn(
        means[half:].shape, generator=generator, dtype=torch.float64
    )
    level = float(torch.quantile(mixture_log_density(held_out, ref_means, ref_logvars), LEVEL))
    agg_mean = ref_means.mean(0)
    agg_cov = torch.cov(ref_means.T).reshape(agg_mean.shape[0], -1) + torch.diag(ref_logvars.exp().mean(0))
    draws = {"prior": model.sample_prior(half, torch.Generator().manual_seed(seed + 1)).cpu()}
    for name, sampler in samplers.items():
        draws[name] = sampler.sample(half, torch.Generator().manual_seed(seed + 1)).cpu()
    result = {
        "n_images": int(2 * half),
        "level": LEVEL,
        "definition": f"holes: share of draws whose aggregate-posterior log-density lies below the level {LEVEL:.0%} "
        "of the aggregate posterior's own held-out samples fall under; kl: KL(Gaussian fit of the draws || "
        "Gaussian fit of the aggregate posterior)",
    }
    for name, z in draws.items():
        m, s = moments(z)
        result[name] = {
            "kl_to_aggregate": gaussian_kl(m, s, agg_mean, agg_cov),
            "holes": float((mixture_log_density(z, ref_means, ref_logvars) < level).double().mean()),
        }
    return result


@dataclass
class Distance:
    kl_to_aggregate: float  # nats
    holes: float  # share of draws


@dataclass
class PriorMismatchResult(Section):
    """eval.json keeps the definition's numbers and one entry per sampler ("prior" first) in one table."""

    n_images: int
    level: float
    definition: str
    distances: dict[str, Distance]  # "prior", then every fitted sampler

    def to_dict(self) -> dict[str, Any]:
        head = {"n_images": self.n_images, "level": self.level, "definition": self.definition}
        return {**head, **{name: dataclasses.asdict(d) for name, d in self.distances.items()}}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PriorMismatchResult:
        if not isinstance(values, dict):
            raise TypeError(f"prior_mismatch: expected a table, got {type(values).__name__}")
        head = ("n_images", "level", "definition")
        distances = {name: Distance(**d) for name, d in values.items() if name not in head}
        if "prior" not in distances:
            raise KeyError("prior")
        return cls(*(values[k] for k in head), distances=distances)


def measure(ctx: Context) -> tuple[PriorMismatchResult, list[str]]:
    found = prior_mismatch(ctx.model, ctx.dataset.train.images, ctx.samplers, ctx.seed, device=ctx.device)
    return PriorMismatchResult.from_dict(found), []


def rows(result: PriorMismatchResult) -> list[tuple[str, str]]:
    return [
        (f"{name} vs aggregate posterior", f"KL {d.kl_to_aggregate:.2f} nats, {d.holes:.1%} of draws in holes")
        for name, d in result.distances.items()
    ]


PRIOR_MISMATCH = Metric(
    name="prior_mismatch", result=PriorMismatchResult, measure=measure, rows=rows, needs=("encoder",)
)
