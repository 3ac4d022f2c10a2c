"""IWAE, VampPrior and conditional VAE kinds against closed forms and references, the fitted GMM sampler, and the
three kinds through every command (train, resume, eval, figures, report, compare, fit-sampler, sample)."""

import json
import math

import numpy as np
import pytest
import torch

from tests.helpers.tiny import CPU, SHAPE, make, uint8
from vaelab import data, kinds, samplers
from vaelab.device import World
from vaelab.evaluate import classifier
from vaelab.kinds.cvae import CVAE, CVAEConfig
from vaelab.kinds.iwae import iwae_terms, split_bound
from vaelab.kinds.vamp import VampConfig, VampVAE, mixture_log_prob, monte_carlo_kl
from vaelab.losses import log_likelihood
from vaelab.models import VAE, VAEConfig, standard_normal_log_prob
from vaelab.models.posterior import DiagonalGaussian
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.run import Run
from vaelab.samplers import gmm

DIGIT_SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(512, 64)


@pytest.fixture(scope="module")
def images():
    return data.load("mnist-mini").test.images[:128]


# --- IWAE (Burda et al. 2016) -------------------------------------------------------------------------------
def test_iwae_with_one_sample_is_the_vae_elbo_estimate(images):
    torch.manual_seed(0)
    model = VAE(VAEConfig(DIGIT_SHAPE, latent_dim=4, hidden=(64,))).eval()
    x = data.to_float(images[:32])
    with torch.no_grad():
        terms = iwae_terms(model, x, 1, torch.Generator().manual_seed(3))
        out = model(x, torch.Generator().manual_seed(3))  # the same noise: the same z
        log_px = log_likelihood(model.likelihood, model.decode(out.z), x, model.log_sigma)
        elbo_sample = log_px + standard_normal_log_prob(out.z) - out.posterior.log_prob(out.z)
    assert torch.allclose(terms["bound"], elbo_sample, atol=1e-4)
    assert torch.allclose(terms["ess"], torch.ones(32))
    # and in expectation it is the VAE's ELBO with the closed-form KL (Kingma & Welling's estimator)
    with torch.no_grad():
        many = torch.stack([iwae_terms(model, x, 1, torch.Generator().manual_seed(s))["bound"] for s in range(100)])
        closed = (
            torch.stack(
                [
                    log_likelihood(
                        model.likelihood,
                        model.decode(out.posterior.sample(torch.Generator().manual_seed(1000 + s))),
                        x,
                        model.log_sigma,
                    )
                    for s in range(100)
                ]
            ).mean(0)
            - out.posterior.kl()
        )
    se = many.std(0) / math.sqrt(100)
    assert (many.mean(0) - closed).abs().mean() < 4 * se.mean()


def test_the_iwae_bound_increases_with_k_on_a_fixed_model(images):
    torch.manual_seed(0)
    model = VAE(VAEConfig(DIGIT_SHAPE, latent_dim=4, hidden=(64,))).eval()
    bounds = [
        split_bound(
            model, images, k, binarize_images=False, seed=0, batch_size=1000, device=torch.device("cpu"), world=World()
        )["bound"]
        for k in (1, 5, 50)
    ]
    assert bounds[0] < bounds[1] < bounds[2], bounds


# --- VampPrior (Tomczak & Welling 2018) ----------------------------------------------------------------------
def test_monte_carlo_kl_against_a_standard_normal_prior_matches_the_closed_form():
    g = torch.Generator().manual_seed(0)
    posterior = DiagonalGaussian(torch.randn(16, 5, generator=g), torch.randn(16, 5, generator=g) * 0.5)
    estimate, se = monte_carlo_kl(posterior, standard_normal_log_prob, 4000, torch.Generator().manual_seed(1))
    z_scores = (estimate - posterior.kl()) / se
    assert z_scores.abs().max() < 4.5 and z_scores.abs().mean() < 1.5, z_scores


