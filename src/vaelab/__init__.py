"""vaelab: train, evaluate and explore variational autoencoders on images.

From Python (see docs/api.md): `vaelab.train(...)` returns a run, `vaelab.compare(...)` a study, `vaelab.open_run(path)`
opens a run directory, `vaelab.load(path)` its model. `vaelab.data`, `vaelab.models`, `vaelab.kinds` and
`vaelab.evaluate` are imported on first use, so that `import vaelab` (and `vaelab --help`) stays quick.
"""

import importlib
import sys
import types

__version__ = "0.1.0"
SUBMODULES = ("data", "evaluate", "kinds", "models", "figures", "report", "run", "compare")


def load(run_dir, device="cpu"):
    """The trained model of a run directory, in eval mode (see `vaelab.run.load`)."""
    from vaelab.run import load as _load

    return _load(run_dir, device)


def train(data=None, kind=None, **options):
    """Train a model and write its run directory; returns the run (see `vaelab.api.train`)."""
    from vaelab.api import train as _train

    return _train(data, kind, **options)


def open_run(path, device="cpu"):
    """An existing run directory, for its metrics, evaluation, figures and model (see `vaelab.api.open_run`)."""
    from vaelab.api import open_run as _open_run

    return _open_run(path, device)


class _StudyModule(types.ModuleType):
    """`vaelab.compare` is the study's module (`vaelab/compare.py`) and, called, the Python API's `compare`: a
    submodule is set as an attribute of its package when it is imported, so the two cannot be told apart by name;
    the module is made callable instead (see `vaelab.api.compare`)."""

    def __call__(self, data=None, **options):
        from vaelab.api import compare as _compare

        return _compare(data, **options)


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name == "compare" and isinstance(value, types.ModuleType) and not isinstance(value, _StudyModule):
            value.__class__ = _StudyModule
        super().__setattr__(name, value)


def __getattr__(name):
    if name in SUBMODULES:
        return importlib.import_module(f"vaelab.{name}")
    raise AttributeError(f"module 'vaelab' has no attribute {name!r}")


sys.modules[__name__].__class__ = _Package
