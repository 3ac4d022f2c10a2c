"""The disentanglement metrics (vaelab.evaluate.disentanglement, issue 23 item 3) against known answers: codes that
are the factors themselves score at the top, a random rotation of them and pure noise score low, a duplicated
factor lowers MIG and completeness by what the definitions say, each metric is invariant to what its definition
leaves out (permutation, rescaling of code dimensions), and the numbers do not depend on the thread count."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vaelab.evaluate import disentanglement as dis

SIZES = [3, 6, 40, 32, 32]  # dSprites' factors
N = 4000


@pytest.fixture(scope="module")
def factors():
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, k, N) for k in SIZES], axis=1)


@pytest.fixture(scope="module")
def codes(factors):
    """The factors themselves, one per code dimension, plus a little noise (codes are never exactly discrete)."""
    return factors + np.random.default_rng(1).normal(0, 0.01, factors.shape)


def scores(codes, factors) -> dict[str, float]:
    d, c, i, _ = dis.dci(codes, factors)
    return dict(
        mig=dis.mig(codes, factors),
        disentanglement=d,
        completeness=c,
        informativeness=i,
        sap=dis.sap(codes, factors),
        factorvae=dis.factorvae_score(codes, factors),
    )


def bin_ceiling(factors) -> float:
    """MIG of perfect codes with 20 bins: a factor of more than 20 values loses what the bins merge."""
    binned = dis.discretize(factors.astype(float))
    return float(
        np.mean([dis.factor_entropies(binned[:, [k]])[0] / h for k, h in enumerate(dis.factor_entropies(factors))])
    )


def test_mutual_information_known_answers():
    """A code equal to a uniform 4-valued factor holds log 4 nats about it, an independent one none."""
    f = np.repeat(np.arange(4), 250)[:, None]
    independent = np.tile(np.arange(10), 100).astype(float)
    mi = dis.mutual_information(np.c_[f.astype(float), independent], f)
    assert mi.shape == (1, 2)
    assert math.isclose(mi[0, 0], math.log(4), rel_tol=1e-12) and abs(mi[0, 1]) < 1e-12
    assert np.allclose(dis.factor_entropies(np.c_[f, f % 2]), [math.log(4), math.log(2)])
    assert dis.discretize(np.array([[0.0], [0.5], [1.0]]), bins=4)[:, 0].tolist() == [0, 2, 3]


def test_the_factors_themselves_score_at_the_top(codes, factors):
    s = scores(codes, factors)
    assert s["mig"] > 0.97 * bin_ceiling(factors) and bin_ceiling(factors) > 0.85  # less: MI's small-sample bias
    assert s["disentanglement"] > 0.99 and s["completeness"] > 0.99 and s["informativeness"] > 0.99
    assert s["sap"] > 0.99 and s["factorvae"] == 1.0
    _, _, _, importance = dis.dci(codes, factors)
    assert importance.shape == (5, 5) and np.allclose(importance, np.eye(5), atol=0.01)
    # extra dimensions of noise do not change who explains what
    noisy = np.c_[codes, np.random.default_rng(2).normal(size=(N, 5))]
    t = scores(noisy, factors)
    assert t["mig"] > 0.97 * bin_ceiling(factors) and t["disentanglement"] > 0.95 and t["factorvae"] == 1.0


def test_a_random_rotation_scores_low(codes, factors):
    """Mixing the factors over every dimension spreads MI, importance and correlation: each metric drops. The
    FactorVAE score drops least: its vote only needs the dimension that varies least, which a rotation still maps
    one-to-one to most factors (a property of Kim & Mnih's classifier)."""
    standard = (codes - codes.mean(0)) / codes.std(0)
    runs = []
    for seed in (3, 5, 6):  # the mean over three random rotations (one may by chance be near a permutation)
        rotation, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(5, 5)))
        runs.append(scores(standard @ rotation, factors))
    s = {name: np.mean([r[name] for r in runs]) for name in runs[0]}
    assert s["mig"] < 0.2 and s["disentanglement"] < 0.5 and s["completeness"] < 0.5 and s["sap"] < 0.4
    assert s["informativeness"] > 0.9  # a rotation loses no information
    assert s["factorvae"] < 0.9


def test_pure_noise_scores_near_zero(factors):
    s = scores(np.random.default_rng(4).normal(size=(N, 10)), factors)
    assert s["mig"] < 0.01 and s["sap"] < 0.01 and s["informativeness"] < 0.01
    assert s["disentanglement"] < 0.1 and s["completeness"] < 0.1
    assert s["factorvae"] < 1 / 5 + 0.08  # chance is 1/K