def test_the_mixture_log_density_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    means, logvars = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g) * 0.3
    z = torch.randn(4, 5, 3, generator=g)
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=torch.zeros(7)),
        torch.distributions.Independent(torch.distributions.Normal(means, torch.exp(0.5 * logvars)), 1),
    ).log_prob(z)
    assert torch.allclose(mixture_log_prob(z, means, logvars), reference, atol=1e-4)


def test_the_vamp_prior_is_the_mixture_of_its_pseudo_inputs_posteriors_and_sampling_follows_it():
    torch.manual_seed(0)
    model = VampVAE(VampConfig(DIGIT_SHAPE, latent_dim=2, hidden=(32,), pseudo_inputs=1)).eval()
    with torch.no_grad():
        component = model.prior_components()
        z = model.sample_prior(20000, torch.Generator().manual_seed(0))
        assert torch.allclose(z.mean(0), component.mean[0], atol=0.05 * float(component.std.max()) + 0.02)
        assert torch.allclose(z.std(0), component.std[0], rtol=0.05)
        assert torch.allclose(model.log_prior(z[:10]), component.log_prob(z[:10]), atol=1e-4)
        # the KL of its posterior is the Monte-Carlo one, at the z the reconstruction used
        out = model(data.to_float(data.load("mnist-mini").test.images[:4]), torch.Generator().manual_seed(1))
        assert torch.allclose(out.posterior.kl(), out.posterior.log_prob(out.z) - model.log_prior(out.z))


# --- conditional VAE (Sohn et al. 2015) ----------------------------------------------------------------------
def test_cvae_on_data_without_labels_is_a_one_line_error(cli, tmp_path):
    path = tmp_path / "unlabelled.npz"
    ds = data.load("mnist-mini")
    np.savez(path, train_images=ds.train.images[:64].numpy(), test_images=ds.test.images[:16].numpy())
    result = cli("train", "--kind", "cvae", "--data", path, "--out", tmp_path / "run", "--epochs", "1", "--quiet")
    assert result.returncode != 0 and result.stderr.strip().count("\n") == 0, result.stderr
    assert "has no labels" in result.stderr and "--kind cvae" in result.stderr
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_cvae_labels_change_the_decoded_class_and_not_the_hidden_label_path():
    torch.manual_seed(0)
    model = CVAE(CVAEConfig(DIGIT_SHAPE, latent_dim=2, hidden=(32,), classes=10)).eval()
    z = torch.randn(3, 2)
    assert model.sample(3, z=z, labels=1).shape == (3, *DIGIT_SHAPE)
    assert not torch.allclose(model.sample(3, z=z, labels=1), model.sample(3, z=z, labels=7))
    x = torch.rand(3, *DIGIT_SHAPE)
    assert not torch.allclose(
        model.encode(x, torch.tensor([0, 0, 0])).mean, model.encode(x, torch.tensor([5, 5, 5])).mean
    )


@pytest.mark.slow
def test_cvae_samples_are_of_the_requested_digit(cli, digits_npz, tmp_path):
    """The issue's criterion on a small run: the feature classifier reads the requested class in the samples."""
    out = tmp_path / "cvae"
    result = cli(
        "train",
        "--kind",
        "cvae",
        "--data",
        digits_npz(1000, 200),
        "--out",
        out,
        "--latent-dim",
        "2",
        "--epochs",
        "15",
        "--quiet",
        "--batch-size",
        "32",
    )
    assert result.returncode == 0, result.stderr
    run = Run.open(out)
    net, info = classifier.load_or_train(run.dataset())
    assert info["test_accuracy"] > 0.85
    hits = []
    for c in range(10):
        with torch.inference_mode():
            hits.append(
                float(
                    (net(run.model.sample(50, torch.Generator().manual_seed(c), labels=c)).argmax(1) == c)
                    .double()
                    .mean()
                )
            )
    assert sum(hits) / 10 >= 0.8, hits


