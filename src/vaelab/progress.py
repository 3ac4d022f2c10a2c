"""Progress bars for long work: on stderr, hidden by --quiet, and shown only on a terminal unless asked
(VAELAB_PROGRESS=1 forces them, e.g. under a job scheduler that logs stderr)."""

from __future__ import annotations

import os

from tqdm import tqdm


def bar(total: int | None, desc: str, quiet: bool = False, unit: str = "it", **options) -> tqdm:
    forced = os.environ.get("VAELAB_PROGRESS") == "1"
    disable = True if quiet else (False if forced else None)  # None: tqdm hides it when stderr is no terminal
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, **options)
