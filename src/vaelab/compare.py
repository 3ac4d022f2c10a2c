"""The comparison study: several configurations trained on the same data, epochs and seed, then one report.

Each member is an ordinary run directory under the study folder, named after what varies
(`mlp-z2`, `conv-z10-beta4`, `gan-mlp-z10`); an interrupted study resumes each member from its last
checkpoint. This module only orchestrates: the figures are `study_figures`, the page
`report.study_report`, the prose `study_answers`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaelab import kinds, tracking
from vaelab.checkpoint import atomic_write, check_writable, read_state_info
from vaelab.config import TrainConfig, option_fields
from vaelab.errors import ConfigError
from vaelab.evaluate import metrics, read_eval
from vaelab.evaluate.result import EvalResult
from vaelab.run import Run, load_dataset, resume_config
from vaelab.rundir import RunDir

STUDY_FILE = "study.json"
STUDY_SAMPLERS = ("gmm",)  # fitted to every evaluated member with an encoder


@dataclass
class Member:
    name: str
    config: TrainConfig

    @property
    def path(self) -> Path:
        return Path(self.config.out)

    @property
    def beta(self) -> float | None:
        """The member's KL weight, for kinds that have one."""
        return getattr(self.config.options, "beta", None)


def member_name(kind: str, arch: str, latent_dim: int, beta: float | None, vary_kind: bool, vary_beta: bool) -> str:
    name = f"{arch}-z{latent_dim}"
    if vary_beta and beta is not None:
        name += f"-beta{beta:g}"
    return f"{kind}-{name}" if vary_kind else name


def plan(
    base: dict[str, Any],
    archs: list[str],
    latent_dims: list[int],
    betas: list[float],
    out: Path,
    kind_names: list[str] | None = None,
) -> list[Member]:
    """One member per (kind, arch, latent dimension, beta), all sharing every other option of `base`.
    A kind without a KL weight (a GAN) gets one member per (arch, latent dimension) whatever the betas."""
    kind_names = ["vae"] if kind_names is None else kind_names  # an empty list is an error, not the default
    if not archs or not latent_dims or not betas or not kind_names:
        raise ConfigError("compare: --kinds, --archs, --latent-dims and --betas each need at least one value")
    own = kinds_options(base, kind_names)
    members, seen = [], set()
    for kind_name, arch, z, beta in itertools.product(kind_names, archs, latent_dims, betas):
        beta = beta if "beta" in option_fields(kinds.get(kind_name).options) else None
        name = member_name(kind_name, arch, z, beta, len(kind_names) > 1, len(betas) > 1)
        if name in seen:
            continue
        seen.add(name)
        varied = {"kind": kind_name, "arch": arch, "latent_dim": z, "out": str(out / name)}
        if beta is not None:
            varied["beta"] = beta
        members.append(Member(name, kinds.make_config(own[kind_name], varied)))
    return members


def kinds_options(base: dict[str, Any], kind_names: list[str]) -> dict[str, dict[str, Any]]:
    """The shared options of a study as each kind takes them: an option of some of the study's kinds
    (--pseudo-inputs, --k) goes to those only; one that none of them has stays an error."""
    known = kinds.all_options()
    shared = option_fields(TrainConfig)
    per_kind = {}
    for name in kind_names:
        mine = {**shared, **option_fields(kinds.get(name).options)}
        per_kind[name] = {k: v for k, v in base.items() if k in mine or k not in known}
    for key in base:
        if key in known and not any(key in per_kind[name] for name in kind_names):
            raise ConfigError(f"{key}: has no meaning with any of the study's kinds ({', '.join(kind_names)})")
    return per_kind


def train_member(member: Member, evaluate: bool, iwae_k: int, quiet: bool, track: tracking.Log | None = None) -> str:
    """Train, resume or complete one member (mirrored to `track`'s tracker when it trains); returns what was done."""
    from vaelab.pipeline import finish_run, train_run

    run_dir = RunDir(member.path)
    fit = STUDY_SAMPLERS if evaluate else ()  # measured in eval: the prior against a sampler fitted after training
    if not run_dir.has_state():
        train_run(member.config, evaluate=evaluate, iwae_k=iwae_k, fit_samplers=fit, log=track)
        return "trained"
    done = read_state_info(run_dir.state_path)["epoch"]
    if done < member.config.epochs:
        config = resume_config(member.path, {"epochs": member.config.epochs, "quiet": quiet})
        train_run(config, resume=True, evaluate=evaluate, iwae_k=iwae_k, fit_samplers=fit, log=track)
        return f"resumed from epoch {done}"
    if run_dir.report_path.exists() and (not evaluate or run_dir.eval_path.exists()):
        return "complete"
    finish_run(
        Run.open(member.path), evaluate, iwae_k, member.config.device, quiet, fit
    )  # interrupted after training, before the rest
    return "finished"


