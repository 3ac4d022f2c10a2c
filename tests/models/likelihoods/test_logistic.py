"""The discretized logistic mixture (PixelCNN++, Salimans et al. 2017, eq. 2) as a probability of 8-bit pixels:
the 256 values of a pixel sum to one, the edge bins reach to infinity, a known case matches a direct computation
from the logistic CDF, draws follow the probabilities, and the figures' mean image is the mixture's mean."""

import math

import pytest
import torch

from vaelab.models.likelihoods import get
from vaelab.models.likelihoods.logistic import LOG_SCALE_MIN, bin_log_prob, log_prob, mean, sample

LOGISTIC = get("logistic")
ALL_VALUES = torch.arange(256, dtype=torch.float64)


def output_of(log_weights, means, log_scales):
    """The decoder output `[1, 3 * M * C, H, W]` that holds these `[M, C, H, W]` parameters."""
    return torch.cat([log_weights, means, log_scales]).flatten(0, 1)[None]


def random_output(m=3, c=3, side=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(m, c, side, side, generator=g, dtype=dtype)
    means = torch.rand(m, c, side, side, generator=g, dtype=dtype) * 2.4 - 1.2  # some beyond [-1, 1]
    log_scales = torch.rand(m, c, side, side, generator=g, dtype=dtype) * 6 - 6  # -6..0
    return output_of(logits, means, log_scales)


def pixel_log_probs(output, c):
    """log P(k) of each value k of every pixel and channel: `[256, C, H, W]`, through `log_prob` itself (an image
    that is all k, minus nothing: one channel and pixel at a time is what the per-image sum needs)."""
    h, w = output.shape[-2:]
    # score one image per value k, every pixel at k; the per-image sum mixes pixels, so score per pixel instead
    out = output.unflatten(1, (3 * (output.shape[1] // (3 * c)), c))  # [1, 3M, C, H, W]
    per_pixel = out.permute(0, 2, 3, 4, 1).reshape(-1, out.shape[1], 1, 1)  # [C*H*W, 3M, 1, 1] one pixel each
    x = (ALL_VALUES / 255).view(256, 1, 1, 1, 1).to(output.dtype)  # [256, 1, 1, 1, 1]
    lp = log_prob(per_pixel[None].expand(256, -1, -1, -1, -1), x.expand(256, per_pixel.shape[0], 1, 1, 1))
    return lp.view(256, c, h, w)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_256_values_of_every_pixel_and_channel_sum_to_one(dtype):
    probs = pixel_log_probs(random_output(dtype=dtype), 3).double().exp()
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(probs.sum(0), torch.ones(3, 4, 4, dtype=torch.float64), atol=tolerance)
    assert (probs > 0).all()


def test_edge_bins_reach_to_infinity():
    """P(0) is the logistic's mass below c_0 + 1/255, P(255) its mass above c_255 - 1/255: a mean far outside
    [-1, 1] puts (almost) all the mass in the edge bin, not outside the 256 values."""
    s = torch.tensor(0.05, dtype=torch.float64)
    for mu in (-0.9, 0.0, 0.9):
        mu_t = torch.tensor(mu, dtype=torch.float64)
        low = bin_log_prob(torch.tensor(0.0, dtype=torch.float64), mu_t, s.log()).exp()
        high = bin_log_prob(torch.tensor(255.0, dtype=torch.float64), mu_t, s.log()).exp()
        assert low == pytest.approx(torch.sigmoid((-1 + 1 / 255 - mu_t) / s).item(), rel=1e-12)
        assert high == pytest.approx(1 - torch.sigmoid((1 - 1 / 255 - mu_t) / s).item(), rel=1e-12)
    far_low = bin_log_prob(torch.tensor(0.0), torch.tensor(-5.0), torch.tensor(-3.0))
    far_high = bin_log_prob(torch.tensor(255.0), torch.tensor(5.0), torch.tensor(-3.0))
    assert far_low.item() == pytest.approx(0.0, abs=1e-6) and far_high.item() == pytest.approx(0.0, abs=1e-6)


def test_a_known_mixture_against_the_logistic_cdf_computed_directly():
    """Two components, weights 0.3 / 0.7, on a 1x1x2 image: log p = sum over pixels of
    log(sum_m w_m (sigmoid((c + 1/255 - mu_m) / s_m) - sigmoid((c - 1/255 - mu_m) / s_m))), edges one-sided."""
    weights = torch.tensor([0.3, 0.7], dtype=torch.float64)
    mus = torch.tensor([[-0.2, 0.5], [0.1, -0.95]], dtype=torch.float64)  # [M, W]
    scales = torch.tensor([[0.1, 0.02], [0.3, 0.05]], dtype=torch.float64)
    pixels = torch.tensor([100.0, 0.0], dtype=torch.float64)
    output = output_of(
        weights.log().view(2, 1, 1, 1).expand(2, 1, 1, 2), mus.view(2, 1, 1, 2), scales.log().view(2, 1, 1, 2)
    )

    def cdf(v, mu, s):
        return 1 / (1 + math.exp(-(v - mu) / s))

    expected = 0.0
    for j, k in enumerate(pixels.tolist()):
        c = 2 * k / 255 - 1
        total = 0.0
        for m in range(2):
            upper = 1.0 if k == 255 else cdf(c + 1 / 255, mus[m, j].item(), scales[m, j].item())
            lower = 0.0 if k == 0 else cdf(c - 1 / 255, mus[m, j].item(), scales[m, j].item())
            total += weights[m].item() * (upper - lower)
        expected += math.log(total)
    got = log_prob(output, (pixels / 255).view(1, 1, 1, 2))
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_a_tiny_bin_mass_is_finite_with_finite_gradients():
    """Far from the mean at the smallest scale a bin holds ~e^-1000 of the mass: the log is exact and finite
    where a difference of two CDFs would be 0 (and log 0 = -inf), and its gradients are finite."""
    means = torch.tensor([-0.9], requires_grad=True)
    log_scales = torch.tensor([LOG_SCALE_MIN], requires_grad=True)
    lp = bin_log_prob(torch.tensor([200.0]), means, log_scales)
    mu, s = -0.9, math.exp(LOG_SCALE_MIN)
    c = 2 * 200 / 255 - 1
    # log(sigmoid(a) - sigmoid(b)) ~ -a_lower + log(1 - e^-(a - b)) for large arguments
    a, b = (c + 1 / 255 - mu) / s, (c - 1 / 255 - mu) / s
    expected = -b + math.log1p(-math.exp(b - a))
    assert torch.isfinite(lp).all() and lp.item() == pytest.approx(expected, rel=1e-4)
    lp.sum().backward()
    assert torch.isfinite(means.grad).all() and torch.isfinite(log_scales.grad).all()


def test_log_scales_are_clamped_from_below():
    out_low = output_of(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), torch.full((1, 1, 1, 1), -30.0))
    out_min = output_of(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), torch.full((1, 1, 1, 1), LOG_SCALE_MIN))
    x = torch.full((1, 1, 1, 1), 140 / 255)
    assert torch.equal(log_prob(out_low, x), log_prob(out_min, x)) and torch.isfinite(log_prob(out_low, x)).all()


def test_draws_follow_the_probabilities():
    """20,000 draws of one pixel from a two-component mixture: a chi-square test of the histogram against the 256
    probabilities (bins pooled to an expected count of at least 20), far inside a 6-sigma bound."""
    output = output_of(
        torch.tensor([0.2, 0.8]).log().view(2, 1, 1, 1),
        torch.tensor([-0.6, 0.3]).view(2, 1, 1, 1),
        torch.tensor([0.05, 0.15]).log().view(2, 1, 1, 1),
    )
    n = 20_000
    draws = sample(output.expand(n, -1, -1, -1), torch.tensor(0.0), 1, torch.Generator().manual_seed(0))
    values = torch.round(draws.flatten() * 255).long()
    assert torch.allclose(draws.flatten() * 255, values.float(), atol=1e-3)  # 8-bit levels
    counts = torch.bincount(values, minlength=256).double()
    probs = pixel_log_probs(output.double(), 1).exp().flatten()
    expected = probs * n
    # pool consecutive bins until each expects at least 20 draws
    pooled_obs, pooled_exp, o_acc, e_acc = [], [], 0.0, 0.0
    for o, e in zip(counts.tolist(), expected.tolist()):
        o_acc, e_acc = o_acc + o, e_acc + e
        if e_acc >= 20:
            pooled_obs.append(o_acc)
            pooled_exp.append(e_acc)
            o_acc, e_acc = 0.0, 0.0
    pooled_obs[-1] += o_acc
    pooled_exp[-1] += e_acc
    obs, exp = torch.tensor(pooled_obs), torch.tensor(pooled_exp)
    chi2, dof = float(((obs - exp) ** 2 / exp).sum()), len(pooled_obs) - 1
    assert dof > 20 and chi2 < dof + 6 * math.sqrt(2 * dof), (chi2, dof)


def test_the_mean_image_is_the_mixture_mean_clipped():
    output = output_of(
        torch.tensor([0.25, 0.75]).log().view(2, 1, 1, 1).expand(2, 1, 1, 2),
        torch.tensor([[0.2, 1.5], [-0.6, 1.2]]).view(2, 1, 1, 2),
        torch.zeros(2, 1, 1, 2),
    )
    got = mean(output, 1)
    first = (0.25 * 0.2 + 0.75 * -0.6) * 0.5 + 0.5
    assert got.shape == (1, 1, 1, 2)
    assert got[0, 0, 0, 0].item() == pytest.approx(first) and got[0, 0, 0, 1].item() == 1.0  # clipped


def test_the_registry_entry_sizes_the_decoder_and_is_a_true_likelihood():
    assert LOGISTIC.outputs(5) == 15 and LOGISTIC.mixtures and LOGISTIC.discrete
    assert "true bounds" in LOGISTIC.note(False)
    out = random_output(m=2, c=3, side=2, dtype=torch.float32)
    x = torch.randint(0, 256, (4, 3, 2, 2)).float() / 255
    assert LOGISTIC.log_prob(out.expand(4, -1, -1, -1), x, torch.tensor(0.0)).shape == (4,)
    # IWAE's [k, B, ...] outputs broadcast against [B, ...] images
    assert LOGISTIC.log_prob(out.expand(5, 4, -1, -1, -1), x, torch.tensor(0.0)).shape == (5, 4)


def test_a_huge_log_scale_has_finite_gradients():
    """A diverging decoder can output log-scales of 100: the scale is clamped above, and the branch of
    log(1 - e^-d) that `where` drops is evaluated in its own range, so no 0 x inf turns the gradients to NaN (it
    did, in a run whose raw log-scales grew past 88, where e^-log s underflows to 0)."""
    output = output_of(torch.zeros(1, 1, 1, 2), torch.zeros(1, 1, 1, 2), torch.tensor([[[[100.0, -100.0]]]]))
    output.requires_grad_(True)
    lp = log_prob(output, torch.tensor([[[[0.5, 1.0]]]]))
    lp.sum().backward()
    assert torch.isfinite(lp).all() and torch.isfinite(output.grad).all()
