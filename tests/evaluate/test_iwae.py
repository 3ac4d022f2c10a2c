"""Evaluation against references: a linear-Gaussian model with an exact likelihood, the Frechet distance,
precision / recall on known sets, active units on a model with dead dimensions, and `vaelab eval`."""

import json
import math

import pytest
import torch

from vaelab.evaluate.frechet import frechet_distance, precision_recall
from vaelab.evaluate.iwae import iwae_log_likelihood
from vaelab.evaluate.latents import active_units, collapse_warning, posterior_stats
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


def test_frechet_distance_is_zero_on_itself_and_grows_with_corruption():
    torch.manual_seed(0)
    real = torch.randn(2000, 16) @ torch.randn(16, 16)
    assert abs(frechet_distance(real, real)) < 1e-6
    distances = [frechet_distance(real, real + s * torch.randn_like(real)) for s in (0.1, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(distances, distances[1:]))
    # against the closed form for two isotropic Gaussians: |mu|^2 + D (s1 - s2)^2
    a, b = torch.randn(200000, 4), 2 * torch.randn(200000, 4) + 1
    assert frechet_distance(a, b) == pytest.approx(4 * 1 + 4 * (1 - 2) ** 2, rel=0.02)


def test_precision_and_recall_on_shifted_and_collapsed_sets():
    torch.manual_seed(0)
    real = torch.randn(1000, 8)
    same_p, same_r = precision_recall(real, torch.randn(1000, 8))
    far_p, far_r = precision_recall(real, torch.randn(1000, 8) + 4)
    collapsed_p, collapsed_r = precision_recall(real, 0.1 * torch.randn(1000, 8))
    assert same_p > 0.8 and same_r > 0.8
    assert far_p < 0.05 and far_r < 0.05
    assert collapsed_p > 0.9 and collapsed_r < 0.3  # good samples of too few modes: precise, not diverse


def test_active_units_on_a_model_with_dead_dimensions():
    torch.manual_seed(0)
    model = VAE(VAEConfig(shape=(1, 8, 8), latent_dim=5, hidden=(32,)))
    head = model.encoder[-1]
    with torch.no_grad():
        head.weight[[1, 3]] = 0  # the means of dims 1 and 3 no longer depend on x
        head.weight.mul_(20)
    images = torch.randint(0, 256, (300, 1, 8, 8), dtype=torch.uint8)
    stats = posterior_stats(model, images)
    n, activity = active_units(stats["means"])
    assert n == 3 and activity[1] < 1e-12 and activity[3] < 1e-12
    assert "2 of 5" in collapse_warning(n, 5, stats["kl_per_dim"])
    assert collapse_warning(0, 5, stats["kl_per_dim"]).startswith("posterior collapse")


def test_vaelab_eval_end_to_end(cli, digits_npz, tmp_path):
    path = digits_npz(500, 150)
    run = tmp_path / "run"
    assert cli("train", "--data", path, "--out", run, "--epochs", "2", "--quiet", "--binarize").returncode == 0
    result = cli("eval", run, "--iwae-k", "50", "--cache-dir", tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert (
        "IWAE k=50" in result.stdout and "FD (classifier features)" in result.stdout and "binarization" in result.stdout
    )
    saved = json.loads((run / "eval.json").read_text())
    assert saved["iwae"]["k"] == 50 and saved["n_images"] == 150
    assert saved["iwae"]["nll"] <= -saved["elbo"]["elbo"] + 1.0  # the IWAE bound is (nearly always) tighter
    samples, rec = saved["samples"], saved["reconstruction"]
    assert samples["n_samples"] == 150 and samples["fd_classifier"] > 0
    assert f"{samples['precision']:.3f} / {samples['recall']:.3f}" in result.stdout
    assert samples["classifier_test_accuracy"] > 0.5  # the feature classifier learned the digits (chance: 0.1)
    assert len(saved["latents"]["kl_per_dim"]) == 10 and rec["psnr_db"] == pytest.approx(-10 * math.log10(rec["mse"]))
    assert list((tmp_path / "cache" / "classifiers").glob("*.safetensors"))  # cached for the next run
    bad = cli("eval", tmp_path / "nope")
    assert bad.returncode == 2 and "no such run directory" in bad.stderr


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


def test_the_feature_classifier_trains_for_about_64000_images():
    """8 epochs of mnist-mini's 8,000 images (as before), 2 of 60,000, never fewer than 2 nor more than 8."""
    from vaelab.evaluate.classifier import default_epochs

    assert [default_epochs(n) for n in (50, 8000, 16000, 21000, 60000, 10**6)] == [8, 8, 4, 4, 2, 2]
