"""VAE losses as pure functions of tensors. Every function returns per-image values `[N]` (nats).

The negative ELBO of Kingma & Welling (2014), eq. 10:  -log p(x|z) + KL(q(z|x) || p(z)),  z ~ q(z|x).
`recon` is the first term, `kl` the second, `loss` = recon + beta * kl is what the optimizer minimises
(beta-VAE, Higgins et al. 2017; beta = 1 is the plain ELBO).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vaelab.models.posterior import DiagonalGaussian

PIXELS = (-3, -2, -1)  # the (C, H, W) dimensions of an image batch


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) for independent Bernoulli pixels with the given logits, summed per image.

    Computed from logits, log p = x * l - softplus(l), with softplus(l) = logaddexp(l, 0): exact and stable
    for any l (taking the sigmoid first and then the log would lose everything below float precision).
    Sums over the last three dimensions (C, H, W), so `logits` `[K, N, C, H, W]` broadcast against `x`.
    """
    # sum(x * l) as an einsum: one fused pass with no [..., C, H, W] temporary (it broadcasts x like `*` does)
    x_dot_l = torch.einsum("...p,...p->...", logits.flatten(-3), x.flatten(-3))
    zero = torch.zeros((), device=logits.device, dtype=logits.dtype)
    return x_dot_l - torch.logaddexp(logits, zero).sum(PIXELS)


def gaussian_log_likelihood(mean: torch.Tensor, x: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, sigma^2 I) summed per image. With sigma^2 = 1/2 this is -||x - mean||^2 - const:
    the squared error of the course, as a proper log-density. `log_sigma` is a scalar tensor."""
    d = mean[0].numel() if mean.dim() == 4 else mean[0, 0].numel()
    sq = (x - mean).pow(2).sum(PIXELS)
    return -0.5 * sq * torch.exp(-2 * log_sigma) - d * (log_sigma + 0.5 * math.log(2 * math.pi))


def log_likelihood(likelihood: str, output: torch.Tensor, x: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    if likelihood == "bernoulli":
        return bernoulli_log_likelihood(output, x)
    return gaussian_log_likelihood(output, x, log_sigma)


def vae_terms(
    likelihood: str,
    output: torch.Tensor,
    x: torch.Tensor,
    posterior: DiagonalGaussian,
    log_sigma: torch.Tensor,
    beta: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The per-image terms of one VAE pass: `loss` (= recon + beta * kl), `recon` (= -log p(x|z)), `kl`.

    For the Gaussian likelihood, `sq_error` (||x - x_hat||^2) is added: the course's reconstruction term.
    """
    recon = -log_likelihood(likelihood, output, x, log_sigma)
    kl = posterior.kl()
    terms = {"loss": recon + beta * kl, "recon": recon, "kl": kl}
    if likelihood == "gaussian":
        terms["sq_error"] = (x - output).pow(2).sum(PIXELS).detach()
    return terms


def batch_sums(
    likelihood: str, output: torch.Tensor, x: torch.Tensor, posterior: DiagonalGaussian, log_sigma: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The training fast path: `recon` and `kl` summed over the batch (scalars), equal to the sums of
    `vae_terms`' per-image values. The Bernoulli term uses torch's fused cross-entropy with logits, whose
    backward is cheaper than the per-image form's; loss = (recon + beta * kl) / batch size."""
    if likelihood == "bernoulli":
        recon = F.binary_cross_entropy_with_logits(output, x, reduction="sum")
        sums = {"recon": recon}
    else:
        sums = {"recon": -gaussian_log_likelihood(output, x, log_sigma).sum()}
        sums["sq_error"] = (x - output).detach().pow(2).sum()
    sums["kl"] = 0.5 * (posterior.mean.pow(2) + posterior.logvar.exp() - 1.0 - posterior.logvar).sum()
    return sums


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: each pixel becomes 1 with probability equal to its grey level
    (Salakhutdinov & Murray 2008), the standard protocol for likelihoods on MNIST."""
    return (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) < x).to(x.dtype)


def kl_weight(beta: float, epoch_progress: float, warmup_epochs: float) -> float:
    """beta, ramped linearly from 0 over the first `warmup_epochs` (Bowman et al. 2016; Sønderby et al. 2016).
    `epoch_progress` counts epochs done, fractions included."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, epoch_progress / warmup_epochs)


# --- adversarial losses (per-batch means; D outputs logits) -----------------------------------------------


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "ns") -> torch.Tensor:
    """ns: -log D(x) - log(1 - D(G(z))) (Goodfellow et al. 2014), computed from logits with softplus;
    hinge: relu(1 - D(x)) + relu(1 + D(G(z))) (Lim & Ye 2017)."""
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "ns") -> torch.Tensor:
    """ns: -log D(G(z)), the non-saturating generator loss; hinge: -D(G(z))."""
    if kind == "hinge":
        return -fake_logits.mean()
    return F.softplus(-fake_logits).mean()


def feature_reconstruction(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """-log N(D_l(x); D_l(x_tilde), I) up to a constant, per image: the VAE-GAN's learned similarity
    (Larsen et al. 2016, eq. 7), 0.5 * ||D_l(x) - D_l(x_tilde)||^2."""
    return 0.5 * (real_features - fake_features).pow(2).sum(1)