def test_a_duplicated_factor_lowers_mig_and_completeness(codes, factors):
    """x held by two dimensions: its MI gap is 0 (MIG loses that factor's share) and its importance splits in
    halves, so its completeness is 1 - log 2 / log D; the other factors and disentanglement are unchanged."""
    base = scores(codes, factors)
    dup = np.c_[codes, codes[:, 3]]
    s = scores(dup, factors)
    gaps = dis.mig_per_factor(dis.mutual_information(codes, factors), dis.factor_entropies(factors))
    assert math.isclose(s["mig"], base["mig"] - gaps[3] / 5, rel_tol=1e-9)
    _, c, _, importance = dis.dci(dup, factors)
    assert np.allclose(importance[[3, 5], 3], [0.5, 0.5])
    assert math.isclose(c, (4 * base["completeness"] + 1 - math.log(2) / math.log(6)) / 5, rel_tol=1e-3)
    assert s["disentanglement"] > 0.99


def test_invariance_to_permuting_and_rescaling_dimensions(codes, factors):
    """Every metric ignores the order of the dimensions; MIG and SAP any affine rescaling (MI of equal-width bins,
    squared correlations), DCI any increasing one (trees), the FactorVAE score any scaling of an active dimension
    (codes are divided by their standard deviation)."""
    mixed = np.c_[
        (codes - codes.mean(0)) / codes.std(0) @ np.linalg.qr(np.random.default_rng(5).normal(size=(5, 5)))[0]
    ]
    mixed = np.c_[mixed, codes[:, :2] + np.random.default_rng(6).normal(0, 2, (N, 2))]  # not a trivial case
    base = scores(mixed, factors)
    perm = [4, 0, 6, 2, 1, 5, 3]
    assert scores(mixed[:, perm], factors) == pytest.approx(base, abs=1e-12)
    scale = np.array([3.0, 0.25, 7.5, 1.0, 0.5, 2.0, 40.0])
    rescaled = scores(mixed * scale + 11.0, factors)
    assert rescaled == pytest.approx(base, abs=1e-9)
    flipped = mixed * np.array([-1, 1, -2, 1, 1, -1, 1])
    assert dis.mig(flipped, factors) == pytest.approx(base["mig"], abs=1e-9)
    assert dis.sap(flipped, factors) == pytest.approx(base["sap"], abs=1e-9)
    # DCI's trees split at quantiles: any increasing transform of a code leaves them the same splits
    d, c, i, _ = dis.dci(np.exp(mixed / 4) + mixed**3, factors)
    assert (d, c, i) == pytest.approx(
        (base["disentanglement"], base["completeness"], base["informativeness"]), abs=1e-12
    )


def test_constant_factors_are_left_out(codes, factors):
    """A factor with one value holds no information: it leaves every average unchanged."""
    with_constant = np.c_[factors, np.zeros(N, dtype=np.int64)]
    codes_plus = np.c_[codes, np.random.default_rng(7).normal(size=N)]
    assert scores(codes_plus, with_constant) == pytest.approx(scores(codes_plus, factors), abs=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="same N"):
        dis.mig(np.zeros((5, 2)), np.zeros((4, 1), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        dis.sap(np.zeros((5, 2)), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="NaN"):
        dis.dci(np.full((5, 2), np.nan), np.zeros((5, 1), dtype=int))


SCRIPT = """
import importlib.util, json, sys
import numpy as np
spec = importlib.util.spec_from_file_location("dis", sys.argv[1])
dis = importlib.util.module_from_spec(spec); spec.loader.exec_module(dis)
rng = np.random.default_rng(0)
f = np.stack([rng.integers(0, k, 3000) for k in (3, 6, 40, 32, 32)], axis=1)
z = np.c_[f + rng.normal(0, 0.3, f.shape), rng.normal(size=(3000, 3))] @ rng.normal(size=(8, 8))
d, c, i, r = dis.dci(z, f)
print(json.dumps([dis.mutual_information(z, f).tolist(), d, c, i, r.tolist(), dis.sap(z, f), dis.factorvae_score(z, f)]))
"""


def test_results_do_not_depend_on_the_thread_count():
    """The same numbers, bit for bit, with 1 and with 2 threads for every thread pool numpy may use."""
    path = Path(dis.__file__)
    outputs = []
    for threads in ("1", "2"):
        env = {**os.environ, **{v: threads for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
        done = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
