"""The β-TCVAE kind (Chen et al. 2018): its estimators of log q(z) against brute-force sums over a tiny batch, the
KL decomposition on cases whose parts are known exactly (identical posteriors: no information, no correlation; two
far-apart correlated posteriors: log 2 of each), the identity mi + tc + dwkl = the mean KL in expectation, the step
written out, its options, and end to end a one-epoch run and its resume."""

import json
import math

import pytest
import torch

from tests.helpers.runs import assert_same_tensors, epochs_of, ok, one_line_error, resume, train
from tests.helpers.tiny import batch, make, trainer_of
from vaelab import kinds
from vaelab.errors import ConfigError
from vaelab.kinds.betatc import decomposition, log_density_table, log_weights
from vaelab.losses import bernoulli_log_likelihood
from vaelab.models import DiagonalGaussian, standard_normal_log_prob


def _posterior(m: int, d: int, seed: int = 0) -> DiagonalGaussian:
    g = torch.Generator().manual_seed(seed)
    return DiagonalGaussian(
        torch.randn(m, d, generator=g, dtype=torch.float64), torch.randn(m, d, generator=g, dtype=torch.float64) * 0.3
    )


def _normal(x: float, mean: float, logvar: float) -> float:
    return math.exp(-0.5 * ((x - mean) ** 2 / math.exp(logvar) + logvar + math.log(2 * math.pi)))


def _brute_force(z, posterior, weight) -> tuple[list[float], list[float]]:
    """log q(z_i) and sum_d log q(z_id) with the weight `weight(i, j)` of member j's posterior, by loops."""
    m, d = z.shape
    mean, logvar = posterior.mean.tolist(), posterior.logvar.double().tolist()
    joint, marginals = [], []
    for i in range(m):
        joint.append(
            math.log(
                sum(
                    weight(i, j) * math.prod(_normal(z[i, k].item(), mean[j][k], logvar[j][k]) for k in range(d))
                    for j in range(m)
                )
            )
        )
        marginals.append(
            sum(
                math.log(sum(weight(i, j) * _normal(z[i, k].item(), mean[j][k], logvar[j][k]) for j in range(m)))
                for k in range(d)
            )
        )
    return joint, marginals


def _parts(z, posterior, n, estimator):
    return decomposition(z, posterior, standard_normal_log_prob(z), n, estimator)


