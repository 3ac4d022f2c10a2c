"""`vaelab explore RUN [RUN ...]`: serve the latent-space explorer on 127.0.0.1 and open it in the browser."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="explore runs' latent spaces live in the browser (the explore extra)")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories; several are shown side by side")
    p.add_argument("--port", type=int, default=0, help="port to serve on (default: a free one)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: only this machine can connect)"
    )
    p.add_argument("--no-browser", action="store_true", help="do not open the page; the URL is printed")
    p.add_argument("--quiet", action="store_true", help="no loading messages")
    p.set_defaults(run=run_explore)


def run_explore(args) -> None:
    from vaelab.explorer import explore

    explore(args.runs, args.host, args.port, not args.no_browser, args.quiet)
