"""`vaelab explore RUN [RUN ...]`: serve the latent-space explorer on 127.0.0.1 and open it in the browser."""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="explore runs' latent spaces live in the browser (the explore extra)")
    p.add_argument("runs", nargs="*", metavar="RUN", help="run directories; several are shown side by side")
    p.add_argument(
        "--demo", action="store_true", help="show the two small runs shipped with vaelab (MLP z=2, conv z=10)"
    )
    p.add_argument("--port", type=int, default=0, help="port to serve on (default: a free one)")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: only this machine can connect)"
    )
    p.add_argument("--no-browser", action="store_true", help="do not open the page; the URL is printed")
    p.add_argument("--quiet", action="store_true", help="no loading messages")
    p.set_defaults(run=run_explore)


def run_explore(args) -> int:
    from vaelab.explorer import explore, with_demo

    runs = with_demo(args.runs, args.demo)
    previous = on_ctrl_c(stop_once)
    try:
        explore(runs, args.host, args.port, not args.no_browser, args.quiet)
    except KeyboardInterrupt:  # Ctrl+C while loading, or while serving (raised once the server has shut down)
        previous = signal.SIG_IGN  # the process ends now: a further Ctrl+C adds nothing
        on_ctrl_c(previous)
        print("vaelab explore: stopped", file=sys.stderr, flush=True)
        return 130
    finally:
        on_ctrl_c(previous)
    return 0


def stop_once(signum, frame) -> None:
    """The first Ctrl+C stops the explorer; any further one while it stops is ignored (no second message)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def on_ctrl_c(handler):
    """Install `handler` for SIGINT; the one it replaces (None off the main thread, where signals cannot be set)."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, handler)
