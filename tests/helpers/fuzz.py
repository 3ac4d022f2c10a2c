"""Hypothesis settings and strategies the property-based tests share. The property they check: whatever a user hands
vaelab (config values, TOML text, edited run files, data files, paths), the answer is a valid result or a
`VaelabError` with a one-line message, never another exception. CI runs a small, derandomized example budget;
`VAELAB_FUZZ=thorough python -m pytest ...` a large one. Failures found are kept as explicit examples (`@example`)."""

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

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
