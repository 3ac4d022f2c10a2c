"""The comparison study: several configurations trained on the same data, epochs and seed, then one report.

Each member is an ordinary run directory under the study folder, named after what varies
(`mlp-z2`, `conv-z10-beta4`); an interrupted study resumes each member from its last checkpoint.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vaelab import data, explore, plots
from vaelab.checkpoint import STATE_FILE, atomic_write, read_state_info
from vaelab.config import TrainConfig, make_config
from vaelab.errors import ConfigError
from vaelab.report import figure_html, page, table_html
from vaelab.run import Run, read_metrics

STUDY_FILE = "study.json"


@dataclass
class Member:
    name: str
    config: TrainConfig

    @property
    def path(self) -> Path:
        return Path(self.config.out)


def member_name(model: str, arch: str, latent_dim: int, beta: float | None, vary_model: bool, vary_beta: bool) -> str:
    name = f"{arch}-z{latent_dim}"
    if vary_beta and beta is not None:
        name += f"-beta{beta:g}"
    return f"{model}-{name}" if vary_model else name


def plan(base: dict[str, Any], archs: list[str], latent_dims: list[int], betas: list[float], out: Path,
         models: list[str] | None = None) -> list[Member]:  # fmt: skip
    """One member per (model, arch, latent dimension, beta), all sharing every other option of `base`.
    A GAN has no KL term, so it gets one member per (arch, latent dimension) whatever the betas."""
    models = models or ["vae"]
    if not archs or not latent_dims or not betas or not models:
        raise ConfigError("compare: --models, --archs, --latent-dims and --betas each need at least one value")
    members, seen = [], set()
    for model, arch, z, beta in itertools.product(models, archs, latent_dims, betas):
        beta = None if model == "gan" else beta
        name = member_name(model, arch, z, beta, len(models) > 1, len(betas) > 1)
        if name in seen:
            continue
        seen.add(name)
        varied = {"model": model, "arch": arch, "latent_dim": z, "out": str(out / name)}
        if beta is not None:
            varied["beta"] = beta
        members.append(Member(name, make_config(base, varied)))
    return members


def train_member(member: Member, evaluate: bool, iwae_k: int, quiet: bool) -> str:
    """Train, resume or complete one member; returns what was done."""
    from vaelab.pipeline import finish_run, train_run
    from vaelab.train import resume_config

    state = member.path / STATE_FILE
    if not state.exists():
        train_run(member.config, evaluate=evaluate, iwae_k=iwae_k)
        return "trained"
    done = read_state_info(state)["epoch"]
    if done < member.config.epochs:
        config = resume_config(member.path, {"epochs": member.config.epochs, "quiet": quiet})
        train_run(config, resume=True, evaluate=evaluate, iwae_k=iwae_k)
        return f"resumed from epoch {done}"
    if (member.path / "report.html").exists() and (not evaluate or (member.path / "eval.json").exists()):
        return "complete"
    finish_run(member.path, evaluate, iwae_k, member.config.device)  # interrupted after training, before the rest
    return "finished"


def run_study(base: dict[str, Any], archs, latent_dims, betas, out: str | Path = "compare", evaluate: bool = True,
              iwae_k: int = 100, log=print, models=("vae",)) -> Path:  # fmt: skip
    out = Path(out)
    members = plan(base, list(archs), list(latent_dims), list(betas), out, list(models))
    out.mkdir(parents=True, exist_ok=True)
    study = {"members": [m.name for m in members], "models": list(models), "archs": list(archs), "latent_dims": list(latent_dims),
             "betas": list(betas), "base": base, "evaluate": evaluate, "iwae_k": iwae_k}  # fmt: skip
    atomic_write(out / STUDY_FILE, lambda temp: Path(temp).write_text(json.dumps(study, indent=2)))
    for i, member in enumerate(members, 1):
        log(f"[{i}/{len(members)}] {member.name}: ...")
        what = train_member(member, evaluate, iwae_k, member.config.quiet)
        log(f"[{i}/{len(members)}] {member.name}: {what}")
    return study_report(out, members)


def _final(member: Member) -> dict[str, Any]:
    _, epochs = read_metrics(member.path)
    last = epochs[-1]
    row = {"test": last["test"], "train": last["train"], "seconds": sum(e["seconds"] for e in epochs)}
    eval_path = member.path / "eval.json"
    if eval_path.exists():
        row["eval"] = json.loads(eval_path.read_text())
    return row


def study_report(out: Path, members: list[Member]) -> Path:
    """Write out/report.html: overlaid curves, the metrics table, side-by-side figures, the course's answers."""
    runs = {m.name: Run.open(m.path) for m in members}
    finals = {m.name: _final(m) for m in members}
    curves = {m.name: read_metrics(m.path)[1] for m in members}
    cfg = members[0].config
    dataset = data.load(cfg.data, size=tuple(cfg.size) if cfg.size else None)
    test_images = dataset.test.images
    x = data.to_float(test_images[:10])

    encoders = {n: r for n, r in runs.items() if r.kind != "gan"}  # a GAN cannot reconstruct or interpolate images
    plots.plot_overlaid_curves(out / "curves.png", curves, "test")
    if encoders:
        plots.plot_side_by_side(out / "reconstructions.png",
                                {n: plots.image_grid(torch.cat([x, r.model.reconstruct(x)]), 10) for n, r in encoders.items()},
                                "the same test images (top) reconstructed by each member (bottom)", cols=2)  # fmt: skip
    from vaelab.train import fixed_noise

    plots.plot_side_by_side(out / "samples.png",
                            {n: plots.image_grid(r.model.sample(36, z=fixed_noise(cfg.seed, r.model.latent_dim, 36)), 6) for n, r in runs.items()},
                            "samples from z ~ N(0, I), the same noise seed for every member")  # fmt: skip
    if encoders:
        plots.plot_side_by_side(out / "interpolation.png",
                                {n: plots.image_grid(explore.interpolate(r.model, test_images, [(0, 1)], 10)[0], 10) for n, r in encoders.items()},
                                "the same pair of test images (0 -> 1) interpolated by each member", cols=2)  # fmt: skip
    manifolds = {}
    for n, r in runs.items():
        if r.model.latent_dim >= 2:
            plane = explore.default_plane(r.model, test_images)
            manifolds[f"{n} ({', '.join(plane.labels)})"] = plots.image_grid(explore.manifold(r.model, plane), 15, pad=0)
    if manifolds:
        plots.plot_side_by_side(out / "manifold.png", manifolds, "decoded grids over [-1.5, 1.5]^2")

    header = ["member", "test -ELBO", "test recon", "test KL", "train -ELBO", "train s"]
    has_eval = all("eval" in f for f in finals.values())
    if has_eval:
        header += ["NLL (IWAE)", "k", "active units", "MSE", "FD (classifier)", "precision", "recall"]
    rows = []
    for name, f in finals.items():
        te, tr = f["test"], f["train"]
        if "recon" in te:
            row = [name, te["recon"] + te["kl"], te["recon"], te["kl"], tr["recon"] + tr["kl"], f["seconds"]]
        else:  # a GAN: no likelihood terms
            row = [name, "n/a", "n/a", "n/a", "n/a", f["seconds"]]
        if has_eval:
            e, s = f["eval"], f["eval"]["samples"]
            if "iwae" in e:
                row += [e["iwae"]["nll"], e["iwae"]["k"], f"{e['latents']['active_units']}/{e['latents']['latent_dim']}",
                        e["reconstruction"]["mse"]]  # fmt: skip
            else:
                row += ["n/a", "n/a", "n/a", "n/a"]
            row += [s.get("fd_classifier", "n/a"), s.get("precision", "n/a"), s.get("recall", "n/a")]
        rows.append(row)
    body = [f"<p>{len(members)} members trained on <b>{dataset.name}</b> for {cfg.epochs} epochs each with seed {cfg.seed} "
            f"(batch {cfg.batch_size}). Likelihood terms are means per test image in nats.</p>",
            "<h2>Final metrics</h2>", table_html(header, rows), "<h2>What the study shows</h2>",
            "<ul>" + "".join(f"<li>{a}</li>" for a in answers(members, finals)) + "</ul>",
            "<h2>Test curves</h2>", figure_html(out / "curves.png", "Test curves of every member, one panel per loss term."),
            "<h2>Samples</h2>", figure_html(out / "samples.png", "Samples from the prior, same noise seed for every member.")]  # fmt: skip
    if encoders:
        body += ["<h2>Reconstructions</h2>", figure_html(out / "reconstructions.png", "The same test images reconstructed by each member (GANs have no encoder)."),
                 "<h2>Interpolation</h2>", figure_html(out / "interpolation.png", "The same pair of test images, interpolated by each member.")]  # fmt: skip
    if manifolds:
        body += ["<h2>Latent manifolds</h2>", figure_html(out / "manifold.png", "Decoded grids over [-1.5, 1.5]^2.")]
    body.append(
        "<p>Member runs: " + ", ".join(f'<a href="{m.name}/report.html">{m.name}</a>' for m in members) + "</p>"
    )
    path = out / "report.html"
    text = page("vaelab comparison study", "".join(body))
    atomic_write(path, lambda temp: Path(temp).write_text(text))
    return path