# --- the Gaussian-mixture sampler (Ghosh et al. 2020) ----------------------------------------------------------
def test_gmm_recovers_two_clusters_round_trips_through_safetensors_and_samples_them(tmp_path):
    g = torch.Generator().manual_seed(0)
    points = torch.cat(
        [
            torch.randn(400, 2, generator=g) * 0.1 + torch.tensor([3.0, 0.0]),
            torch.randn(200, 2, generator=g) * 0.1 - torch.tensor([3.0, 0.0]),
        ]
    )
    fitted = gmm.fit(points, 2, seed=0)
    path = tmp_path / "sampler-gmm.safetensors"
    gmm.save(fitted, path)
    assert b"__reduce__" not in path.read_bytes() and path.read_bytes()[8:9] == b"{"  # safetensors, not a pickle
    loaded = gmm.load(path)
    order = loaded.means[:, 0].argsort(descending=True)
    assert torch.allclose(loaded.means[order], torch.tensor([[3.0, 0.0], [-3.0, 0.0]], dtype=torch.float64), atol=0.05)
    assert torch.allclose(loaded.weights[order], torch.tensor([2 / 3, 1 / 3], dtype=torch.float64), atol=0.01)
    z = loaded.sample(6000, torch.Generator().manual_seed(1))
    assert abs(float((z[:, 0] > 0).double().mean()) - 2 / 3) < 0.03 and abs(float(z[:, 1].std()) - 0.1) < 0.01
    assert loaded.info["components"] == 2 and loaded.info["converged"]
    with pytest.raises(Exception, match="components"):
        gmm.fit(points, 0)


# --- every command ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,options", [("iwae", ["--k", "3"]), ("vamp", ["--pseudo-inputs", "20"]), ("cvae", [])])
def test_new_kinds_train_resume_evaluate_and_report(cli, digits, tmp_path, kind, options):
    out = tmp_path / kind
    common = ["--data", digits, "--out", out, "--quiet", "--batch-size", "64", "--latent-dim", "3"]
    result = cli("train", "--kind", kind, "--epochs", "1", *options, *common)
    assert result.returncode == 0, result.stderr
    assert cli("train", "--out", out, "--resume", "--epochs", "2", "--quiet").returncode == 0
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()[1:]]
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[-1]["test"]["loss"] < epochs[0]["test"]["loss"]
    run = Run.open(out)
    for name in run.kind.figures:
        assert (out / f"{name}.png").is_file(), name
    fitted = cli("fit-sampler", out, "--components", "3")
    assert fitted.returncode == 0, fitted.stderr
    assert cli("sample", out, "--sampler", "gmm").returncode == 0 and (out / "samples-gmm.png").is_file()
    evaluated = cli("eval", out, "--iwae-k", "4", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["kind"] == kind and math.isfinite(result["iwae"]["nll"]) and result["samplers"]["gmm"]["available"]
    assert set(result["prior_mismatch"]) >= {"prior", "gmm"}
    assert cli("report", out, "--no-figures").returncode == 0
    report = (out / "report.html").read_text()
    assert "sampler gmm" in report and "Samples decoded from the Gaussian mixture" in report
    if kind == "iwae":
        assert {"bound", "ess"} <= set(epochs[-1]["train"]) and 1 <= epochs[-1]["train"]["ess"] <= 3
        assert cli("train", "--kind", "iwae", "--beta", "2", *common).returncode == 2  # no KL weight in the bound
    if kind == "vamp":
        assert run.model.pseudo.shape[0] == 20
        from vaelab.explorer.session import Session, samplers

        session = Session(out)  # the explorer draws from the learned prior, and from the fitted sampler
        assert samplers(run) == ["N(0, I)", "gmm"]
        z, _ = session.sample(4000, seed=0)
        expected = run.model.sample_prior(4000, torch.Generator().manual_seed(0))
        assert torch.allclose(torch.tensor(z), expected, atol=1e-5)
        z_gmm, images = session.sample(8, seed=0, sampler="gmm")
        assert len(z_gmm) == 8 and len(images) == 8
    if kind == "cvae":
        assert (out / "class_manifolds.png").is_file() and "the latent manifold of each class" in report
        assert cli("sample", out, "--label", "3").returncode == 0 and (out / "samples-prior-class3.png").is_file()
        assert cli("sample", out, "--label", "10").returncode == 2


def test_compare_runs_the_study_of_the_new_kinds_fitting_a_sampler_to_each(cli, digits, tmp_path):
    study = tmp_path / "study"
    result = cli(
        "compare",
        "--kinds",
        "vae,iwae,vamp,cvae",
        "--archs",
        "mlp",
        "--latent-dims",
        "2",
        "--data",
        digits,
        "--out",
        study,
        "--epochs",
        "1",
        "--quiet",
        "--iwae-k",
        "2",
        "--batch-size",
        "64",
        "--pseudo-inputs",
        "10",
    )
    assert result.returncode == 0, result.stderr
    report = (study / "report.html").read_text()
    for member in ("vae-mlp-z2", "iwae-mlp-z2", "vamp-mlp-z2", "cvae-mlp-z2"):
        assert member in report and (study / member / "sampler-gmm.safetensors").is_file()
    assert "Test log-likelihood (mlp, z=2)" in report and "VampPrior VAE:" in report and "IWAE:" in report
    assert "Prior against aggregate posterior (vamp-mlp-z2)" in report and "fitted gmm sampler" in report
    assert "adversarial" not in report  # no discriminator in this study


def test_a_sampler_that_was_not_fitted_is_a_one_line_error(cli, tmp_path, digits):
    out = tmp_path / "vae"
    assert cli("train", "--data", digits, "--out", out, "--epochs", "1", "--quiet", "--latent-dim", "2").returncode == 0
    for args, message in [
        (["sample", out, "--sampler", "gmm"], "fit-sampler"),
        (["sample", out, "--sampler", "flow"], "unknown sampler"),
        (["sample", out, "--label", "1"], "not conditional"),
        (["fit-sampler", out, "--components", "0"], "components"),
    ]:
        result = cli(*args)
        assert result.returncode == 2 and message in result.stderr and result.stderr.strip().count("\n") == 0, (
            result.stderr
        )
    assert samplers.fitted(out) == {}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["iwae", "vamp", "cvae"])
