"""A mixture of discretized logistics per pixel and channel: a normalized probability of 8-bit images.

PixelCNN++ (Salimans et al. 2017, eq. 2), as VDVAE's decoder uses it: a pixel value k in 0..255 is the bin
[c_k - 1/255, c_k + 1/255] around c_k = 2k/255 - 1 in [-1, 1], and P(k) is a logistic's mass on that bin, the
edge bins 0 and 255 reaching to -inf and +inf, so the 256 probabilities sum to 1 exactly. Each channel has its
own mixture of `M` components (its own weights, means and log-scales); unlike PixelCNN++ there is no linear
coupling of a pixel's channels, so the channels are independent given z. That keeps the likelihood a function of
one channel at a time; it leaves some of the colour correlations to the latent code.

The decoder's output `[..., 3 * M * C, H, W]` holds, in order, the M mixture logits, the M means and the M
log-scales of each channel (`[..., 3, M, C, H, W]` once unflattened). Log-scales are clamped below at
`LOG_SCALE_MIN`, as PixelCNN++ does, so that no bin's mass underflows a float for the right pixel value, and above
at `LOG_SCALE_MAX`, where a component is already flat over the 256 bins.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vaelab.models.likelihoods.base import PIXELS, Likelihood

LOG_SCALE_MIN = -7.0
LOG_SCALE_MAX = 7.0  # a scale of e^7 is flat over all 256 bins; the clamp keeps exp(-log s) from underflowing
LN2 = math.log(2.0)
HALF_BIN = 1.0 / 255.0  # half a bin's width on [-1, 1]
DEFAULT_MIXTURES = 5
MAX_MIXTURES = 32


def _unpack(output: torch.Tensor, channels: int):
    """The output `[..., 3 * M * C, H, W]` as (log weights, means, log-scales), each `[..., M, C, H, W]`."""
    m = output.shape[-3] // (3 * channels)
    parts = output.unflatten(-3, (3, m, channels))  # [..., 3, M, C, H, W]
    logits, means, log_scales = parts.unbind(-5)
    return torch.log_softmax(logits, dim=-4), means, log_scales.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)


def _log1mexp(d: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(-d)) for d > 0, accurate for small and large d (Maechler 2012). Each branch sees only inputs of
    its own range, so the one `where` drops has a finite gradient too (0 x inf would be NaN)."""
    small = torch.log(-torch.expm1(-d.clamp(max=LN2)))
    large = torch.log1p(-torch.exp(-d.clamp(min=LN2)))
    return torch.where(d < LN2, small, large)


def bin_log_prob(k: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor) -> torch.Tensor:
    """log P(k) for integer pixel values `k` (0..255, as floats) under discretized logistics of the given means
    (on [-1, 1]) and log-scales (broadcasting). For a bin (b, a], sigmoid(a) - sigmoid(b) is written as
    sigmoid(a) * sigmoid(-b) * (1 - exp(b - a)), whose log is exact however small the mass; the edge bins are
    one-sided: log sigmoid(a) for k = 0, log sigmoid(-b) for k = 255."""
    centre = 2.0 * k / 255.0 - 1.0
    inv_scale = torch.exp(-log_scales)
    upper = (centre + HALF_BIN - means) * inv_scale  # a
    lower = (centre - HALF_BIN - means) * inv_scale  # b
    inside = F.logsigmoid(upper) + F.logsigmoid(-lower) + _log1mexp(2.0 * HALF_BIN * inv_scale)
    edges = torch.where(k < 0.5, F.logsigmoid(upper), F.logsigmoid(-lower))
    return torch.where((k < 0.5) | (k > 254.5), edges, inside)


def log_prob(output: torch.Tensor, x: torch.Tensor, log_sigma: torch.Tensor | None = None) -> torch.Tensor:
    """log p(x|z) summed per image, for images `x` in [0, 1] (uint8 / 255): each pixel is scored as its integer
    value round(255 x), so a grey level is exactly one of the 256 bins."""
    log_weights, means, log_scales = _unpack(output, x.shape[-3])
    k = torch.round(x * 255.0).unsqueeze(-4)  # [..., 1, C, H, W]
    per_component = log_weights + bin_log_prob(k, means, log_scales)  # [..., M, C, H, W]
    return torch.logsumexp(per_component, dim=-4).sum(PIXELS)


def mean(output: torch.Tensor, channels: int) -> torch.Tensor:
    """The mixture's mean sum_m w_m mu_m, mapped from [-1, 1] to [0, 1] and clipped: the image figures show.
    (The discretized distribution's mean differs from it only by the mass the edge bins gather.)"""
    log_weights, means, _ = _unpack(output, channels)
    return ((log_weights.exp() * means).sum(-4) * 0.5 + 0.5).clamp(0.0, 1.0)


def sample(
    output: torch.Tensor, log_sigma: torch.Tensor, channels: int, generator: torch.Generator | None
) -> torch.Tensor:
    """One 8-bit image per output, in [0, 1]: a component drawn by its weight (Gumbel-max), then a logistic
    draw mu + s * logit(u), clipped to [-1, 1] and rounded to its bin."""
    log_weights, means, log_scales = _unpack(output, channels)
    u = torch.rand(log_weights.shape, generator=generator, device=output.device).clamp(1e-6, 1 - 1e-6)
    chosen = (log_weights - torch.log(-torch.log(u))).argmax(-4, keepdim=True)  # [..., 1, C, H, W]
    mu = means.gather(-4, chosen).squeeze(-4)
    s = log_scales.gather(-4, chosen).squeeze(-4).exp()
    v = torch.rand(mu.shape, generator=generator, device=output.device).clamp(1e-6, 1 - 1e-6)
    y = (mu + s * (torch.log(v) - torch.log1p(-v))).clamp(-1.0, 1.0)
    return torch.round((y + 1.0) * 127.5) / 255.0


def note(binarized: bool) -> str:
    return (
        "discretized logistic mixture: a normalized probability of the 8-bit pixels, so -ELBO and the IWAE NLL "
        "(bits/dim) are true bounds on the data's negative log-likelihood, comparable with published numbers"
    )


LOGISTIC = Likelihood(
    name="logistic",
    help="logistic (a mixture of discretized logistics per channel: a true likelihood of 8-bit pixels)",
    outputs=lambda mixtures: 3 * mixtures,
    log_prob=log_prob,
    mean=mean,
    sample=sample,
    note=note,
    mixtures=True,
    default_mixtures=DEFAULT_MIXTURES,
    discrete=True,
    temporaries=4,  # about 12 tensors of [M, C, H, W], a third of the output each
)
