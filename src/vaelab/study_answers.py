"""The course's questions, answered in prose with a comparison study's own numbers (only those it can answer).

`finals[name]` is a member's `compare.Finals`: its last-epoch `test` / `train` terms and, when evaluated, its
typed evaluation sections (`finals[name].section("iwae")`).
"""

from __future__ import annotations

import statistics

from vaelab import kinds


def neg_elbo(finals: dict, name: str) -> float:
    return finals[name].neg_elbo


def fd(finals: dict, name: str) -> float | None:
    samples = finals[name].section("samples")
    return samples.distance if samples is not None else None  # in whichever feature space measured it


def answers(members: list, finals: dict) -> list[str]:
    out = []
    kind_names = [k for k in kinds.names() if any(m.config.kind == k for m in members)]
    if len(kind_names) > 1:
        if any(kinds.get(k).discriminator for k in kind_names):
            out.append(kinds_answer(members, finals))
        out += likelihood_kinds_answers(members, finals)
    out += prior_answers(members, finals)
    out += disentanglement_answers(members, finals)
    # the latent-space questions need an encoder and a KL term: the first such kind of the study
    family = next((k for k in kind_names if kinds.get(k).encoder and kinds.get(k).likelihood), None)
    if family is None:
        return out
    members = [m for m in members if m.config.kind == family]
    by_key = {(m.config.arch, m.config.latent_dim, m.beta): m.name for m in members}
    archs = sorted({m.config.arch for m in members})
    dims = sorted({m.config.latent_dim for m in members})
    betas = sorted({m.beta for m in members})
    if len(dims) > 1:
        out += latent_dimension_answers(finals, by_key, archs, dims, betas[0])
    if "conv" in archs and "mlp" in archs:
        out.append(architecture_answer(finals, by_key, dims, betas[0]))
    if len(betas) > 1:
        out += beta_answers(finals, by_key, archs, dims, betas)
    elif betas:
        out.append(
            f"<b>The KL weight</b>: every member used beta = {betas[0]:g}; run with --betas 0.5,1,4 to see its effect."
        )
    return out


def latent_dimension_answers(finals, by_key, archs, dims, beta) -> list[str]:
    out = []
    lo, hi = dims[0], dims[-1]
    for arch in archs:
        a, b = by_key.get((arch, lo, beta)), by_key.get((arch, hi, beta))
        if not (a and b):
            continue
        ra, rb = finals[a].test["recon"], finals[b].test["recon"]
        text = (
            f"<b>Latent dimension ({arch})</b>: going from {lo} to {hi} dimensions changes the test reconstruction term "
            f"from {ra:.1f} to {rb:.1f} nats ({'better' if rb < ra else 'worse'} reconstructions) and the KL from "
            f"{finals[a].test['kl']:.1f} to {finals[b].test['kl']:.1f} nats"
        )
        fa, fb = fd(finals, a), fd(finals, b)
        if fa is not None and fb is not None:
            text += f"; the samples' Frechet distance goes from {fa:.1f} to {fb:.1f} ({'better' if fb < fa else 'worse'} samples)"
        out.append(text + ".")
    return out


def architecture_answer(finals, by_key, dims, beta) -> str:
    parts, wins = [], 0
    for z in dims:
        m, c = by_key.get(("mlp", z, beta)), by_key.get(("conv", z, beta))
        if not (m and c):
            continue
        text = f"z={z}: mlp {neg_elbo(finals, m):.1f} vs conv {neg_elbo(finals, c):.1f} nats"
        if fd(finals, m) is not None and fd(finals, c) is not None:
            text += f", FD {fd(finals, m):.1f} vs {fd(finals, c):.1f}"
        parts.append(text)
        wins += neg_elbo(finals, c) < neg_elbo(finals, m)
    verdict = "beats" if wins == len(parts) else "does not beat" if wins == 0 else "beats in some settings"
    return f"<b>Convolutional vs fully connected</b>: the conv model {verdict} the MLP on the test -ELBO ({'; '.join(parts)})."