def test_new_kinds_train_on_two_processes(digits_npz, tmp_path, kind):
    from tests.training.test_distributed import torchrun

    out = tmp_path / kind
    result = torchrun(
        "train",
        "--kind",
        kind,
        "--out",
        out,
        "--data",
        digits_npz(600, 100),
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr[-3000:]  # includes the check that all processes hold the same weights
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()[1:]]
    assert [e["epoch"] for e in lines] == [1, 2] and math.isfinite(lines[-1]["test"]["loss"])


def test_the_iwae_test_terms_of_rank_1_cover_its_shard(tmp_path, mirror):
    from vaelab.kinds.iwae import split_bound
    from vaelab.training.split import split_terms

    world = World(rank=1, size=2)
    trainer = kinds.get("iwae").trainer(make(tmp_path, epochs=2, kind="iwae", k=2, seed=1), SHAPE, CPU, world)
    images, seed = uint8(11, seed=3), 1 + EVAL_SEED_OFFSET
    got = trainer.test_terms(images, None, 1)
    terms = split_terms(trainer.model, images, seed=seed, batch_size=4, world=world)
    bound = split_bound(
        trainer.model, images, 2, binarize_images=False, seed=seed, batch_size=4, device=CPU, world=world
    )
    assert got == {"loss": -bound["bound"], "recon": terms["recon"], "kl": terms["kl"], **bound}
    alone = split_terms(trainer.model, images, seed=seed, batch_size=4)
    assert alone["recon"] != terms["recon"]  # rank 1's shard, not the whole split
    whole = split_bound(
        trainer.model, images, 2, binarize_images=False, seed=seed, batch_size=4, device=CPU, world=World()
    )
    assert whole["bound"] != bound["bound"]
