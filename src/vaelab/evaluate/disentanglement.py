"""Disentanglement metrics from codes `[N, D]` (float) and known factors `[N, K]` (int value indices), pure numpy.

Each follows its paper, with the estimator's choices fixed here (the defaults) and written in `vaelab eval`'s report:
- MIG (Chen et al. 2018, "Isolating sources of disentanglement in VAEs", eq. 8): per factor, the gap between the two
  largest mutual informations I(z_j; v_k) divided by H(v_k), averaged over factors. I(z_j; v_k) is estimated as
  Locatello et al. (2019) do: each code dimension discretized into `BINS` equal-width bins over its range.
- DCI (Eastwood & Williams 2018, "A framework for the quantitative evaluation of disentangled representations"):
  an importance matrix R `[D, K]` from one regressor per factor; disentanglement = sum_j rho_j (1 - H_K(P_j.)),
  completeness = mean_k (1 - H_D(P.k)), informativeness = the regressors' held-out accuracy. The regressor is
  gradient-boosted decision stumps (least squares, `DCI_ROUNDS` rounds, shrinkage `DCI_SHRINKAGE`, split points at
  `DCI_BINS` quantiles of each code, as histogram gradient boosting does), deterministic, trained on a seeded
  `1 - DCI_TEST_FRACTION` of the codes, with the importance of a code dimension its total reduction of squared
  error (as the paper's random forests).
  Dimensions that split the data identically share a round's reduction equally (a duplicated code is credited to
  both copies, as the definition of completeness asks). Informativeness is reported as the mean held-out R^2 of the
  factor's value index (1 is perfect, 0 no better than its mean; the paper's error is 1 - R^2 in that normalization).
  Trees are invariant to any increasing transform of a code; unlike a linear regressor they see non-linear codes.
- SAP (Kumar et al. 2018, "Variational inference of disentangled latent concepts from unlabeled observations", sec. 3):
  S_jk = the R^2 of a one-dimensional linear regression of factor k on code j (Cov^2 / (Var Var), the rule the paper
  gives for continuous factors, applied to every factor's value index: right for ordered factors such as dSprites'
  scale and positions; for a categorical one such as its shape it is a simplification of the paper's rule, a
  classifier's accuracy), SAP = mean over factors of the gap between the two largest S_jk.
- FactorVAE score (Kim & Mnih 2018, "Disentangling by factorising", sec. 4): codes divided by their standard
  deviation over the whole set; a vote fixes one factor k at one value, takes `FV_GROUP` images sharing it, and
  votes (argmin_j Var[z_j / s_j], k); a majority-vote classifier from `FV_TRAIN_VOTES` votes is scored on
  `FV_EVAL_VOTES` others. Collapsed dimensions are pruned first, as the paper does; it gives no threshold, so a
  dimension counts as collapsed when the variance of its codes is at most `COLLAPSED`, the active-unit threshold of
  Burda et al. (2016) that `vaelab eval`'s latent usage uses. The images of a vote are drawn from the evaluated
  set (they are not re-rendered); chance is 1/K.

Factors with a single value in the evaluated set carry no information and are left out of every average.
Everything is seeded and uses no BLAS reduction, so results do not depend on the machine's thread count.
"""

from __future__ import annotations

import math

import numpy as np

BINS = 20
DCI_ROUNDS = 150
DCI_SHRINKAGE = 0.2
DCI_TEST_FRACTION = 0.2
DCI_BINS = 128  # a stump splits a code at one of its training values' 1/128 quantiles
FV_GROUP = 64
FV_TRAIN_VOTES = 1000
FV_EVAL_VOTES = 500
COLLAPSED = 0.01  # a code dimension whose variance over the data is at most this is collapsed (an inactive unit)
SEED = 0
TIE = 1e-9  # relative: splits whose gains differ less than this are the same split (duplicated codes)


