"""The β-TCVAE of Chen, Li, Grosse & Duvenaud (2018), "Isolating Sources of Disentanglement in VAEs": the ELBO's
KL term, averaged over the data, split into three (their eq. 2),

    E_p(n)[KL(q(z|n) || p(z))] = I_q(z; n)                    index-code mutual information  (`mi`)
                               + KL(q(z) || prod_d q(z_d))    total correlation              (`tc`)
                               + sum_d KL(q(z_d) || p(z_d))   dimension-wise KL              (`dwkl`)

and trained on recon + mi + beta * tc + dwkl (alpha = gamma = 1, the paper's β-TCVAE): only the total correlation
is weighted. The aggregate posterior q(z) = 1/N sum_n q(z|n) is estimated on the minibatch (`--tc-estimator`):

- `mws`, minibatch-weighted sampling (their section 3.1): every one of the M batch members' posteriors weighs the
  same. The paper writes the weights 1/(NM), which sum to 1/N: log q(z) comes out log N too low, a constant with
  no gradient that would shift the logged terms (mi by +log N, tc by (D-1) log N, dwkl by -D log N). Here they are
  1/M, which sum to one: the same gradients, and the exact q(z) when the batch is the whole data set.
- `mss`, minibatch stratified sampling (their appendix C.2): the sample's own posterior weighs 1/N, one other
  member (the next in the batch) (N - M + 1) / (N (M - 1)) and the remaining M - 2 members 1 / (M - 1); N is the
  training set's size (`--data-size`, read from the data).

Read the logged parts with the batch in mind: with `mws`, the minibatch estimate of q(z) makes `mi` at most log M (a
batch of 64: 4.2 nats; the test split's blocks of up to 1024 images: 6.9), so the same model logs a smaller `mi`
and a larger `tc` + `dwkl` on training batches than on the test split.

Logged: `loss`, `recon`, `kl` (the analytic KL, so that `recon + kl` is the true -ELBO that eval and compare read,
whatever beta), `mi`, `tc`, `dwkl`. The three estimates add up exactly to the one-sample Monte-Carlo KL
log q(z|x) - log p(z) (the estimate of log q(z) cancels); the loss uses the analytic KL in its place,
recon + kl + (beta - 1) * tc: equal in expectation to the paper's objective, with less variance.
"""

from __future__ import annotations

import math
from dataclasses import fields, make_dataclass
from typing import Any

import torch

from vaelab.config import TrainConfig, option
from vaelab.data import Dataset
from vaelab.errors import ConfigError
from vaelab.kinds.base import Kind, no_compile
from vaelab.kinds.memory import Footprint, StepSizes, encoder_decoder, on_meta
from vaelab.kinds.vae import KLWeight, VAEOptions, VAETrainer, check, vae_networks
from vaelab.losses import batch_sums, binarize, log_likelihood
from vaelab.models import VAE, DiagonalGaussian
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.training.split import split_means

ESTIMATORS = ("mws", "mss")
# The test split's decomposition is estimated over blocks of at most this many images: its [M, M, D] table of
# log-densities grows with the square of the block.
TEST_BLOCK = 1024
# Floats per (batch member, batch member, latent dimension) of a step: the log-density table, its weighted copy,
# and their gradients.
TABLE_COPIES = 4


# The VAE's options but its KL weight and warm-up (whatever likelihood options the VAE has, this kind has too); beta
# weighs the total correlation only.
BetaTCOptions = make_dataclass(
    "BetaTCOptions",
    [
        *[(f.name, f.type, f) for f in fields(VAEOptions) if f.name not in {f.name for f in fields(KLWeight)}],
        (
            "beta",
            "float",
            option(6.0, "β-TCVAE: weight of the total correlation (default 6; 1: the ELBO)", min=0),
        ),
        (
            "tc_estimator",
            "str",
            option(
                "mws",
                "β-TCVAE: estimator of q(z) on the minibatch: mws (minibatch-weighted, default) or mss (stratified)",
                choices=ESTIMATORS,
            ),
        ),
        (
            "data_size",
            "int",
            option(
                0,
                "β-TCVAE: N, the training set's size in the stratified estimator (0: read from the data)",
                min=0,
                max=10**10,
            ),
        ),
    ],
)


def log_density_table(z: torch.Tensor, posterior: DiagonalGaussian) -> torch.Tensor:
    """`[M, M, D]`: entry (i, j, d) is log q(z_id | n_j), the density of sample i's dimension d under member j's
    posterior (z `[M, D]`, the posterior's mean and logvar `[M, D]`)."""
    mean, logvar = posterior.mean.unsqueeze(0), posterior.logvar.unsqueeze(0)  # [1, M, D]
    diff = z.unsqueeze(1) - mean  # [M, M, D]
    return -0.5 * (diff.pow(2) * torch.exp(-logvar) + logvar + math.log(2 * math.pi))


