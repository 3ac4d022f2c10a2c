"""VAE losses as pure functions of tensors. Every function returns per-image values `[N]` (nats).

The negative ELBO of Kingma & Welling (2014), eq. 10:  -log p(x|z) + KL(q(z|x) || p(z)),  z ~ q(z|x).
`recon` is the first term, `kl` the second, `loss` = recon + beta * kl is what the optimizer minimises
(beta-VAE, Higgins et al. 2017; beta = 1 is the plain ELBO).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vaelab.models import likelihoods
from vaelab.models.likelihoods.bernoulli import log_prob as bernoulli_log_likelihood  # noqa: F401 (re-exported)
from vaelab.models.likelihoods.gaussian import log_prob as gaussian_log_likelihood  # noqa: F401 (re-exported)
from vaelab.models.posterior import DiagonalGaussian

PIXELS = (-3, -2, -1)  # the (C, H, W) dimensions of an image batch


def log_likelihood(likelihood: str, output: torch.Tensor, x: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """log p(x|z) summed per image, under the named likelihood (`vaelab.models.likelihoods`)."""
    return likelihoods.get(likelihood).log_prob(output, x, log_sigma)


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
    if likelihoods.get(likelihood).squared_error:
        terms["sq_error"] = (x - output).pow(2).sum(PIXELS).detach()
    return terms


def batch_sums(
    likelihood: str, output: torch.Tensor, x: torch.Tensor, posterior: DiagonalGaussian, log_sigma: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The training fast path: `recon` and `kl` summed over the batch (scalars), equal to the sums of
    `vae_terms`' per-image values. A likelihood may have a faster batch sum (the Bernoulli's fused cross-entropy
    with logits); loss = (recon + beta * kl) / batch size."""
    chosen = likelihoods.get(likelihood)
    if chosen.batch_nll is not None:
        sums = {"recon": chosen.batch_nll(output, x)}
    else:
        sums = {"recon": -chosen.log_prob(output, x, log_sigma).sum()}
    if chosen.squared_error:
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