def answers(members: list[Member], finals: dict[str, dict]) -> list[str]:
    """The course's questions, answered with this study's own numbers (only those the study can answer)."""

    def neg_elbo(name):
        return finals[name]["test"]["recon"] + finals[name]["test"]["kl"]

    def fd(name):
        return finals[name].get("eval", {}).get("samples", {}).get("fd_classifier")

    out = []
    models = sorted({m.config.model for m in members})
    if len(models) > 1:
        out.append(_adversarial_answer(members, finals, fd))
    family = next((m for m in ("vae", "vaegan") if m in models), None)  # the latent-space questions need an encoder
    if family is None:
        return out
    members = [m for m in members if m.config.model == family]
    by_key = {(m.config.arch, m.config.latent_dim, m.config.beta): m.name for m in members}
    archs = sorted({m.config.arch for m in members})
    dims = sorted({m.config.latent_dim for m in members})
    betas = sorted({m.config.beta for m in members})
    if len(dims) > 1:
        lo, hi = dims[0], dims[-1]
        for arch in archs:
            for beta in betas[:1]:
                a, b = by_key.get((arch, lo, beta)), by_key.get((arch, hi, beta))
                if a and b:
                    ra, rb = finals[a]["test"]["recon"], finals[b]["test"]["recon"]
                    text = (f"<b>Latent dimension ({arch})</b>: going from {lo} to {hi} dimensions changes the test reconstruction term "
                            f"from {ra:.1f} to {rb:.1f} nats ({'better' if rb < ra else 'worse'} reconstructions) and the KL from "
                            f"{finals[a]['test']['kl']:.1f} to {finals[b]['test']['kl']:.1f} nats")  # fmt: skip
                    if fd(a) is not None and fd(b) is not None:
                        text += f"; the samples' Frechet distance goes from {fd(a):.1f} to {fd(b):.1f} ({'better' if fd(b) < fd(a) else 'worse'} samples)"
                    out.append(text + ".")
    if len(archs) > 1 and "conv" in archs and "mlp" in archs:
        parts = []
        for z in dims:
            m, c = by_key.get(("mlp", z, betas[0])), by_key.get(("conv", z, betas[0]))
            if m and c:
                parts.append(f"z={z}: mlp {neg_elbo(m):.1f} vs conv {neg_elbo(c):.1f} nats"
                             + (f", FD {fd(m):.1f} vs {fd(c):.1f}" if fd(m) is not None and fd(c) is not None else ""))  # fmt: skip
        wins = sum(
            1
            for z in dims
            if by_key.get(("conv", z, betas[0]))
            and neg_elbo(by_key[("conv", z, betas[0])]) < neg_elbo(by_key[("mlp", z, betas[0])])
        )
        verdict = "beats" if wins == len(parts) else "does not beat" if wins == 0 else "beats in some settings"
        out.append(
            f"<b>Convolutional vs fully connected</b>: the conv model {verdict} the MLP on the test -ELBO ({'; '.join(parts)})."
        )
    if len(betas) > 1:
        for arch in archs:
            for z in dims:
                named = [(b, by_key[(arch, z, b)]) for b in betas if (arch, z, b) in by_key]
                desc = "; ".join(
                    f"beta={b:g}: KL {finals[n]['test']['kl']:.1f}, recon {finals[n]['test']['recon']:.1f}"
                    for b, n in named
                )
                out.append(
                    f"<b>The KL weight ({arch}, z={z})</b>: {desc}. A larger beta pushes q(z|x) towards the prior "
                    "(smaller KL, fewer active units, blurrier reconstructions); a smaller one spends more nats on the code."
                )
    elif betas:
        out.append(
            f"<b>The KL weight</b>: every member used beta = {betas[0]:g}; run with --betas 0.5,1,4 to see its effect."
        )
    return out


def _adversarial_answer(members: list[Member], finals: dict[str, dict], fd) -> str:
    """The VAE's blur against the adversarial models' sharpness, in the study's sample-quality numbers."""
    parts = []
    for m in members:
        value = fd(m.name)
        parts.append(f"{m.name}: FD {value:.1f}" if value is not None else f"{m.name}: FD not measured (--no-eval)")
    measured = [(fd(m.name), m.name) for m in members if fd(m.name) is not None]
    best = (
        f" The lowest Frechet distance (sharpest, most data-like samples) is {min(measured)[1]}'s." if measured else ""
    )
    return (
        f"<b>VAE against adversarial models</b>: {'; '.join(parts)}.{best} A VAE decoder trained on a pixel likelihood "
        "averages over plausible images (blur); a discriminator penalises images that do not look real, so GAN and "
        "VAE-GAN samples are sharper, at the cost of mode coverage (compare precision and recall) and, for the GAN, of an encoder."
    )
