import pytest


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A folder for the property tests' examples (each takes a fresh folder below it: see `fresh_dir`)."""
    return tmp_path_factory.mktemp("fuzz")
