"""The `disentanglement` section of `vaelab eval`: MIG, DCI, SAP and the FactorVAE score of the encoder's posterior
means on the evaluated split, measured when the data set has known factors (dSprites: `--data dsprites[:N]`).

The estimators and their fixed choices are in `evaluate/disentanglement.py`; the section records them (`estimator`)
and the report writes them out. At most `MAX_IMAGES` images are used, a seeded draw from the split, so the section
costs the same on the whole of dSprites (73,728 test images) as on a subset (measured: bench/disentanglement.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vaelab import progress
from vaelab.evaluate import disentanglement as dis
from vaelab.evaluate.latents import posterior_stats
from vaelab.evaluate.metric import Context, Metric, Section

MAX_IMAGES = 10_000


@dataclass
class DisentanglementResult(Section):
    n_images: int
    factors: list[str]  # the factors, in the order of every per-factor list below
    mig: float
    mig_per_factor: list[float | None]  # None: a factor with one value in these images (left out of every mean)
    dci_disentanglement: float
    dci_completeness: float
    dci_informativeness: float  # mean held-out R^2 of the factors' value indices
    importance: list[list[float]]  # DCI's R [D][K]
    mutual_information: list[list[float]]  # I(v_k; z_j) in nats [K][D]
    sap: float
    factorvae: float  # accuracy of the majority-vote classifier; chance is 1 / (number of factors)
    factorvae_active_dims: int  # code dimensions it votes with (variance > the collapse threshold); 0: score 0
    estimator: dict  # every fixed choice of the estimators (see `estimator_choices`)


def estimator_choices(seed: int) -> dict:
    return {
        "codes": "posterior means",
        "mig_bins": dis.BINS,
        "dci_regressor": "gradient-boosted decision stumps (least squares)",
        "dci_rounds": dis.DCI_ROUNDS,
        "dci_shrinkage": dis.DCI_SHRINKAGE,
        "dci_test_fraction": dis.DCI_TEST_FRACTION,
        "dci_split_quantiles": dis.DCI_BINS,
        "sap_score": "R^2 of a one-code linear regression (every factor as continuous)",
        "factorvae_group": dis.FV_GROUP,
        "factorvae_train_votes": dis.FV_TRAIN_VOTES,
        "factorvae_eval_votes": dis.FV_EVAL_VOTES,
        "factorvae_collapsed_variance": dis.COLLAPSED,
        "seed": seed,
    }


def why_unavailable(dataset) -> str | None:
    """Why this data set cannot have the section (None: it can)."""
    if dataset.factor_names is None:
        return (
            f"the data set {dataset.name} has no known factors; use data that has them (--data dsprites or dsprites:N)"
        )
    return None


def measure(ctx: Context) -> tuple[DisentanglementResult | None, list[str]]:
    if why_unavailable(ctx.dataset) is not None:
        return None, []
    n = ctx.images.shape[0]
    pick = np.arange(n)
    if n > MAX_IMAGES:  # a seeded draw: the split may be stored in its factors' order
        pick = np.sort(np.random.Generator(np.random.PCG64(ctx.seed)).choice(n, MAX_IMAGES, replace=False))
    measured = getattr(ctx.dataset, ctx.split).take(torch.from_numpy(pick))  # the images with their own factors
    factors = measured.factors.numpy()
    with progress.bar(5, "disentanglement metrics", ctx.quiet, unit="step") as bar:
        codes = posterior_stats(ctx.model, measured.images, device=ctx.device)["means"].numpy()
        bar.update(1)
        if not np.isfinite(codes).all():
            return None, ["disentanglement: not measured, the encoder's posterior means are not finite"]
        mi = dis.mutual_information(codes, factors)
        entropies = dis.factor_entropies(factors)
        gaps = iter(dis.mig_per_factor(mi, entropies).tolist())
        per_factor = [next(gaps) if h > 0 else None for h in entropies]
        bar.update(1)
        d, c, i, importance = dis.dci(codes, factors, seed=ctx.seed)
        bar.update(1)
        sap = dis.sap(codes, factors)
        bar.update(1)
        factorvae = dis.factorvae_score(codes, factors, seed=ctx.seed)
        bar.update(1)
    known = [g for g in per_factor if g is not None]
    result = DisentanglementResult(
        n_images=len(pick),
        factors=list(ctx.dataset.factor_names),
        mig=float(np.mean(known)) if known else 0.0,
        mig_per_factor=per_factor,
        dci_disentanglement=d,
        dci_completeness=c,
        dci_informativeness=i,
        importance=importance.tolist(),
        mutual_information=mi.tolist(),
        sap=sap,
        factorvae=factorvae,
        factorvae_active_dims=int((codes.var(axis=0) > dis.COLLAPSED).sum()),
        estimator=estimator_choices(ctx.seed),
    )
    notes = [] if known else ["disentanglement: every factor has one value in the evaluated images; scores are 0"]
    if result.factorvae_active_dims == 0:
        notes.append(
            f"disentanglement: no code dimension varies by more than {dis.COLLAPSED} over the images (a collapsed "
            "posterior): the FactorVAE score has nothing to vote with and is 0"
        )
    return result, notes


def rows(r: DisentanglementResult) -> list[tuple[str, str]]:
    e = r.estimator
    gaps = ", ".join(f"{name} {'-' if g is None else f'{g:.2f}'}" for name, g in zip(r.factors, r.mig_per_factor))
    return [
        ("MIG", f"{r.mig:.3f}  ({gaps})"),
        (
            "DCI disentanglement / completeness / informativeness",
            f"{r.dci_disentanglement:.3f} / {r.dci_completeness:.3f} / {r.dci_informativeness:.3f}",
        ),
        ("SAP", f"{r.sap:.3f}"),
        (
            "FactorVAE score",
            f"{r.factorvae:.3f}  (chance {1 / len(r.factors):.2f}, {r.factorvae_active_dims} active dimensions)",
        ),
        (
            "disentanglement estimators",
            f"{r.n_images} images, {e['codes']}, seed {e['seed']}; MIG: {e['mig_bins']} equal-width bins per code; "
            f"DCI: {e['dci_regressor']}, {e['dci_rounds']} rounds, shrinkage {e['dci_shrinkage']}, "
            f"splits at {e.get('dci_split_quantiles', 'all')} quantiles, "
            f"{e['dci_test_fraction']:.0%} held out; SAP: {e['sap_score']}; FactorVAE: {e['factorvae_train_votes']} "
            f"+ {e['factorvae_eval_votes']} votes of {e['factorvae_group']} images, "
            f"codes of variance <= {e['factorvae_collapsed_variance']} pruned",
        ),
    ]


DISENTANGLEMENT = Metric(
    name="disentanglement",
    result=DisentanglementResult,
    measure=measure,
    rows=rows,
    needs=("encoder",),
    columns=("MIG", "DCI disentanglement", "SAP", "FactorVAE score"),
    cells=lambda r: [r.mig, r.dci_disentanglement, r.sap, r.factorvae],
    unavailable=why_unavailable,
)
