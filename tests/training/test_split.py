"""The IWAE estimator, the Frechet distance, precision / recall, active units and the split means, each against
a direct reference computation on tiny inputs. Written to kill the mutants scripts/mutate.py found alive."""

import math

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal

from tests.helpers.tiny import CPU, SHAPE, make, uint8
from vaelab import data, kinds
from vaelab.device import World
from vaelab.evaluate import frechet
from vaelab.evaluate.frechet import frechet_distance, precision_recall
from vaelab.evaluate.iwae import BLOCK_FLOATS, decoded_width, iwae_log_likelihood
from vaelab.evaluate.latents import active_units, collapse_warning, posterior_stats
from vaelab.losses import binarize, vae_terms
from vaelab.models import VAE, VAEConfig
from vaelab.training.split import split_means, split_terms


def tiny_vae(likelihood: str = "bernoulli", latent_dim: int = 3) -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(shape=(1, 3, 2), latent_dim=latent_dim, hidden=(8,), likelihood=likelihood, sigma=0.4))


def images(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 3, 2), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


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
    model, data = tiny_vae(likelihood), images(9)
    model.train()
    estimate = iwae_log_likelihood(model, data, k, seed=4, rows=rows)
    assert estimate.dtype == torch.float64 and estimate.shape == (9,) and not model.training
    torch.testing.assert_close(estimate, iwae_reference(model, data, k, 4, rows), rtol=1e-5, atol=1e-4)


def test_iwae_defaults_and_bf16(capfd, monkeypatch):
    monkeypatch.setenv("VAELAB_PROGRESS", "1")  # a bar would show, were it not quiet by default
    model, data = tiny_vae(), images(4)
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
    monkeypatch.setenv("VAELAB_PROGRESS", "1")
    iwae_log_likelihood(tiny_vae(), images(3), 2, quiet=False)
    err = capfd.readouterr().err
    assert "IWAE log-likelihood, k=2" in err and "3/3" in err and "img/s" in err


