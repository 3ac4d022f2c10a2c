"""The IWAE estimate of the log-likelihood (vaelab.evaluate.iwae): against a linear-Gaussian model whose likelihood
is exact, against the estimator written out on tiny inputs, its blocks of decoded latents, bf16 and its progress."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal

from tests.helpers.tiny import tiny_images, tiny_vae
from vaelab.evaluate.iwae import BLOCK_FLOATS, decoded_width, iwae_log_likelihood
from vaelab.models import VAE, VAEConfig
from vaelab.training.split import split_terms

SIGMA = 0.3


@pytest.fixture(scope="module")
def linear_gaussian():
    """p(z) = N(0, I), p(x|z) = N(Wz + b, sigma^2 I): a VAE with no hidden layers and a fixed Gaussian
    likelihood, whose marginal p(x) = N(b, W W^T + sigma^2 I) is known exactly. Its encoder is the exact
    posterior, perturbed, so that the IWAE bound is loose at k = 1 and tightens with k."""
    torch.manual_seed(0)
    shape, d = (1, 2, 3), 2
    model = VAE(VAEConfig(shape=shape, hidden=(), latent_dim=d, likelihood="gaussian", sigma=SIGMA))
    dec = model.decoder[0]
    W, b = dec.weight.detach().double(), dec.bias.detach().double()  # [6, 2], [6]
    # exact posterior: cov = (I + W^T W / s^2)^-1, mean = cov W^T (x - b) / s^2
    cov = torch.linalg.inv(torch.eye(d, dtype=W.dtype) + W.T @ W / SIGMA**2)
    enc = model.encoder[1]
    with torch.no_grad():
        enc.weight[:d] = (cov @ W.T / SIGMA**2 * 0.3).float()  # perturbed mean map
        enc.bias[:d] = (-(cov @ W.T / SIGMA**2 @ b) * 0.3).float()
        enc.weight[d:] = 0
        enc.bias[d:] = (torch.log(torch.diagonal(cov)) + 1.5).float()  # too wide, and diagonal
    images = torch.randint(0, 256, (400, *shape), dtype=torch.uint8)
    x = images.double().flatten(1) / 255
    marginal = torch.distributions.MultivariateNormal(b, W @ W.T + SIGMA**2 * torch.eye(6, dtype=W.dtype))
    return model, images, marginal.log_prob(x)


def test_iwae_approaches_the_exact_likelihood(linear_gaussian):
    model, images, exact = linear_gaussian
    gaps = {k: float((exact - iwae_log_likelihood(model, images, k, seed=1)).mean()) for k in (1, 10, 100, 2000)}
    assert gaps[1] > gaps[10] > gaps[100] > gaps[2000] > -0.01  # a lower bound that tightens with k
    assert gaps[1] > 2 and gaps[100] < 0.5 and gaps[2000] < 0.03


def test_iwae_with_one_sample_is_the_elbo_in_expectation(linear_gaussian):
    model, images, _ = linear_gaussian
    with torch.no_grad():
        x = images.float() / 255
        q = model.encode(x)
        q.mean, q.logvar = q.mean.double(), q.logvar.double()
        x = x.double()
        W, b = model.decoder[0].weight.double(), model.decoder[0].bias.double()
        # closed-form ELBO: E_q[log N(x; Wz + b, s^2 I)] - KL(q || p)
        mean_x = q.mean @ W.T + b
        d = x[0].numel()
        expected_sq = (x.flatten(1) - mean_x).pow(2).sum(1) + (W.pow(2) @ q.logvar.exp().T).sum(0)
        elbo = -0.5 * expected_sq / SIGMA**2 - d * (math.log(SIGMA) + 0.5 * math.log(2 * math.pi)) - q.kl()
        estimates = torch.stack([iwae_log_likelihood(model, images, 1, seed=s) for s in range(40)])
        mc_elbo = -torch.tensor([split_terms(model, images, seed=s)["loss"] for s in range(10)]).mean()
    se = float(estimates.mean(1).std() / math.sqrt(40))
    assert abs(float(estimates.mean()) - float(elbo.mean())) < 4 * se + 1e-3
    assert abs(float(mc_elbo) - float(elbo.mean())) < 0.05


def test_iwae_is_deterministic_for_a_seed(linear_gaussian):
    model, images, _ = linear_gaussian
    a, b = iwae_log_likelihood(model, images[:50], 64, seed=3), iwae_log_likelihood(model, images[:50], 64, seed=3)
    c = iwae_log_likelihood(model, images[:50], 64, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_iwae_blocks_are_sized_by_the_decoders_widest_activation():
    """The default block holds about BLOCK_FLOATS floats of the decoder's widest activation: the conv decoder's
    32 x 14 x 14 feature map, the MLP's 784 outputs (wider than its 400 hidden units). Catches the probe reading
    the wrong activation (the output only, or the latent) and the default not being used."""
    from vaelab.evaluate.iwae import BLOCK_FLOATS, decoded_width

    conv = VAE(VAEConfig(shape=(1, 28, 28), arch="conv", latent_dim=3, channels=(32, 64), hidden=(16,)))
    mlp = VAE(VAEConfig(shape=(1, 28, 28), arch="mlp", latent_dim=3, hidden=(400,)))
    assert decoded_width(conv) == 32 * 14 * 14
    assert decoded_width(mlp) == 784
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    rows = BLOCK_FLOATS // decoded_width(conv)
    default = iwae_log_likelihood(conv, images, 700, seed=2)
    assert torch.equal(default, iwae_log_likelihood(conv, images, 700, seed=2, rows=rows))
    assert not torch.equal(default, iwae_log_likelihood(conv, images, 700, seed=2, rows=8192))


def iwae_reference(model: VAE, data: torch.Tensor, k: int, seed: int, rows: int) -> torch.Tensor:
    """The estimator written out image batch by image batch with torch.distributions, drawing the same noise."""
    generator = torch.Generator().manual_seed(seed)
    batch = max(1, rows // k)
    k_chunk = min(k, max(1, rows // batch))
    out = []
    with torch.no_grad():
        for start in range(0, data.shape[0], batch):
            x = data[start : start + batch].float() / 255
            q = model.encode(x)
            eps = torch.cat(
                [torch.randn(min(k_chunk, k - s), *q.mean.shape, generator=generator) for s in range(0, k, k_chunk)]
            )
            z = q.mean + q.std * eps  # [k, B, D]
            decoded = model.decode(z.reshape(-1, z.shape[-1])).view(k, *x.shape)
            if model.likelihood == "bernoulli":
                log_px = Independent(Bernoulli(logits=decoded, validate_args=False), 3).log_prob(x.expand_as(decoded))
            else:
                log_px = Independent(Normal(decoded, model.log_sigma.exp()), 3).log_prob(x.expand_as(decoded))
            log_q = Independent(Normal(q.mean, q.std), 1).log_prob(z)
            log_p = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1).log_prob(z)
            out.append(torch.logsumexp((log_px + log_p - log_q).double(), 0) - math.log(k))
    return torch.cat(out)


# rows < k: one image per step and the k samples in chunks of `rows` (the last one partial: 5 = 3 + 2)
CASES = [("bernoulli", 7, 20), ("gaussian", 5, 8), ("bernoulli", 3, 8192), ("bernoulli", 5, 3), ("gaussian", 3, 1)]


@pytest.mark.parametrize("likelihood, k, rows", CASES)
def test_iwae_matches_the_written_out_estimator(likelihood, k, rows):
    """Found by mutation testing."""
    model, data = tiny_vae(likelihood), tiny_images(9)
    model.train()
    estimate = iwae_log_likelihood(model, data, k, seed=4, rows=rows)
    assert estimate.dtype == torch.float64 and estimate.shape == (9,) and not model.training
    torch.testing.assert_close(estimate, iwae_reference(model, data, k, 4, rows), rtol=1e-5, atol=1e-4)


def test_iwae_defaults_and_bf16(capfd, monkeypatch):
    """Found by mutation testing."""
    monkeypatch.setenv("VAELAB_PROGRESS", "1")  # a bar would show, were it not quiet by default
    model, data = tiny_vae(), tiny_images(4)
    rows = BLOCK_FLOATS // decoded_width(model)  # the default block
    default = iwae_log_likelihood(model, data, 4)
    assert torch.equal(default, iwae_log_likelihood(model, data, 4, seed=0, rows=rows, device="cpu"))
    assert capfd.readouterr().err == ""  # quiet unless asked
    assert torch.equal(iwae_log_likelihood(model, data[:1]), iwae_log_likelihood(model, data[:1], 1000))  # k = 1000
    # k above the default rows: the samples come in chunks of `rows`, drawn differently from one block of rows + 1
    chunked = iwae_log_likelihood(model, data[:1], rows + 1)
    assert torch.equal(chunked, iwae_log_likelihood(model, data[:1], rows + 1, rows=rows))
    assert not torch.equal(chunked, iwae_log_likelihood(model, data[:1], rows + 1, rows=rows + 1))
    bf16 = iwae_log_likelihood(model, data, 4, precision="bf16")
    assert not torch.equal(bf16, default) and torch.allclose(bf16, default, atol=0.5)
    assert torch.equal(iwae_log_likelihood(model, data, 4, precision="fp32"), default)


def test_iwae_shows_its_progress_when_asked(capfd, monkeypatch):
    """Found by mutation testing."""
    monkeypatch.setenv("VAELAB_PROGRESS", "1")
    iwae_log_likelihood(tiny_vae(), tiny_images(3), 2, quiet=False)
    err = capfd.readouterr().err
    assert "IWAE log-likelihood, k=2" in err and "3/3" in err and "img/s" in err


@pytest.mark.parametrize("rows", [1, 3, 8])
def test_no_decoded_block_exceeds_rows(rows, monkeypatch):
    """`rows` bounds the latents decoded at once (samples x images); by default it is what keeps the widest
    activation within BLOCK_FLOATS floats. Found by mutation testing."""
    from vaelab.evaluate import iwae

    model, sizes = tiny_vae(latent_dim=10), []
    decode = model.decode
    model.decode = lambda z: sizes.append(z.shape[0]) or decode(z)
    iwae_log_likelihood(model, tiny_images(5), k=4, rows=rows)
    assert 0 < max(sizes) <= rows and sum(sizes) == 4 * 5
    monkeypatch.setattr(iwae, "BLOCK_FLOATS", rows * decoded_width(model))
    sizes.clear()
    iwae_log_likelihood(model, tiny_images(5), k=4)
    assert max(sizes) <= rows and sum(sizes[1:]) == 4 * 5  # the first decode is decoded_width's probe