def run_study(
    base: dict[str, Any],
    archs,
    latent_dims,
    betas,
    out: str | Path = "compare",
    evaluate: bool = True,
    iwae_k: int = 100,
    log=print,
    kind_names=("vae",),
    track: tracking.Log | None = None,
) -> Path:
    """Train every member (`plan`) into `out`, then its report; with `track`, each member is mirrored to that tracker,
    the members grouped as one study (an MLflow experiment, a TensorBoard folder)."""
    from vaelab.pipeline import check_runs

    out = Path(out)
    members = plan(base, list(archs), list(latent_dims), list(betas), out, list(kind_names))
    check_writable(out)
    # every member's full configuration (its data and labels, its sizes and memory; a resumed one's saved run) is
    # checked before the first trains: a study does not fail after hours on a member it could have refused at once
    planned = {}
    for member in members:
        run_dir = RunDir(member.path)
        if not run_dir.has_state():
            planned[f"compare: member {member.name}"] = member.config
        elif read_state_info(run_dir.state_path)["epoch"] < member.config.epochs:
            saved = resume_config(member.path, {"epochs": member.config.epochs, "quiet": member.config.quiet})
            planned[f"compare: member {member.name} (resumed)"] = saved
    check_runs(planned)
    if track:
        track.check()  # its package installed: refused before the first member trains
    out.mkdir(parents=True, exist_ok=True)
    study = {
        "members": [m.name for m in members],
        "kinds": list(kind_names),
        "archs": list(archs),
        "latent_dims": list(latent_dims),
        "betas": list(betas),
        "base": base,
        "evaluate": evaluate,
        "iwae_k": iwae_k,
    }
    atomic_write(out / STUDY_FILE, lambda temp: Path(temp).write_text(json.dumps(study, indent=2)))
    for i, member in enumerate(members, 1):
        log(f"[{i}/{len(members)}] {member.name}: ...")
        what = train_member(member, evaluate, iwae_k, member.config.quiet, track and track.member(out))
        log(f"[{i}/{len(members)}] {member.name}: {what}")
    return study_report(out, members)


@dataclass
class Finals:
    """A member's numbers for the study: its last epoch's terms, its training seconds, its evaluation if any."""

    test: dict[str, float]
    train: dict[str, float]
    seconds: float
    eval: EvalResult | None = None

    @property
    def neg_elbo(self) -> float | None:
        """The last epoch's test -ELBO, for kinds with a likelihood."""
        return self.test["recon"] + self.test["kl"] if "recon" in self.test and "kl" in self.test else None

    def section(self, name: str):
        """The member's evaluation section `name`, or None (not evaluated, or not a section its kind has)."""
        return None if self.eval is None else self.eval.get(name)


def final_numbers(run: Run) -> Finals:
    """A member's last epoch's terms, its training seconds and its evaluation (when it has one)."""
    _, epochs = run.read_metrics()
    if not epochs:
        raise ConfigError(f"{run.metrics_path}: holds no epoch yet; train the member first")
    return Finals(epochs[-1]["test"], epochs[-1]["train"], sum(e["seconds"] for e in epochs), read_eval(run))


def metrics_rows(finals: dict[str, Finals]) -> tuple[list[str], list[list[Any]]]:
    """The study's table: likelihood terms where a member has them, and when every member was evaluated, the
    columns of every registered metric (`Metric.columns`)."""
    header = ["member", "test -ELBO", "test recon", "test KL", "train -ELBO", "train s"]
    has_eval = all(f.eval is not None for f in finals.values())
    if has_eval:
        header += metrics.study_columns()
    rows = []
    for name, f in finals.items():
        te, tr = f.test, f.train
        if f.neg_elbo is not None:
            row = [name, f.neg_elbo, te["recon"], te["kl"], tr["recon"] + tr["kl"], f.seconds]
        else:  # no likelihood terms (a GAN)
            row = [name, "n/a", "n/a", "n/a", "n/a", f.seconds]
        if has_eval:
            for metric in metrics.KNOWN.values():
                row += metric.study_cells(f.section(metric.name))
        rows.append(row)
    return header, rows


def study_report(out: Path, members: list[Member]) -> Path:
    """Write out/report.html: overlaid curves, the metrics table, side-by-side figures, the course's answers."""
    from vaelab import report
    from vaelab.study_answers import answers
    from vaelab.study_figures import study_figures

    cfg = members[0].config
    dataset = load_dataset(cfg)
    runs = {m.name: Run.open(m.path, dataset=dataset) for m in members}
    finals = {name: final_numbers(run) for name, run in runs.items()}
    drawn = study_figures(out, runs, dataset, cfg.seed)
    header, rows = metrics_rows(finals)
    intro = (
        f"<p>{len(members)} members trained on <b>{dataset.name}</b> for {cfg.epochs} epochs each with seed "
        f"{cfg.seed} (batch {cfg.batch_size}). Likelihood terms are means per test image in nats.</p>"
    )
    return report.study_report(out, intro, header, rows, answers(members, finals), drawn, [m.name for m in members])
