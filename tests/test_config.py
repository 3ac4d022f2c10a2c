"""The options (vaelab.config, read through the registry of kinds): any config values and any TOML text give a
configuration or a one-line error, never another exception (property tests, tests/helpers/fuzz.py)."""

from hypothesis import example, given
from hypothesis import strategies as st

from tests.helpers.fuzz import FUZZ_RUNS, json_values, one_line
from vaelab import kinds
from vaelab.config import TrainConfig, read_toml
from vaelab.errors import VaelabError

KEYS = sorted(kinds.all_options()) + ["model", "recon", "latnt_dim", "train"]


@FUZZ_RUNS
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6))
@example({"hidden": [10**12]})
@example({"seed": 10**23})
@example({"latent_dim": 10**11})
@example({"adam_betas": "nan,1"})
@example({"kind": ["vae"]})
@example({"size": [0, 3]})
def test_any_config_values_give_a_config_or_a_one_line_error(values):
    """Found by fuzzing: a property test (Hypothesis)."""
    try:
        config = kinds.make_config(values)
    except VaelabError as exc:
        one_line(exc)
        return
    assert isinstance(config, TrainConfig) and config.kind in kinds.names()
    assert kinds.make_config(config.to_dict()).to_dict() == config.to_dict()  # what is saved loads back the same


@FUZZ_RUNS
@given(st.text(max_size=200))
@example("epochs = = 3")
@example("[train]\nlatent-dim = 2\n[other]\n")
def test_any_toml_text_gives_options_or_a_one_line_error(tmp_path_factory, text):
    """Found by fuzzing: a property test (Hypothesis)."""
    path = tmp_path_factory.mktemp("toml") / "run.toml"
    path.write_text(text)
    try:
        kinds.make_config(read_toml(path))
    except VaelabError as exc:
        one_line(exc)
