"""`vaelab explore`: a run's latent space, live in the browser.

- `session`: the one adapter into vaelab (a run, its model, data set, planes, decode, encode, ELBO terms);
- `images`: PNG and raw bytes out, uploaded files in;
- `server`: the Starlette application and uvicorn serving (the optional `explore` extra);
- `static/`: the page (HTML, JavaScript, CSS; no CDN, works offline).

Importing this package imports neither torch nor the web server: `explore` checks the extra first.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vaelab.errors import VaelabError

INSTALL_HINT = 'pip install "vaelab[explore]" (in a checkout: pip install -e ".[explore]")'


def demo_runs() -> list[Path]:
    """The two small runs shipped with vaelab (`vaelab explore --demo`): the course's MLP with a 2-D latent space
    (hidden 128, 20 epochs) and a conv model with a 10-D one (channels 16,32, hidden 64, 10 epochs), trained on the
    embedded mnist-mini digits with seed 0; weights and metrics only (1.7 MB)."""
    from importlib import resources

    root = Path(str(resources.files("vaelab.explorer") / "demo"))
    return [root / "mlp-z2", root / "conv-z10"]


def with_demo(runs: list[str], demo: bool) -> list[str]:
    """The runs to show: the shipped demo runs first when `demo`, then `runs`; a one-line error when none."""
    from vaelab.errors import ConfigError

    chosen = [*(str(p) for p in demo_runs() if demo), *runs]
    if not chosen:
        raise ConfigError("give at least one RUN directory, or --demo for the runs shipped with vaelab")
    return chosen


class MissingExtra(VaelabError):
    """The web server libraries of the `explore` extra are not installed."""


def require_extra() -> None:
    """A one-line `MissingExtra` naming what to install when Starlette or uvicorn is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(
            f"vaelab explore needs the web server of the explore extra ({exc.name} is missing): {INSTALL_HINT}"
        ) from None


def explore(
    runs: list[str | Path], host: str = "127.0.0.1", port: int = 0, open_browser: bool = True, quiet: bool = False
) -> None:
    """Open every run (one-line error if one cannot be), then serve the page until Ctrl+C."""
    require_extra()
    from vaelab.explorer.server import bind, is_loopback, serve
    from vaelab.explorer.session import open_sessions, serve_with_one_thread

    sock = bind(host, port)  # a taken port is an error before minutes are spent loading runs
    if not is_loopback(sock):
        print(
            f"vaelab explore: warning: serving on {host}: anyone who can reach this machine on port "
            f"{sock.getsockname()[1]} can use the explorer (there is no authentication)",
            file=sys.stderr,
        )
    # one write with its newline: print() writes the text and the newline separately, and a Ctrl+C landing between
    # the two left "vaelab explore: stopped" on the end of the loading line
    log = (
        None if quiet else lambda path: print(f"vaelab explore: loading {path}\n", end="", file=sys.stderr, flush=True)
    )
    try:
        sessions = open_sessions(list(runs), progress=log)
    except BaseException:
        sock.close()
        raise
    serve_with_one_thread()
    serve(sessions, sock, open_browser)
