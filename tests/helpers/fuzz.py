"""Hypothesis settings and strategies the property-based tests share. The property they check: whatever a user hands
vaelab (config values, TOML text, edited run files, data files, paths), the answer is a valid result or a
`VaelabError` with a one-line message, never another exception. CI runs a small, derandomized example budget;
`VAELAB_FUZZ=thorough python -m pytest ...` a large one. Failures found are kept as explicit examples (`@example`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st

from vaelab.data import Dataset
from vaelab.data.limits import MAX_CLASSES
from vaelab.errors import VaelabError

THOROUGH = os.environ.get("VAELAB_FUZZ") == "thorough"

# config values, TOML text and a run's edited files: each example may copy a run directory
FUZZ_RUNS = settings(
    max_examples=2000 if THOROUGH else 60,
    deadline=None,
    derandomize=not THOROUGH,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)


def one_line(exc: VaelabError) -> None:
    assert str(exc) and "\n" not in str(exc), repr(exc)


# the data readers: an example writes a few small files; a failure found is kept as an @example of its test
_COMMON = dict(
    deadline=None,
    database=None,  # CI starts clean; a failure is kept as an @example, not in a local database
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],  # no explain: slow, writes files
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("vaelab-ci", max_examples=200, derandomize=True, **_COMMON)
settings.register_profile("vaelab-thorough", max_examples=5000, **_COMMON)
FUZZ = settings.get_profile("vaelab-thorough" if THOROUGH else "vaelab-ci")


def assert_valid(dataset: Dataset) -> None:
    """A data set vaelab can train on: uint8 [N, C, H, W] splits of one shape, labels int64 in range or None."""
    assert isinstance(dataset, Dataset)
    shape = dataset.train.images.shape[1:]
    for split in (dataset.train, dataset.test):
        images, labels = split.images, split.labels
        assert images.dtype == torch.uint8 and images.dim() == 4 and images.shape[0] >= 1
        assert images.shape[1] in (1, 3) and images.shape[1:] == shape and min(shape[1:]) >= 1
        assert (labels is None) == (dataset.train.labels is None)
        if labels is not None:
            assert labels.dtype == torch.int64 and labels.shape == (images.shape[0],)
            assert 0 <= int(labels.min()) and int(labels.max()) < dataset.num_classes <= MAX_CLASSES
    if dataset.classes is not None:
        assert all(isinstance(name, str) for name in dataset.classes)


def outcome(load, *args, **kwargs) -> str:
    """Call a loader; the result must be a valid data set or a one-line VaelabError (anything else fails the test)."""
    try:
        dataset = load(*args, **kwargs)
    except VaelabError as exc:
        message = str(exc)
        assert message and message.isprintable(), f"not a one-line message: {message!r}"
        event(f"error: {type(exc).__name__}")
        return "error"
    assert_valid(dataset)
    event("valid data set")
    return "dataset"


class fresh_dir:  # noqa: N801 - used like tempfile.TemporaryDirectory
    """A new empty folder under `scratch` for one example, removed afterwards (a test runs hundreds)."""

    def __init__(self, scratch: Path):
        self.path = Path(tempfile.mkdtemp(dir=scratch))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# IDX and npz dimensions: small ones, and those where a product of sizes overflows or memory runs out
DIMS = st.one_of(st.integers(0, 6), st.sampled_from([28, 255, 256, 65535, 65536, 2**31, 2**32 - 1]))
