"""The comparison study: several configurations trained on the same data, epochs and seed, then one report.

Each member is an ordinary run directory under the study folder, named after what varies
(`mlp-z2`, `conv-z10-beta4`, `gan-mlp-z10`); an interrupted study resumes each member from its last
checkpoint. This module only orchestrates: the figures are `study_figures`, the page
`report.study_report`, the prose `study_answers`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
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
MAX_JOBS = 64  # members trained at once (`--jobs`): far above the cores of any machine vaelab targets
SUMMARY_FILE = "summary.md"  # the table over seeds, as text (a study of several seeds)
STUDY_SAMPLERS = ("gmm",)  # fitted to every evaluated member with an encoder


@dataclass
class Member:
    name: str
    config: TrainConfig
    group: str = ""  # the name without its seed: members of one group differ by their seed only

    def __post_init__(self):
        self.group = self.group or self.name

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


def parse_kind(spec: str) -> tuple[str, dict[str, str]]:
    """A study's kind: `kind`, or `kind:option=value[:option=value...]` for a member with options of its own
    (`vae:beta=4`: the β-VAE beside `vae`). The kind must be known; the values are checked with the member's config."""
    kind, *pairs = [part.strip() for part in spec.split(":")]
    options = {}
    for pair in pairs:
        key, equals, value = (part.strip() for part in pair.partition("="))
        if not (key and equals and value):
            raise ConfigError(f"compare: --kinds {spec!r}: a member's own option is written kind:option=value")
        options[key.replace("-", "_")] = value
    kinds.get(kind)
    return kind, options


def _label(kind: str, options: dict[str, str]) -> str:
    """`vae` and {beta: 4} -> `vae-beta4`."""

    def value(text: str) -> str:
        try:
            return f"{float(text):g}"
        except ValueError:
            return text

    return kind + "".join(f"-{key.replace('_', '')}{value(v)}" for key, v in options.items())


def plan(
    base: dict[str, Any],
    archs: list[str],
    latent_dims: list[int],
    betas: list[float | None] | None,
    out: Path,
    kind_names: list[str] | None = None,
    seeds: list[int] | None = None,
) -> list[Member]:
    """One member per (kind, arch, latent dimension, beta, seed), all sharing every other option of `base`.
    A kind without a KL weight (a GAN) gets one member per (arch, latent dimension) whatever the betas; a kind
    written with its own options (`vae:beta=4`, `parse_kind`) keeps them whatever the lists; betas None: each kind's
    own default. Several seeds: each member once per seed (`-s0`, `-s1`...), grouped by `Member.group`."""
    kind_names = ["vae"] if kind_names is None else kind_names  # an empty list is an error, not the default
    betas = [None] if betas is None else betas
    seeds = [None] if seeds is None else seeds
    if not archs or not latent_dims or not betas or not kind_names or not seeds:
        raise ConfigError("compare: --kinds, --archs, --latent-dims and --betas each need at least one value")
    specs = [parse_kind(spec) for spec in kind_names]
    own = kinds_options(base, list(dict.fromkeys(kind for kind, _ in specs)))
    members, seen = [], set()
    for (kind_name, options), arch, z, beta, seed in itertools.product(specs, archs, latent_dims, betas, seeds):
        has_beta = "beta" in option_fields(kinds.get(kind_name).options) and "beta" not in options
        beta = beta if has_beta else None
        group = member_name(_label(kind_name, options), arch, z, beta, len(specs) > 1, len(betas) > 1)
        name = group if len(seeds) == 1 else f"{group}-s{seed}"
        if name in seen:
            continue
        seen.add(name)
        varied = {"kind": kind_name, "arch": arch, "latent_dim": z, "out": str(out / name)}
        if beta is not None:
            varied["beta"] = beta
        if seed is not None:
            varied["seed"] = seed
        try:
            config = kinds.make_config(own[kind_name], options, varied)
        except ConfigError as exc:
            raise ConfigError(f"compare: member {name}: {exc}") from None
        members.append(Member(name, config, group))
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
    seeds=None,
    jobs: int = 1,
) -> Path:
    """Train every member (`plan`) into `out`, then its report; with `track`, each member is mirrored to that tracker,
    the members grouped as one study (an MLflow experiment, a TensorBoard folder). `jobs` > 1 trains that many
    members at once, each in its own process (`train_side_by_side`)."""
    from vaelab.pipeline import check_runs

    if not isinstance(jobs, int) or isinstance(jobs, bool) or not 1 <= jobs <= MAX_JOBS:
        raise ConfigError(f"jobs: must be an integer in 1..{MAX_JOBS}, got {jobs!r}")
    if jobs > 1 and track:
        raise ConfigError("jobs: members side by side cannot be mirrored to a tracker yet; leave out --jobs or --log")

    out = Path(out)
    betas = None if betas is None else list(betas)
    seeds = None if seeds is None else list(seeds)
    members = plan(base, list(archs), list(latent_dims), betas, out, list(kind_names), seeds)
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
        "betas": betas,
        "seeds": seeds,
        "base": base,
        "evaluate": evaluate,
        "iwae_k": iwae_k,
    }
    atomic_write(out / STUDY_FILE, lambda temp: Path(temp).write_text(json.dumps(study, indent=2)))
    started = time.perf_counter()
    if jobs > 1:
        train_side_by_side(members, evaluate, iwae_k, jobs, log)
    else:
        for i, member in enumerate(members, 1):
            log(f"[{i}/{len(members)}] {member.name}: ...")
            what = train_member(member, evaluate, iwae_k, member.config.quiet, track and track.member(out))
            log(f"[{i}/{len(members)}] {member.name}: {what}")
    report = study_report(out, members)
    log(time_shares(members, time.perf_counter() - started, jobs))
    return report