def _check(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, factors = np.asarray(codes, dtype=np.float64), np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or codes.shape[0] != factors.shape[0] or codes.shape[0] < 2:
        raise ValueError(f"codes [N, D] and factors [N, K] with the same N >= 2, got {codes.shape}, {factors.shape}")
    if factors.dtype.kind not in "ui" or (factors < 0).any():
        raise ValueError("factors must be non-negative integer value indices")
    if not np.isfinite(codes).all():
        raise ValueError("codes hold NaN or infinite values")
    return codes, factors.astype(np.int64)


def _varied(factors: np.ndarray) -> np.ndarray:
    """The factors that take more than one value here (the others carry no information)."""
    return np.array([len(np.unique(factors[:, k])) > 1 for k in range(factors.shape[1])])


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def discretize(codes: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each code dimension into `bins` equal-width bins over its range: int `[N, D]` in `[0, bins)`."""
    codes = np.asarray(codes, dtype=np.float64)
    lo, hi = codes.min(0), codes.max(0)
    width = np.where(hi > lo, hi - lo, 1.0)
    return np.clip(np.floor((codes - lo) / width * bins), 0, bins - 1).astype(np.int64)


def factor_entropies(factors: np.ndarray) -> np.ndarray:
    """H(v_k) in nats of each factor's empirical distribution: `[K]`."""
    factors = np.asarray(factors, dtype=np.int64)
    return np.array([_entropy(np.bincount(factors[:, k])) for k in range(factors.shape[1])])


def mutual_information(codes: np.ndarray, factors: np.ndarray, bins: int = BINS) -> np.ndarray:
    """I(v_k; z_j) in nats `[K, D]`, codes discretized into `bins` equal-width bins: H(v) + H(z) - H(v, z)."""
    codes, factors = _check(codes, factors)
    binned = discretize(codes, bins)
    mi = np.zeros((factors.shape[1], codes.shape[1]))
    for k in range(factors.shape[1]):
        values = factors[:, k]
        h_v = _entropy(np.bincount(values))
        for j in range(codes.shape[1]):
            h_z = _entropy(np.bincount(binned[:, j], minlength=bins))
            h_vz = _entropy(np.bincount(values * bins + binned[:, j]))
            mi[k, j] = max(0.0, h_v + h_z - h_vz)
    return mi


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = BINS) -> float:
    """Mutual information gap (Chen et al. 2018): mean over factors of (I_(1) - I_(2)) / H(v_k)."""
    codes, factors = _check(codes, factors)
    return float(mig_per_factor(mutual_information(codes, factors, bins), factor_entropies(factors)).mean())


def mig_per_factor(mi: np.ndarray, entropies: np.ndarray) -> np.ndarray:
    """Each varied factor's normalized gap `[K']` from I `[K, D]` and H(v) `[K]` (a single code: the gap to 0)."""
    top = -np.sort(-mi, axis=1)
    second = top[:, 1] if mi.shape[1] > 1 else np.zeros(mi.shape[0])
    keep = entropies > 0
    return (top[keep, 0] - second[keep]) / entropies[keep]


# --- DCI ------------------------------------------------------------------------------------------------------------


def quantile_bins(train: np.ndarray, bins: int) -> list[np.ndarray]:
    """Per code dimension, at most `bins - 1` split points: the training values at every `1 / bins` quantile."""
    n = train.shape[0]
    at = (np.arange(1, bins) * n) // bins
    return [np.unique(np.sort(train[:, j])[at]) for j in range(train.shape[1])]


def binned(x: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Bin indices `[N, D]`: how many of a dimension's split points each code reaches (x >= edge)."""
    return np.stack([np.searchsorted(e, x[:, j], side="right") for j, e in enumerate(edges)], axis=1)


def _boosted_stumps(bins: np.ndarray, nbins: int, y: np.ndarray, rounds: int, shrinkage: float):
    """Least-squares gradient boosting of stumps on binned codes `bins` `[N, D]` (values < nbins), target `y` `[N]`.

    Each round fits the stump (a dimension and a bin boundary) that most reduces the squared error of the residual,
    from per-bin sums (one weighted bincount over N x D). Returns the mean, the stumps [(dims, last left bin per dim,
    left value, right value)] and the importance `[D]` (the total reduction of squared error credited to each)."""
    n, d = bins.shape
    flat = (bins + np.arange(d) * nbins).ravel()  # [N * D] row-major: image i's D bins, then image i + 1's
    counts = np.bincount(flat, minlength=d * nbins).reshape(d, nbins).astype(np.float64)
    left_n = np.cumsum(counts, axis=1)[:, :-1]  # [D, nbins - 1]: images left of each boundary
    right_n = n - left_n
    valid = (left_n > 0) & (right_n > 0)
    inv_left, inv_right = 1 / np.where(valid, left_n, 1), 1 / np.where(valid, right_n, 1)
    mean = y.mean()
    residual = y - mean
    importance = np.zeros(d)
    stumps = []
    for _ in range(rounds):
        sums = np.bincount(flat, weights=np.repeat(residual, d), minlength=d * nbins).reshape(d, nbins)
        left = np.cumsum(sums, axis=1)[:, :-1]
        total = residual.sum()
        # the reduction of squared error of splitting there: S_L^2 / n_L + S_R^2 / n_R - S^2 / n
        gain = np.where(valid, left * left * inv_left + (total - left) ** 2 * inv_right, -np.inf) - total**2 / n
        best_b = gain.argmax(axis=1)  # [D]: each dimension's best boundary
        best = gain[np.arange(d), best_b]
        top = best.max()
        if not np.isfinite(top) or top <= 1e-12 * max(1.0, float((residual**2).sum())):
            break
        chosen = np.nonzero(best >= top - TIE * abs(top))[0]  # ties: the same split found by several dimensions
        b = best_b[chosen]
        lefts = left[chosen, b] * inv_left[chosen, b]
        rights = (total - left[chosen, b]) * inv_right[chosen, b]
        step = np.where(bins[:, chosen] <= b, lefts, rights).sum(axis=1)
        residual = residual - shrinkage * step / len(chosen)
        importance[chosen] += top / len(chosen)
        stumps.append((chosen, b, lefts, rights))
    return mean, stumps, importance


def _predict(bins: np.ndarray, mean: float, stumps, shrinkage: float) -> np.ndarray:
    out = np.full(bins.shape[0], mean)
    for dims, last_left, lefts, rights in stumps:
        step = np.where(bins[:, dims] <= last_left, lefts, rights)  # [N, len(dims)]
        out += shrinkage * step.sum(axis=1) / len(dims)
    return out


def importance_matrix(
    codes: np.ndarray,
    factors: np.ndarray,
    rounds: int = DCI_ROUNDS,
    shrinkage: float = DCI_SHRINKAGE,
    test_fraction: float = DCI_TEST_FRACTION,
    seed: int = SEED,
    bins: int = DCI_BINS,
) -> tuple[np.ndarray, np.ndarray]:
    """R `[D, K]` (each factor's column sums to 1, or is 0 when nothing predicts it) and the held-out R^2 `[K]` of
    boosted stumps trained on a seeded `1 - test_fraction` of the codes."""
    codes, factors = _check(codes, factors)
    n = codes.shape[0]
    order = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    test, train = order[:n_test], order[n_test:]
    edges = quantile_bins(codes[train], bins)
    b_train, b_test = binned(codes[train], edges), binned(codes[test], edges)
    r = np.zeros((codes.shape[1], factors.shape[1]))
    r2 = np.zeros(factors.shape[1])
    for k in range(factors.shape[1]):
        y = factors[:, k].astype(np.float64)
        mean, stumps, importance = _boosted_stumps(b_train, bins, y[train], rounds, shrinkage)
        if importance.sum() > 0:
            r[:, k] = importance / importance.sum()
        variance = ((y[test] - y[test].mean()) ** 2).mean()
        error = ((y[test] - _predict(b_test, mean, stumps, shrinkage)) ** 2).mean()
        r2[k] = max(0.0, 1 - error / variance) if variance > 0 else 0.0
    return r, r2


def _one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """1 - H_base(p) for each row of p (rows summing to 1); a single outcome (base 1) is fully concentrated."""
    if base < 2:
        return np.ones(p.shape[0])
    safe = np.where(p > 0, p, 1.0)
    return 1 + (p * np.log(safe)).sum(axis=1) / math.log(base)


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    rounds: int = DCI_ROUNDS,
    shrinkage: float = DCI_SHRINKAGE,
    test_fraction: float = DCI_TEST_FRACTION,
    seed: int = SEED,
    bins: int = DCI_BINS,
) -> tuple[float, float, float, np.ndarray]:
    """(disentanglement, completeness, informativeness, importance `[D, K]`) (Eastwood & Williams 2018)."""
    codes, factors = _check(codes, factors)
    keep = _varied(factors)
    r, r2 = importance_matrix(codes, factors[:, keep], rounds, shrinkage, test_fraction, seed, bins)
    importance = np.zeros((codes.shape[1], factors.shape[1]))
    importance[:, keep] = r
    if r.sum() == 0:
        return 0.0, 0.0, float(r2.mean()), importance
    # disentanglement: per code, how concentrated its importance is on one factor, weighted by its share
    per_code = r.sum(axis=1)
    used = per_code > 0
    disentanglement = _one_minus_entropy(r[used] / per_code[used, None], r.shape[1])
    weight = per_code[used] / per_code.sum()
    # completeness: per factor, how concentrated it is on one code (factors nothing predicts count as 0)
    per_factor = r.sum(axis=0)
    completeness = np.zeros(r.shape[1])
    predicted = per_factor > 0
    completeness[predicted] = _one_minus_entropy((r[:, predicted] / per_factor[predicted]).T, r.shape[0])
    return float((weight * disentanglement).sum()), float(completeness.mean()), float(r2.mean()), importance


# --- SAP ------------------------------------------------------------------------------------------------------------


def sap_matrix(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """S `[D, K]`: the R^2 of a linear regression of factor k on code j alone (0 for a constant code or factor)."""
    codes, factors = _check(codes, factors)
    z = codes - codes.mean(0)
    v = factors - factors.mean(0)
    cov = np.stack([(z * v[:, k : k + 1]).mean(0) for k in range(v.shape[1])], axis=1)  # [D, K], no BLAS
    var_z, var_v = (z**2).mean(0), (v**2).mean(0)
    denominator = var_z[:, None] * var_v[None, :]
    return np.where(denominator > 0, cov**2 / np.where(denominator > 0, denominator, 1.0), 0.0)


def sap(codes: np.ndarray, factors: np.ndarray) -> float:
    """Separated attribute predictability (Kumar et al. 2018): mean over factors of the top-two gap of S."""
    codes, factors = _check(codes, factors)
    s = sap_matrix(codes, factors)[:, _varied(factors)]
    top = -np.sort(-s, axis=0)
    second = top[1] if s.shape[0] > 1 else np.zeros(s.shape[1])
    return float((top[0] - second).mean())


# --- FactorVAE score ------------------------------------------------------------------------------------------------


def _votes(codes, factors, scale, active, groups, count, rng):
    """`count` votes (argmin_j of the normalized variance, k) for groups sharing one value of a random factor."""
    varied = [k for k in range(factors.shape[1]) if len(groups[k]) > 1]
    out = np.zeros((count, 2), dtype=np.int64)
    for t in range(count):
        k = varied[rng.integers(len(varied))]
        anchor = rng.integers(codes.shape[0])  # a value of factor k, drawn as often as it occurs
        members = groups[k][factors[anchor, k]]
        pick = members[rng.choice(len(members), size=min(FV_GROUP, len(members)), replace=False)]
        variance = (codes[pick][:, active] / scale[active]).var(axis=0)
        out[t] = np.flatnonzero(active)[variance.argmin()], k
    return out


def factorvae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    train_votes: int = FV_TRAIN_VOTES,
    eval_votes: int = FV_EVAL_VOTES,
    collapsed: float = COLLAPSED,
    seed: int = SEED,
) -> float:
    """Kim & Mnih's FactorVAE score: the held-out accuracy of the majority-vote classifier (chance: 1/K)."""
    codes, factors = _check(codes, factors)
    variance = codes.var(axis=0)
    active = variance > collapsed
    if not active.any() or not _varied(factors).any():
        return 0.0
    scale = np.sqrt(np.where(variance > 0, variance, 1.0))
    groups = []
    for k in range(factors.shape[1]):
        values = factors[:, k]
        order = np.argsort(values, kind="stable")
        cut = np.flatnonzero(np.diff(values[order])) + 1
        found = dict(zip(values[order][np.r_[0, cut]].tolist(), np.split(order, cut)))
        groups.append(found)
    rng = np.random.Generator(np.random.PCG64(seed))
    train = _votes(codes, factors, scale, active, groups, train_votes, rng)
    held = _votes(codes, factors, scale, active, groups, eval_votes, rng)
    counts = np.zeros((codes.shape[1], factors.shape[1]), dtype=np.int64)
    np.add.at(counts, (train[:, 0], train[:, 1]), 1)
    predicted = counts.argmax(axis=1)  # per code dimension, its most voted factor (ties: the first)
    return float((predicted[held[:, 0]] == held[:, 1]).mean())
