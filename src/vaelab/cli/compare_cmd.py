"""`vaelab compare`: the comparison study (default: the course's mlp / conv x latent 2 / 10)."""

from __future__ import annotations

import argparse
import sys

from vaelab.cli.train_cmd import add_config_options, add_log_options, given_options, log_option
from vaelab.config import read_toml

VARIED = ("arch", "latent_dim", "beta", "kind", "out")


def _list(kind):
    def parse(text: str):
        try:
            values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated values, got {text!r}") from None
        if not values:  # "" or " , ": refused, not read as the default
            raise argparse.ArgumentTypeError(f"expected at least one comma-separated value, got {text!r}")
        return values

    return parse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "compare",
        help="train a grid of configurations and write a side-by-side report",
        description="Train every combination of --archs x --latent-dims x --betas on the same data, epochs "
        "and seed; each member is a run directory under --out; then write OUT/report.html.",
    )
    parser.add_argument(
        "--kinds",
        "--models",
        dest="kinds",
        type=_list(str),
        default=["vae"],
        help="comma-separated model kinds, e.g. vae,vaegan,gan (default vae; old name --models); a kind may carry "
        "options of its own, kind:option=value (vae:beta=4 beside vae: the β-VAE and the VAE)",
    )
    parser.add_argument("--archs", type=_list(str), default=["mlp", "conv"], help="comma-separated (default mlp,conv)")
    parser.add_argument("--latent-dims", type=_list(int), default=[2, 10], help="comma-separated (default 2,10)")
    parser.add_argument(
        "--betas",
        type=_list(float),
        default=None,
        help="comma-separated values of --beta for the kinds that have it (default: each kind's own, 1 for a VAE)",
    )
    parser.add_argument(
        "--seeds",
        type=_list(int),
        default=None,
        help="comma-separated seeds: each member trained once per seed, the table as mean ± standard deviation "
        "(default: --seed alone)",
    )
    parser.add_argument("--out", default="compare", help="study folder (default compare/)")
    parser.add_argument("--config", metavar="FILE.toml", help="shared training options from a TOML file")
    parser.add_argument("--no-eval", action="store_true", help="skip `vaelab eval` on each member")
    parser.add_argument(
        "--iwae-k", type=int, default=100, help="importance samples per image in each member's evaluation (default 100)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="train this many members at once, each in its own process (default 1; 2 on two idle cores: the default "
        "study in about 0.8 of the time, see README); their progress bars are hidden",
    )
    add_log_options(parser)
    add_config_options(parser, skip=VARIED)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from vaelab.compare import parse_kind, run_study

    base = {**(read_toml(args.config) if args.config else {}), **given_options(args, skip=VARIED)}
    for key in VARIED[:4]:
        base.pop(key, None)
    for spec in args.kinds:
        parse_kind(spec)  # an unknown kind is a one-line error before anything is trained
    quiet = bool(base.get("quiet"))
    log = (lambda message: print(message, file=sys.stderr)) if quiet else print
    track = log_option(args)  # each member to a tracker, grouped as one study
    path = run_study(
        base,
        args.archs,
        args.latent_dims,
        args.betas,
        args.out,
        not args.no_eval,
        args.iwae_k,
        log,
        args.kinds,
        track,
        args.seeds,
        args.jobs,
    )
    print(f"study report: {path}")