def test_the_table_holds_each_samples_density_under_each_members_posterior():
    posterior = _posterior(4, 3)
    z = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    table = log_density_table(z, posterior)
    for i in range(4):
        for j in range(4):
            one = DiagonalGaussian(posterior.mean[j : j + 1], posterior.logvar[j : j + 1])
            per_dim = [
                math.log(_normal(z[i, k].item(), one.mean[0, k].item(), one.logvar[0, k].item())) for k in range(3)
            ]
            torch.testing.assert_close(table[i, j], torch.tensor(per_dim, dtype=torch.float64))


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_the_estimators_of_log_q_z_equal_their_sums_written_out(estimator):
    """mws: every member weighs 1/M; mss (the paper's appendix C.2): the sample's own posterior 1/N, the next member
    (N - M + 1) / (N (M - 1)), the others 1 / (M - 1). Compared on a batch of 5 of a data set of 40."""
    m, n, d = 5, 40, 3
    posterior = _posterior(m, d)
    z = posterior.sample(torch.Generator().manual_seed(2))

    def weight(i, j):
        if estimator == "mws":
            return 1 / m
        if i == j:
            return 1 / n
        return (n - m + 1) / (n * (m - 1)) if j == (i + 1) % m else 1 / (m - 1)

    joint, marginals = _brute_force(z, posterior, weight)
    parts = _parts(z, posterior, n, estimator)
    log_q_given_n = posterior.log_prob(z)
    log_p = standard_normal_log_prob(z)
    torch.testing.assert_close(parts["mi"], log_q_given_n - torch.tensor(joint, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        parts["tc"], torch.tensor(joint) - torch.tensor(marginals), atol=1e-5, rtol=0, check_dtype=False
    )
    torch.testing.assert_close(parts["dwkl"], torch.tensor(marginals, dtype=torch.float64) - log_p, atol=1e-5, rtol=0)


@pytest.mark.parametrize("m,n", [(2, 2), (5, 5), (5, 40), (16, 1000)])
def test_every_row_of_weights_sums_to_one(m, n):
    for estimator in ("mws", "mss"):
        torch.testing.assert_close(log_weights(m, n, estimator).exp().sum(1), torch.ones(m))


def test_the_stratified_estimator_refuses_a_batch_larger_than_the_data_set():
    with pytest.raises(ValueError, match="at least as large as the batch"):
        log_weights(5, 4, "mss")


def test_a_batch_of_one_is_its_own_aggregate_posterior():
    assert torch.equal(log_weights(1, 10, "mss"), torch.zeros(1, 1))
    posterior = _posterior(1, 2)
    parts = _parts(posterior.mean, posterior, 10, "mws")
    assert parts["mi"].abs().max() < 1e-12 and parts["tc"].abs().max() < 1e-12


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_the_three_parts_add_up_to_the_monte_carlo_kl_whatever_the_estimate_of_q_z(estimator):
    posterior = _posterior(6, 4)
    z = posterior.sample(torch.Generator().manual_seed(3))
    parts = _parts(z, posterior, 50, estimator)
    total = parts["mi"] + parts["tc"] + parts["dwkl"]
    torch.testing.assert_close(total, posterior.log_prob(z) - standard_normal_log_prob(z))


def test_identical_factorized_posteriors_carry_no_information_and_no_correlation():
    """q(z|n) the same for every n: q(z) = q(z|n) = prod_d q(z_d), so mi = tc = 0 exactly and dwkl is all the KL
    (the batch is the whole data set: the full-data estimator)."""
    one = _posterior(1, 3)
    posterior = DiagonalGaussian(one.mean.expand(4, 3), one.logvar.expand(4, 3))
    z = posterior.sample(torch.Generator().manual_seed(4))
    parts = _parts(z, posterior, 4, "mws")
    assert parts["mi"].abs().max() < 1e-9 and parts["tc"].abs().max() < 1e-9
    torch.testing.assert_close(parts["dwkl"], posterior.log_prob(z) - standard_normal_log_prob(z))


def test_two_far_apart_posteriors_on_the_diagonal_hold_log_2_of_information_and_of_total_correlation():
    """Two data points whose narrow posteriors sit at (a, a) and (-a, -a): q(z) has two modes of 1/2, the product of
    its marginals four of 1/4, so (with the whole data set as the batch) mi = log 2 and tc = log 2."""
    a, logvar = 5.0, math.log(0.01)
    posterior = DiagonalGaussian(
        torch.tensor([[a, a], [-a, -a]], dtype=torch.float64), torch.full((2, 2), logvar, dtype=torch.float64)
    )
    for seed in range(5):
        z = posterior.sample(torch.Generator().manual_seed(seed))
        parts = _parts(z, posterior, 2, "mws")
        torch.testing.assert_close(parts["mi"], torch.full((2,), math.log(2), dtype=torch.float64))
        torch.testing.assert_close(parts["tc"], torch.full((2,), math.log(2), dtype=torch.float64))


def test_the_parts_estimate_the_mean_kl_in_expectation_with_the_full_data_estimator():
    """Over many draws for a data set of 6 (the batch is the whole data set, so q(z) is exact), the means of
    mi + tc + dwkl approach the mean analytic KL; mi stays within [0, log N]."""
    posterior = _posterior(6, 3, seed=5)
    g = torch.Generator().manual_seed(6)
    totals, mis = [], []
    for _ in range(500):
        z = posterior.sample(g)
        parts = _parts(z, posterior, 6, "mws")
        totals.append((parts["mi"] + parts["tc"] + parts["dwkl"]).mean())
        mis.append(parts["mi"].mean())
    mean_total, kl = torch.stack(totals).mean(), posterior.kl().mean()
    assert abs(float(mean_total - kl)) < 0.05 * float(kl), (float(mean_total), float(kl))
    assert 0 <= float(torch.stack(mis).mean()) <= math.log(6)


def test_the_step_is_recon_plus_kl_plus_beta_minus_one_times_the_total_correlation(tmp_path):
    """The logged terms of one batch, and the loss the optimizer takes, written out: recon and the analytic KL at the
    reparameterized z, the decomposition at that z with N = --data-size, loss = recon + kl + (beta - 1) * tc."""
    config = make(tmp_path, kind="betatc", beta=3.0, tc_estimator="mss", data_size=50)
    trainer = trainer_of(config)
    x = batch(8)
    terms, loss = trainer.forward(x, None, 0.0, torch.Generator().manual_seed(9))
    q = trainer.model.encode(x)
    z = q.mean + q.std * torch.randn(q.mean.shape, generator=torch.Generator().manual_seed(9))
    recon = -bernoulli_log_likelihood(trainer.model.decode(z), x).sum()
    parts = decomposition(z, q, standard_normal_log_prob(z), 50, "mss")
    torch.testing.assert_close(terms["recon"], recon)
    torch.testing.assert_close(terms["kl"], q.kl().sum())
    for name in ("mi", "tc", "dwkl"):
        torch.testing.assert_close(terms[name], parts[name].sum())
    torch.testing.assert_close(terms["loss"], recon + q.kl().sum() + 2.0 * parts["tc"].sum())
    torch.testing.assert_close(loss, terms["loss"] / 8)


def test_the_test_terms_keep_the_true_elbo(tmp_path):
    """recon and kl on the test split are the VAE's (split_terms with the same seed): -ELBO compares across kinds."""
    from vaelab.noise import EVAL_SEED_OFFSET
    from vaelab.training.split import split_terms

    config = make(tmp_path, kind="betatc", beta=5.0)
    trainer = trainer_of(config)
    images = (batch(12) * 255).to(torch.uint8)
    got = trainer.test_terms(images, None, 1)
    plain = split_terms(trainer.model, images, seed=config.seed + EVAL_SEED_OFFSET, batch_size=4)
    assert got["recon"] == pytest.approx(plain["recon"]) and got["kl"] == pytest.approx(plain["kl"])
    assert got["loss"] == pytest.approx(got["recon"] + got["kl"] + 4.0 * got["tc"])


def test_the_options_are_checked():
    for values, message in (
        ({"tc_estimator": "exact"}, "tc_estimator"),
        ({"beta": -1}, "beta"),
        ({"beta": float("nan")}, "beta"),
        ({"data_size": -3}, "data_size"),
        ({"warmup_epochs": 1.0}, "warmup_epochs: has no meaning with --kind betatc"),
    ):
        with pytest.raises(ConfigError, match=message):
            kinds.make_config({"kind": "betatc", **values})


@pytest.mark.e2e
@pytest.mark.usefixtures("no_figures")
def test_a_betatc_run_logs_its_terms_and_resumes_as_if_never_stopped(cli, digits_npz, tmp_path):
    """One epoch with the stratified estimator logs every term on both splits and reads N from the data; two epochs
    in one go equal one plus a resume (weights, both Adam moments, the noise); bad values are one-line errors."""
    digits = digits_npz(256, 64)
    ok(train(cli, digits, tmp_path / "one", "betatc", "--tc-estimator", "mss", epochs=1))
    (record,) = epochs_of(tmp_path / "one")
    for split in ("train", "test"):
        assert {"loss", "recon", "kl", "mi", "tc", "dwkl"} <= set(record[split]), record[split]
        assert all(math.isfinite(v) for v in record[split].values())
    saved = json.loads((tmp_path / "one" / "config.json").read_text())["train"]
    assert saved["data_size"] == 256 and saved["tc_estimator"] == "mss" and saved["beta"] == 6.0
    ok(resume(cli, tmp_path / "one", 2))
    ok(train(cli, digits, tmp_path / "two", "betatc", "--tc-estimator", "mss", epochs=2))
    assert_same_tensors(tmp_path / "one", tmp_path / "two")
    for flag, value in (("--beta", "inf"), ("--tc-estimator", "exact"), ("--beta", "-2")):
        message = one_line_error(train(cli, digits, tmp_path / "bad", "betatc", flag, value))
        assert flag in message or f"error: {flag[2:].replace('-', '_')}: " in message, message
    assert not (tmp_path / "bad").exists()
