"""The `vaelab` command: parses arguments and calls into the library; holds no logic of its own."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from vaelab.cli import compare_cmd, data_cmd, eval_cmd, explore_cmd, export_cmd, figures_cmd, sampler_cmd, train_cmd
from vaelab.errors import VaelabError, one_line

COMMANDS = [data_cmd, train_cmd, eval_cmd, figures_cmd, compare_cmd, explore_cmd, sampler_cmd, export_cmd]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (and exit 2), like every other vaelab error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> Parser:
    parser = Parser(prog="vaelab", description="Train, evaluate and explore variational autoencoders.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMANDS:
        module.register(sub)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that it stops like on Ctrl-C (every write is atomic)."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = (
        signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    )
    try:
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
