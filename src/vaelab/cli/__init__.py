"""The `vaelab` command: parses arguments and calls into the library; holds no logic of its own."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading

from vaelab.errors import VaelabError, one_line

# the command modules, imported when the parser is built (inside `main`'s handlers: they import torch, which takes
# seconds, and a Ctrl-C meanwhile is one line like any other)
COMMANDS = [
    "data_cmd",
    "train_cmd",
    "eval_cmd",
    "figures_cmd",
    "compare_cmd",
    "explore_cmd",
    "sampler_cmd",
    "export_cmd",
]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (and exit 2), like every other vaelab error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> Parser:
    parser = Parser(prog="vaelab", description="Train, evaluate and explore variational autoencoders.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"vaelab.cli.{name}").register(sub)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that it stops like on Ctrl-C (every write is atomic)."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    previous = (
        signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args) or 0)
    except VaelabError as exc:
        print(f"vaelab: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vaelab: interrupted; every file already written (the last checkpoint too) is intact", file=sys.stderr)
        return 130
    except Terminated:
        print(
            "vaelab: terminated (SIGTERM); every file already written (the last checkpoint too) is intact",
            file=sys.stderr,
        )
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def entry() -> None:
    sys.exit(main())