def log_weights(
    m: int, n: int, estimator: str, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """`[M, M]` log-weights of member j's posterior in the estimate of q(z_i) (each row sums to one)."""
    if m == 1:
        return torch.zeros(1, 1, device=device, dtype=dtype)
    if estimator == "mws":
        return torch.full((m, m), -math.log(m), device=device, dtype=dtype)
    if n < m:
        raise ValueError(f"the stratified estimator needs a data set at least as large as the batch ({n} < {m})")
    weights = torch.full((m, m), 1.0 / (m - 1), dtype=torch.float64)
    rows = torch.arange(m)
    weights[rows, (rows + 1) % m] = (n - m + 1) / (n * (m - 1))  # the stratum of the points left out of the batch
    weights[rows, rows] = 1.0 / n  # the sample's own posterior
    return weights.log().to(device, dtype)


def decomposition(
    z: torch.Tensor, posterior: DiagonalGaussian, log_prior: torch.Tensor, n: int, estimator: str = "mws"
) -> dict[str, torch.Tensor]:
    """Per-sample `[M]` estimates of the KL's three parts for a batch's samples z `[M, D]` drawn from `posterior`,
    with log p(z) `log_prior` `[M]` (a factorized prior: N(0, I)); `n` is the data set's size (for `mss`).

    mi = log q(z|n) - log q(z), tc = log q(z) - sum_d log q(z_d), dwkl = sum_d log q(z_d) - log p(z)."""
    table = log_density_table(z, posterior)  # [M, M, D]
    weights = log_weights(z.shape[0], n, estimator, z.device, z.dtype)  # [M, M]
    log_qz = torch.logsumexp(weights + table.sum(2), dim=1)  # [M]: log q(z_i)
    log_marginals = torch.logsumexp(weights.unsqueeze(2) + table, dim=1).sum(1)  # [M]: sum_d log q(z_id)
    log_q_given_n = posterior.log_prob(z)  # [M]
    return {
        "mi": log_q_given_n - log_qz,
        "tc": log_qz - log_marginals,
        "dwkl": log_marginals - log_prior,
    }


def prepare(config: TrainConfig, dataset: Dataset) -> None:
    """N for the stratified estimator: the training split's size (or a --data-size the batch fits in)."""
    o = config.options
    if o.data_size == 0:
        o.data_size = len(dataset.train)
    if o.tc_estimator == "mss" and o.data_size < min(config.batch_size, len(dataset.train)):
        raise ConfigError(f"data_size: {o.data_size} is smaller than a batch ({config.batch_size}); leave it at 0")


def memory(config: TrainConfig, shape: tuple[int, int, int], sizes: StepSizes) -> Footprint:
    """A VAE's step (`encoder_decoder`) plus the [M, M, D] table of log-densities and its copies; the test split's
    decomposition holds one block's table."""
    model = on_meta(lambda: VAE(vae_networks(config, shape)))
    plain = encoder_decoder(model, sizes)
    d, block = config.latent_dim, min(sizes.eval_batch, TEST_BLOCK)
    return Footprint(
        plain.parameters,
        plain.train + TABLE_COPIES * sizes.batch**2 * d,
        max(plain.evaluate, 2 * block**2 * d),
    )


class BetaTCTrainer(VAETrainer):
    """The VAE's networks and Adam; the loss of a batch is recon + kl + (beta - 1) * tc, summed / its size."""

    shown = {"loss": "loss", "tc": "tc"}
    averages_by_hand = True  # encode and decode are called separately

    def terms(self, x: torch.Tensor, noise: torch.Generator, n: int) -> dict[str, torch.Tensor]:
        """Per-image terms of one pass over images `x` (already binarized if asked), `n` the data set's size."""
        posterior, z, output = self.encode_sample_decode(x, noise)
        parts = decomposition(z, posterior, self.model.log_prior(z), n, self.options.tc_estimator)
        return {"output": output, "posterior": posterior, **parts}

    def forward(self, x, y, progress: float, noise: torch.Generator) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        o = self.options
        if o.binarize:
            x = binarize(x, noise)
        t = self.terms(x, noise, o.data_size)
        sums = batch_sums(self.model.likelihood, t["output"], x, t["posterior"], self.model.log_sigma)
        parts = {name: t[name].sum() for name in ("mi", "tc", "dwkl")}
        loss_sum = sums["recon"] + sums["kl"] + (o.beta - 1) * parts["tc"]
        return {"loss": loss_sum, **sums, **parts}, loss_sum / x.shape[0]

    def test_terms(self, images: torch.Tensor, labels, epoch: int) -> dict[str, float]:
        """The same terms over the test split, its blocks' q(z) estimated with N = the test split's size."""
        o, cfg = self.options, self.config
        n = images.shape[0]

        def terms_of(x: torch.Tensor, y, generator: torch.Generator) -> dict[str, torch.Tensor]:
            t = self.terms(x, generator, max(n, x.shape[0]))
            recon = -log_likelihood(self.model.likelihood, t["output"], x, self.model.log_sigma)
            kl = t["posterior"].kl()
            return {"loss": recon + kl + (o.beta - 1) * t["tc"], "recon": recon, "kl": kl} | {
                name: t[name] for name in ("mi", "tc", "dwkl")
            }

        return split_means(
            self.model,
            images,
            terms_of,
            binarize=o.binarize,
            seed=cfg.seed + EVAL_SEED_OFFSET,
            batch_size=min(cfg.eval_batch_size, TEST_BLOCK),
            device=self.device,
            world=self.world,
        )

    def record(self, epoch: int) -> dict[str, Any]:
        return {"beta": self.options.beta, "lr": self.optimizers["adam"].param_groups[0]["lr"]}


KIND = Kind(
    name="betatc",
    help="a β-TCVAE (Chen et al. 2018): the KL split into mutual information, total correlation and dimension-wise "
    "KL, --beta on the total correlation",
    title="β-TCVAE",
    options=BetaTCOptions,
    trainer=BetaTCTrainer,
    build=VAE,
    encoder=True,
    likelihood=True,
    refuses={"warmup_epochs": "the β-TCVAE weighs the total correlation only, without a warm-up"},
    check=no_compile("betatc", check),  # its forward bypasses torch.compile
    prepare=prepare,
    memory=memory,
)