def frechet_reference(a: torch.Tensor, b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2)), the eigenvalues of S_a S_b being real and >= 0."""
    a, b = a.double(), b.double()
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    roots = torch.linalg.eigvals(cov_a @ cov_b).real.clamp(min=0).sqrt().sum()
    return float((a.mean(0) - b.mean(0)).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * roots)


def test_frechet_distance_matches_the_reference_for_small_and_large_spreads():
    torch.manual_seed(0)
    for scale in (0.05, 1.0, 20.0):
        a = scale * torch.randn(50, 3) @ torch.randn(3, 3)
        b = scale * torch.randn(60, 3) @ torch.randn(3, 3) + 0.3
        assert frechet_distance(a, b) == pytest.approx(frechet_reference(a, b), rel=1e-6, abs=1e-9)
    assert frechet_distance(torch.ones(5, 2), torch.ones(5, 2)) == 0.0
    # a degenerate covariance (a zero-variance feature): its eigenvalues may come out slightly negative
    c = torch.randn(40, 3, dtype=torch.float64)
    c[:, 2] = 1.0
    assert frechet_distance(c, c) == pytest.approx(0.0, abs=1e-9)


def test_knn_radii_and_coverage_are_exact_on_a_line():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    torch.testing.assert_close(frechet._knn_radii(x, 1), torch.tensor([1.0, 1.0, 2.0, 4.0]))
    torch.testing.assert_close(frechet._knn_radii(x, 2), torch.tensor([3.0, 2.0, 3.0, 6.0]))
    torch.testing.assert_close(frechet._knn_radii(x, 1, chunk=3), torch.tensor([1.0, 1.0, 2.0, 4.0]))
    centres, radii = torch.tensor([[0.0], [10.0]]), torch.tensor([1.0, 0.5])
    points = torch.tensor([[1.0], [1.5], [10.5], [9.0], [-1.0]])  # on the boundary counts as inside
    assert frechet._coverage(points, centres, radii) == pytest.approx(3 / 5)
    assert frechet._coverage(points, centres, radii, chunk=2) == pytest.approx(3 / 5)


def test_chunked_and_unchunked_precision_recall_agree():
    torch.manual_seed(1)
    real, fake = torch.randn(1100, 2), torch.randn(1030, 2) + 0.5
    radii = frechet._knn_radii(real, 3)
    torch.testing.assert_close(radii, torch.cdist(real, real).kthvalue(4, dim=1).values)
    inside = (torch.cdist(fake, real) <= radii[None, :]).any(1).float().mean()
    assert frechet._coverage(fake, real, radii) == pytest.approx(float(inside))


def coverage_reference(points, centres, k):
    """The share of `points` within the k-th nearest-neighbour distance of some centre, by loops."""
    inside = 0
    for p in points.tolist():
        for i, c in enumerate(centres.tolist()):
            others = sorted(math.dist(c, o) for j, o in enumerate(centres.tolist()) if j != i)
            if math.dist(p, c) <= others[k - 1]:
                inside += 1
                break
    return inside / len(points)


def test_precision_recall_against_loops_with_the_default_k():
    torch.manual_seed(2)
    real, fake = torch.randn(25, 2, dtype=torch.float64), 1.5 * torch.randn(20, 2, dtype=torch.float64) + 1
    for k in (1, 3):
        p, r = precision_recall(real, fake, k=k)
        assert (p, r) == (
            pytest.approx(coverage_reference(fake, real, k)),
            pytest.approx(coverage_reference(real, fake, k)),
        )
    assert precision_recall(real, fake) == precision_recall(real, fake, k=3)
    assert precision_recall(real, fake, k=2) != precision_recall(real, fake, k=3) != precision_recall(real, fake, k=4)


def test_posterior_stats_over_several_batches():
    model, data = tiny_vae(latent_dim=2), images(10)
    model.train()
    stats = posterior_stats(model, data, batch_size=3)
    assert not model.training
    with torch.no_grad():
        q = model.encode(data.float() / 255)
    assert stats["means"].dtype == torch.float64 and stats["means"].shape == (10, 2)
    torch.testing.assert_close(stats["means"], q.mean.double())
    torch.testing.assert_close(stats["kl_per_dim"], q.kl_per_dim().double().mean(0))
    torch.testing.assert_close(posterior_stats(model, data)["kl_per_dim"], stats["kl_per_dim"])


def test_active_units_counts_the_population_variance_above_the_threshold():
    means = torch.tensor([[0.5, 0.0, 0.2], [-0.5, 0.0, -0.2]], dtype=torch.float64)  # variances 0.25, 0, 0.04
    n, activity = active_units(means, threshold=0.25)
    assert n == 0 and activity.tolist() == pytest.approx([0.25, 0.0, 0.04])
    assert active_units(means, threshold=0.2)[0] == 1
    assert active_units(means)[0] == 2  # the default threshold, 0.01
    assert active_units(torch.full((3, 2), 0.1, dtype=torch.float64) + torch.tensor([[0.0], [0.1], [0.2]]))[0] == 0


def test_collapse_warnings_word_for_word():
    kl = torch.tensor([0.001, 0.0024])
    assert collapse_warning(0, 2, kl) == (
        "posterior collapse: none of the 2 latent dimensions is active (total KL 0.003 nats); the decoder ignores z"
    )
    assert collapse_warning(1, 3, kl) == (
        "partial posterior collapse: 2 of 3 latent dimensions inactive (their q(z|x) stays at the prior)"
    )
    assert collapse_warning(3, 3, kl) is None


def test_split_means_are_exact_means_over_uneven_batches():
    data = images(7)
    model = tiny_vae()
    model.train()

    def terms_of(x, y, generator):
        return {"sum": x.flatten(1).sum(1), "first_label": y.float(), "one": torch.ones(x.shape[0])}

    labels = torch.arange(7)
    means = split_means(model, data, terms_of, labels=labels, batch_size=3)
    assert model.training  # put back as it was
    x = data.double() / 255
    assert means == {
        "sum": pytest.approx(float(x.flatten(1).sum(1).mean())),
        "first_label": pytest.approx(3.0),
        "one": 1.0,
    }
    model.eval()
    split_means(model, data, terms_of, labels=labels)
    assert not model.training


def test_split_means_run_without_gradients_in_eval_mode():
    model = tiny_vae()
    seen = []

    def terms_of(x, y, generator):
        seen.append((torch.is_inference_mode_enabled(), model.training, y))
        return {"x": x.mean((1, 2, 3))}

    split_means(model, images(4), terms_of, batch_size=2)
    assert seen == [(True, False, None), (True, False, None)]


def test_split_means_binarize_with_the_seeded_generator():
    data = images(6)

    def terms_of(x, y, generator):
        return {"x": x.flatten(1).sum(1)}

    model = tiny_vae()
    plain = split_means(model, data, terms_of, batch_size=4)
    a = split_means(model, data, terms_of, binarize=True, seed=5, batch_size=4)
    generator = torch.Generator().manual_seed(5)
    expected = torch.cat([binarize(data[i : i + 4].float() / 255, generator).flatten(1).sum(1) for i in (0, 4)])
    assert a == {"x": pytest.approx(float(expected.double().mean()))} and a != plain
    assert split_means(model, data, terms_of, binarize=True, seed=6, batch_size=4) != a
    assert split_means(model, data, terms_of, binarize=True, batch_size=4) == split_means(
        model, data, terms_of, binarize=True, seed=0, batch_size=4
    )  # the default seed is 0
    assert split_means(model, data, terms_of, binarize=True, batch_size=4) != split_means(
        model, data, terms_of, binarize=True, seed=1, batch_size=4
    )


def test_split_terms_are_the_vae_terms_of_seeded_draws():
    model, data = tiny_vae(), images(45)  # batches of 20, 20, 5: more than 16 draws each, grouped as the batches are
    got = split_terms(model, data, beta=0.5, seed=3, batch_size=20)
    generator = torch.Generator().manual_seed(3)
    sums: dict[str, float] = {}
    with torch.no_grad():
        for i in range(0, 45, 20):
            x = data[i : i + 20].float() / 255
            out = model(x, generator)
            for name, value in vae_terms("bernoulli", out.output, x, out.posterior, model.log_sigma, 0.5).items():
                sums[name] = sums.get(name, 0.0) + float(value.double().sum())
    assert got == pytest.approx({name: value / 45 for name, value in sums.items()}, rel=1e-6)
    assert split_terms(model, data, beta=0.5, seed=3, batch_size=20) == got
    assert split_terms(model, data, beta=0.5, seed=3, batch_size=45) != got  # the draws are grouped by batch
    assert split_terms(model, data, seed=3, batch_size=20)["loss"] != got["loss"]  # beta defaults to 1
    binarized = split_terms(model, data, beta=0.5, binarize=True, seed=3, batch_size=20)
    assert binarized["recon"] != got["recon"]
    default = split_terms(model, data)
    assert default == split_terms(model, data, beta=1.0, seed=0, batch_size=1000, device="cpu")


@pytest.mark.parametrize("rows", [1, 3, 8])
def test_no_decoded_block_exceeds_rows(rows, monkeypatch):
    """`rows` bounds the latents decoded at once (samples x images); by default it is what keeps the widest
    activation within BLOCK_FLOATS floats."""
    from vaelab.evaluate import iwae

    model, sizes = tiny_vae(latent_dim=10), []
    decode = model.decode
    model.decode = lambda z: sizes.append(z.shape[0]) or decode(z)
    iwae_log_likelihood(model, images(5), k=4, rows=rows)
    assert 0 < max(sizes) <= rows and sum(sizes) == 4 * 5
    monkeypatch.setattr(iwae, "BLOCK_FLOATS", rows * decoded_width(model))
    sizes.clear()
    iwae_log_likelihood(model, images(5), k=4)
    assert max(sizes) <= rows and sum(sizes[1:]) == 4 * 5  # the first decode is decoded_width's probe


def test_split_terms_batch_a_thousand_images_by_default():
    """1001 images: one batch of 1000 and one of 1, the seeded draws grouped as with batch_size=1000."""
    model = tiny_vae()
    data = images(1001, seed=3)
    assert split_terms(model, data, seed=4) == split_terms(model, data, seed=4, batch_size=1000)
    assert split_terms(model, data, seed=4) != split_terms(model, data, seed=4, batch_size=1001)


def test_split_means_of_rank_1_is_the_mean_over_its_shard(tmp_path, mirror):
    """Every second image of the split from rank 1 on (10 of 11 images shared out), binarized and scored with the
    seeded generator; sums and counts are summed across the processes, so the mean is the shard's."""
    from vaelab.losses import binarize
    from vaelab.training.split import split_means, split_terms

    images, world = uint8(11, seed=4), World(rank=1, size=2)
    got = split_means(
        nn.Identity(),
        images,
        lambda x, y, g: {"mean": x.flatten(1).mean(1)},
        binarize=True,
        seed=5,
        batch_size=3,
        world=world,
    )
    generator, values = torch.Generator().manual_seed(5), []
    shard = images[1:10:2]
    for start in (0, 3):
        values += binarize(data.to_float(shard[start : start + 3]), generator).flatten(1).mean(1).tolist()
    assert got == pytest.approx({"mean": sum(values) / 5}, rel=1e-6)
    model = kinds.get("vae").trainer(make(tmp_path, epochs=2), SHAPE, CPU, World()).model
    assert split_terms(model, images, seed=2, batch_size=3, world=world) != split_terms(
        model, images, seed=2, batch_size=3
    )
