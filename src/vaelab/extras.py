"""Optional features and the extras that install them: a missing package is a one-line error naming the extra.

onnx         vaelab export (onnx, onnxscript: torch's exporter; onnxruntime: the check of the exported files)
tensorboard  train --log tensorboard
mlflow       train --log mlflow (mlflow-skinny: the client and the local file store)
"""

from __future__ import annotations

import importlib
from types import ModuleType

from vaelab.errors import ConfigError


def require(feature: str, extra: str, *modules: str) -> list[ModuleType]:
    """Import `modules` for `feature`, or raise a one-line ConfigError saying which extra to install."""
    loaded = []
    for name in modules:
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as exc:
            raise ConfigError(
                f"{feature} needs the optional package {exc.name or name}: pip install 'vaelab[{extra}]'"
            ) from None
    return loaded