def beta_answers(finals, by_key, archs, dims, betas) -> list[str]:
    out = []
    for arch in archs:
        for z in dims:
            named = [(b, by_key[(arch, z, b)]) for b in betas if (arch, z, b) in by_key]
            desc = "; ".join(
                f"beta={b:g}: KL {finals[n].test['kl']:.1f}, recon {finals[n].test['recon']:.1f}" for b, n in named
            )
            out.append(
                f"<b>The KL weight ({arch}, z={z})</b>: {desc}. A larger beta pushes q(z|x) towards the prior "
                "(smaller KL, fewer active units, blurrier reconstructions); a smaller one spends more nats on the code."
            )
    return out


def kinds_answer(members: list, finals: dict) -> str:
    """The VAE's blur against the adversarial models' sharpness, in the study's sample-quality numbers."""
    parts = []
    for m in members:
        value = fd(finals, m.name)
        parts.append(f"{m.name}: FD {value:.1f}" if value is not None else f"{m.name}: FD not measured (--no-eval)")
    measured = [(fd(finals, m.name), m.name) for m in members if fd(finals, m.name) is not None]
    best = (
        f" The lowest Frechet distance (sharpest, most data-like samples) is {min(measured)[1]}'s." if measured else ""
    )
    return (
        f"<b>VAE against adversarial models</b>: {'; '.join(parts)}.{best} A VAE decoder trained on a pixel likelihood "
        "averages over plausible images (blur); a discriminator penalises images that do not look real, so GAN and "
        "VAE-GAN samples are sharper, at the cost of mode coverage (compare precision and recall) and, for the GAN, of an encoder."
    )


def nll(finals: dict, name: str) -> float | None:
    iwae = finals[name].section("iwae")
    return iwae.nll if iwae is not None else None


def likelihood_kinds_answers(members: list, finals: dict) -> list[str]:
    """The kinds' test log-likelihoods (IWAE NLL) side by side, per architecture and latent dimension."""
    out = []
    groups: dict[tuple, list] = {}
    for m in members:
        if nll(finals, m.name) is not None:
            groups.setdefault((m.config.arch, m.config.latent_dim), []).append(m)
    for (arch, z), group in groups.items():
        if len(group) < 2:
            continue
        k = finals[group[0].name].section("iwae").k
        parts = "; ".join(f"{kinds.get(m.config.kind).title}: {nll(finals, m.name):.1f}" for m in group)
        best = min(group, key=lambda m: nll(finals, m.name))
        conditional = [kinds.get(m.config.kind).title for m in group if kinds.get(m.config.kind).labels]
        note = (
            f" ({', '.join(conditional)}: with the label hidden, the label-free mode its label dropout trains)"
            if conditional
            else ""
        )
        out.append(
            f"<b>Test log-likelihood ({arch}, z={z})</b>: NLL by importance sampling (k={k}, nats, lower is "
            f"better): {parts}{note}. The lowest is {kinds.get(best.config.kind).title}'s. A tighter training "
            "bound (IWAE) or a learned prior (VampPrior) is expected to lower it; with few epochs it may not."
        )
    return out


def prior_answers(members: list, finals: dict) -> list[str]:
    """The prior's mismatch with the aggregate posterior, and what a sampler fitted after training does about it."""
    out = []
    for m in members:
        mismatch = finals[m.name].section("prior_mismatch")
        if not mismatch:
            continue
        prior = mismatch.distances["prior"]
        text = (
            f"<b>Prior against aggregate posterior ({m.name})</b>: the prior's draws are {prior.kl_to_aggregate:.2f} "
            f"nats (Gaussian KL) from where the encoder puts the training images, and {prior.holes:.1%} of them "
            "land where no training image's posterior has mass"
        )
        fitted_samplers = finals[m.name].section("samplers")
        for name, s in fitted_samplers.samplers.items() if fitted_samplers else ():
            fitted, prior_fd = mismatch.distances.get(name), fd(finals, m.name)
            if fitted and s.quality.available and prior_fd is not None:
                text += (
                    f"; the fitted {name} sampler: {fitted.kl_to_aggregate:.2f} nats, {fitted.holes:.1%} in "
                    f"holes, FD {s.quality.distance:.1f} against the prior's {prior_fd:.1f} "
                    f"({'better' if s.quality.distance < prior_fd else 'not better'} samples)"
                )
        out.append(text + ".")
    return out


