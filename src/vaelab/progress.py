"""Progress bars for long work: hidden by --quiet, shown on a terminal (stderr) and in a notebook (tqdm.auto: a
widget with ipywidgets, else text), hidden elsewhere unless asked (VAELAB_PROGRESS=1 forces them, e.g. under a job
scheduler that logs stderr)."""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def in_notebook() -> bool:
    """A Jupyter kernel runs this process (its output is no terminal, yet shows progress bars): IPython's shell is
    running inside a kernel app (importing ipykernel, as some libraries do, is not enough)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def bar(total: int | None, desc: str, quiet: bool = False, unit: str = "it", **options) -> tqdm:
    forced = os.environ.get("VAELAB_PROGRESS") == "1" or in_notebook()
    disable = True if quiet else (False if forced else None)  # None: tqdm hides it when stderr is no terminal
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, **options)
