"""vaelab: train, evaluate and explore variational autoencoders on images.

`vaelab.data`, `vaelab.models`, `vaelab.kinds` and `vaelab.evaluate` are imported on first use, so that
`import vaelab` (and `vaelab --help`) stays quick.
"""

import importlib

__version__ = "0.1.0"
SUBMODULES = ("data", "evaluate", "kinds", "models", "figures", "report", "run")


def load(run_dir, device="cpu"):
    """The trained model of a run directory, in eval mode (see `vaelab.run.load`)."""
    from vaelab.run import load as _load

    return _load(run_dir, device)


def __getattr__(name):
    if name in SUBMODULES:
        return importlib.import_module(f"vaelab.{name}")
    raise AttributeError(f"module 'vaelab' has no attribute {name!r}")