DISENTANGLEMENT_SCORES = (
    ("MIG", "mig"),
    ("DCI disentanglement", "dci_disentanglement"),
    ("SAP", "sap"),
    ("FactorVAE score", "factorvae"),
)


def _over_seeds(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def disentanglement_answers(members: list, finals: dict) -> list[str]:
    """Which member disentangles best on data with known factors (the `disentanglement` section, every score as the
    mean ± standard deviation over the seeds of a group), whether the scores agree, and what it costs in
    reconstruction against the member that reconstructs best."""
    groups: dict[str, list] = {}
    for m in members:
        if finals[m.name].section("disentanglement") is not None and finals[m.name].neg_elbo is not None:
            groups.setdefault(getattr(m, "group", m.name), []).append(m.name)
    if len(groups) < 2:
        return []

    def scores(group: str, field: str) -> list[float]:
        return [getattr(finals[name].section("disentanglement"), field) for name in groups[group]]

    def recon(group: str) -> list[float]:
        return [finals[name].test["recon"] for name in groups[group]]

    def elbo(group: str) -> list[float]:
        return [finals[name].neg_elbo for name in groups[group]]

    seeds = max(len(names) for names in groups.values())
    over = f" over {seeds} seeds (mean ± standard deviation)" if seeds > 1 else " (one seed each)"
    ranked = sorted(groups, key=lambda g: -statistics.mean(scores(g, "mig")))
    best, second = ranked[0], ranked[1]
    ranking = "; ".join(f"{g} {_over_seeds(scores(g, 'mig'))}" for g in ranked)
    text = f"<b>Disentanglement</b>{over}: by MIG, {ranking}. "
    gap = statistics.mean(scores(best, "mig")) - statistics.mean(scores(second, "mig"))
    spread = max(statistics.stdev(v) if len(v) > 1 else 0.0 for v in (scores(best, "mig"), scores(second, "mig")))
    if seeds > 1 and gap <= spread:
        text += (
            f"{best} leads {second} by {gap:.3f}, within the seeds' spread ({spread:.3f}): no member clearly "
            "disentangles best by MIG here. "
        )
    else:
        text += f"{best} disentangles best by MIG, {gap:.3f} above {second}. "
    leaders = {
        label: max(groups, key=lambda g, f=field: statistics.mean(scores(g, f)))
        for label, field in DISENTANGLEMENT_SCORES[1:]
    }
    said = "; ".join(
        f"{label}: {leaders[label]} ({_over_seeds(scores(leaders[label], field))})"
        for label, field in DISENTANGLEMENT_SCORES[1:]
    )
    agree = sum(leader == best for leader in leaders.values())
    text += f"The other scores' leaders: {said} ({agree} of 3 agree with MIG). "
    sharpest = min(groups, key=lambda g: statistics.mean(recon(g)))
    if sharpest == best:
        text += (
            f"{best} also reconstructs best (test recon {_over_seeds(recon(best), 1)} nats): here disentangling costs "
            "nothing in reconstruction."
        )
    else:
        cost = statistics.mean(recon(best)) - statistics.mean(recon(sharpest))
        text += (
            f"Its cost: a test reconstruction term of {_over_seeds(recon(best), 1)} nats against "
            f"{_over_seeds(recon(sharpest), 1)} for {sharpest}, the best reconstruction ({cost:+.1f} nats per image), "
            f"and a test -ELBO of {_over_seeds(elbo(best), 1)} against {_over_seeds(elbo(sharpest), 1)}."
        )
    return [text]