def train_side_by_side(members: list[Member], evaluate: bool, iwae_k: int, jobs: int, log) -> None:
    """Train the members `jobs` at a time, each in a fresh process (spawned: torch's thread pools do not survive a
    fork). Each process's thread count follows the free cores as always (`vaelab.threads`), so two members on two
    cores take one thread each: the conv model reaches 62% of its two-thread speed on one, so two side by side train
    about 1.3x faster than one after the other. Their progress bars are hidden; each member's end is logged. The first
    error stops the study (members already done stay done: a rerun finishes the rest)."""
    import multiprocessing
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    quiet = [dataclasses.replace(m, config=dataclasses.replace(m.config, quiet=True)) for m in members]
    context, workers = multiprocessing.get_context("spawn"), min(jobs, len(members))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(train_member, m, evaluate, iwae_k, True): m for m in quiet}
        log(f"training {len(members)} members, {workers} at a time: ...")
        finished, pending = 0, set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    what = future.result()  # re-raises a member's error (a VaelabError keeps its one line)
                    finished += 1
                    log(f"[{finished}/{len(members)}] {futures[future].name}: {what}")
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # members not started never start
            raise


def time_shares(members: list[Member], total: float, jobs: int = 1) -> str:
    """Where the study's `total` seconds went: the members' training epochs and evaluations (as their run
    directories record them: a resumed member counts its earlier epochs too), and the rest (start-up, figures,
    reports, fitted samplers). Members trained side by side (`jobs` > 1) overlap, so their seconds are summed
    over processes and given without shares of the wall time."""
    training = evaluation = 0.0
    for member in members:
        run_dir = RunDir(member.path)
        _, epochs = run_dir.read_metrics()
        training += sum(e.get("seconds", 0.0) for e in epochs)
        saved = run_dir.read_eval()
        evaluation += float(saved.get("seconds") or 0.0) if saved else 0.0
    if jobs > 1:
        return (
            f"study: {total:.0f} s in all, members {jobs} at a time; summed over the members: training "
            f"{training:.0f} s, evaluation {evaluation:.0f} s"
        )
    rest = max(0.0, total - training - evaluation)
    shares = ", ".join(
        f"{name} {seconds:.0f} s ({seconds / total:.0%})"
        for name, seconds in (
            ("training", training),
            ("evaluation", evaluation),
            ("figures, reports and the rest", rest),
        )
        if total > 0
    )
    return f"study: {total:.0f} s in all; {shares}"


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
    # a metric no member has (disentanglement on data without factors) adds no column of n/a
    shown = [m for m in metrics.KNOWN.values() if any(f.section(m.name) is not None for f in finals.values())]
    if has_eval:
        header += [column for metric in shown for column in metric.columns]
    rows = []
    for name, f in finals.items():
        te, tr = f.test, f.train
        if f.neg_elbo is not None:
            row = [name, f.neg_elbo, te["recon"], te["kl"], tr["recon"] + tr["kl"], f.seconds]
        else:  # no likelihood terms (a GAN)
            row = [name, "n/a", "n/a", "n/a", "n/a", f.seconds]
        if has_eval:
            for metric in shown:
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
    seeds = sorted({m.config.seed for m in members})
    intro = (
        f"<p>{len(members)} members trained on <b>{dataset.name}</b> for {cfg.epochs} epochs each with "
        f"{'seeds ' + ', '.join(map(str, seeds)) if len(seeds) > 1 else f'seed {cfg.seed}'} (batch {cfg.batch_size}). "
        "Likelihood terms are means per test image in nats.</p>"
    )
    summary = None
    if len(seeds) > 1:
        groups = [m.group for m in members]
        summary = ("Over seeds: mean ± standard deviation", *seed_rows(header, rows, groups))
        atomic_write(out / SUMMARY_FILE, lambda temp: Path(temp).write_text(markdown_table(*summary[1:])))
    return report.study_report(
        out, intro, header, rows, answers(members, finals), drawn, [m.name for m in members], summary
    )


def seed_rows(header: list[str], rows: list[list[Any]], groups: list[str]) -> tuple[list[str], list[list[Any]]]:
    """The study's table with the rows of each group (the members that differ by their seed only) made one: each number
    as `mean ± standard deviation` over the group (the sample deviation; a group of one keeps its number)."""
    by_group: dict[str, list[list[Any]]] = {}
    for group, row in zip(groups, rows):
        by_group.setdefault(group, []).append(row)
    out = []
    for group, members in by_group.items():
        row = [f"{group} ({len(members)} seeds)" if len(members) > 1 else group]
        for column in range(1, len(header)):
            values = [r[column] for r in members]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                mean, spread = mean_spread(values)
                row.append(f"{mean:.4g} ± {spread:.2g}" if len(values) > 1 else values[0])
            else:
                row.append(values[0] if len(set(map(str, values))) == 1 else "n/a")
        out.append(row)
    return header, out


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]) + "\n"


def mean_spread(values: list[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (0 for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
