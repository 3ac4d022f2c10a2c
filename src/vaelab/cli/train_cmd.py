"""`vaelab train`: every option of every kind as a flag, built from the options' own metadata; a TOML file
below them; the library does the work."""

from __future__ import annotations

import argparse
import sys

from vaelab import kinds
from vaelab.config import OLD_NAMES, read_toml, type_name
from vaelab.device import World
from vaelab.errors import ConfigError

OLD_FLAGS = {new: f"--{old}" for old, new in OLD_NAMES.items()}  # still accepted: --model, --recon


def kind_help() -> str:
    return "what to train: " + "; ".join(f"{k.name}: {k.help}" for k in kinds.KINDS.values())


def add_config_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per option of every registered kind; None means 'not given', so a TOML file below is not
    overridden. An option some kinds lack says which kinds have it."""
    for name, (field_, owners) in kinds.all_options().items():
        if name in skip:
            continue
        flags = ["--" + name.replace("_", "-")] + ([OLD_FLAGS[name]] if name in OLD_FLAGS else [])
        help_ = kind_help() if name == "kind" else field_.metadata["help"]
        if len(owners) < len(kinds.KINDS):
            help_ += f" [{', '.join(owners)}]"
        choices = kinds.names() if name == "kind" else field_.metadata.get("choices")
        if type_name(field_) == "bool":
            parser.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        elif field_.metadata.get("length") == 2 and type_name(field_).startswith("list[int]"):
            parser.add_argument(*flags, dest=name, type=int, nargs=2, metavar=("H", "W"), default=None, help=help_)
        else:
            parser.add_argument(*flags, dest=name, default=None, choices=choices, help=help_)


def given_options(args: argparse.Namespace, skip: tuple[str, ...] = ()) -> dict:
    names = set(kinds.all_options()) - set(skip)
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """--log TRACKER and --log-uri: mirror training to TensorBoard or MLflow (`vaelab.tracking`)."""
    from vaelab import tracking

    parser.add_argument(
        "--log",
        choices=tracking.names(),
        help="also log to a tracker: "
        + "; ".join(f"{t.name}: {t.help} (pip install 'vaelab[{t.extra}]')" for t in tracking.TRACKERS.values()),
    )
    parser.add_argument("--log-uri", metavar="URI", help="where --log writes (a folder, or a tracking server's URI)")


def log_option(args: argparse.Namespace):
    """The tracking asked for (a `tracking.Log`), or None; --log-uri alone is an error."""
    from vaelab import tracking

    if args.log_uri and not args.log:
        raise ConfigError("--log-uri: says where --log writes; give --log too (" + ", ".join(tracking.names()) + ")")
    return tracking.Log(args.log, args.log_uri) if args.log else None


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train a VAE (or another kind: --kind)",
        description="Train a model of any kind; options override --config FILE.toml.",
    )
    parser.add_argument("--config", metavar="FILE.toml", help="read options from a TOML file (options given here win)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--eval", action="store_true", help="run `vaelab eval` on the test split at the end")
    add_log_options(parser)
    add_config_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from vaelab.pipeline import train_run
    from vaelab.run import resume_config

    file_values = read_toml(args.config) if args.config else {}
    if args.resume:
        if not args.out:
            raise ConfigError("--resume needs --out RUN_DIR: the run to continue")
        config = resume_config(args.out, file_values, given_options(args))  # the TOML file is named in its errors
    else:
        config = kinds.make_config(file_values, given_options(args))
    run_dir = train_run(config, resume=args.resume, evaluate=args.eval, log=log_option(args))
    if not World.from_env().is_main:
        return
    if args.eval:
        from vaelab.evaluate import format_table, read_eval
        from vaelab.rundir import RunDir

        print(format_table(read_eval(RunDir(run_dir))))
    print(f"run written to {run_dir} (open {run_dir / 'report.html'})", file=sys.stderr if config.quiet else sys.stdout)
