"""Property-based tests (Hypothesis) of everything a user hands vaelab besides data: config values from TOML
or the command line, TOML text, and run directories whose config.json, metrics.jsonl and eval.json were edited.

The property: a `VaelabError` with a one-line message, or a valid result; never another exception.
CI runs a small example budget; `VAELAB_FUZZ=thorough python -m pytest tests/test_fuzz_config.py` a large one.
Failures found are kept as explicit examples (`@example`)."""

import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vaelab import kinds
from vaelab.config import TrainConfig, read_toml
from vaelab.errors import VaelabError

THOROUGH = os.environ.get("VAELAB_FUZZ") == "thorough"
FUZZ = settings(
    max_examples=2000 if THOROUGH else 60,
    deadline=None,
    derandomize=not THOROUGH,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KEYS = sorted(kinds.all_options()) + ["model", "recon", "latnt_dim", "train"]
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


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6))
@example({"hidden": [10**12]})
@example({"seed": 10**23})
@example({"latent_dim": 10**11})
@example({"adam_betas": "nan,1"})
@example({"kind": ["vae"]})
@example({"size": [0, 3]})
def test_any_config_values_give_a_config_or_a_one_line_error(values):
    try:
        config = kinds.make_config(values)
    except VaelabError as exc:
        one_line(exc)
        return
    assert isinstance(config, TrainConfig) and config.kind in kinds.names()
    assert kinds.make_config(config.to_dict()).to_dict() == config.to_dict()  # what is saved loads back the same


@FUZZ
@given(st.text(max_size=200))
@example("epochs = = 3")
@example("[train]\nlatent-dim = 2\n[other]\n")
def test_any_toml_text_gives_options_or_a_one_line_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("toml") / "run.toml"
    path.write_text(text)
    try:
        kinds.make_config(read_toml(path))
    except VaelabError as exc:
        one_line(exc)


@pytest.fixture(scope="module")
def tiny_run(digits_npz, tmp_path_factory):
    from vaelab.cli import main

    out = tmp_path_factory.mktemp("fuzzrun") / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(digits_npz(64, 16)),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--quiet",
                "--latent-dim",
                "2",
                "--hidden",
                "8",
                "--batch-size",
                "32",
            ]
        )
        == 0
    )
    return out


def damage(meta, path: list, value):
    """`meta` with the value at `path` (a list of keys, into nested tables) replaced."""
    if not path or not isinstance(meta, dict):
        return value
    return {**meta, path[0]: damage(meta.get(path[0], {}), path[1:], value)}


CONFIG_PATHS = st.sampled_from(
    [
        [],
        ["kind"],
        ["model"],
        ["train"],
        ["data"],
        ["model", "shape"],
        ["model", "arch"],
        ["model", "latent_dim"],
        ["model", "hidden"],
        ["model", "channels"],
        ["model", "likelihood"],
        ["model", "sigma"],
        ["model", "learn_sigma"],
        ["model", "activation"],
        ["train", "kind"],
        ["train", "seed"],
        ["train", "data"],
        ["train", "likelihood"],
        ["train", "latent_dim"],
        ["train", "epochs"],
    ]
)


@FUZZ
@given(CONFIG_PATHS, json_values)
@example(["model", "shape"], [1, -28, 28])
@example(["model", "hidden"], [65536, 65536, 65536])
@example(["model", "likelihood"], "poisson")
@example(["train", "seed"], "seven")
@example([], [1, 2])
def test_any_edit_of_config_json_opens_or_gives_a_one_line_error(tiny_run, tmp_path_factory, path, value):
    from vaelab.run import Run

    run_dir = tmp_path_factory.mktemp("edited") / "run"
    shutil.copytree(tiny_run, run_dir)
    meta = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps(damage(meta, path, value)))
    try:
        run = Run.open(run_dir)
        run.model.sample(2)
    except VaelabError as exc:
        one_line(exc)


@FUZZ
@given(st.lists(json_values | st.text(max_size=30), max_size=4))
@example([[1, 2]])
@example([{"epoch": "two", "train": {}, "test": {}}])
def test_any_metrics_lines_read_or_give_a_one_line_error(tiny_run, tmp_path_factory, lines):
    from vaelab.rundir import RunDir

    run_dir = tmp_path_factory.mktemp("metrics") / "run"
    shutil.copytree(tiny_run, run_dir)
    extra = "".join((line if isinstance(line, str) else json.dumps(line)).replace("\n", " ") + "\n" for line in lines)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(extra)
    try:
        RunDir(run_dir).read_metrics()
    except VaelabError as exc:
        one_line(exc)


@FUZZ
@given(json_values)
@example({"samples": {"available": True}, "split": 3})
@example({"samples": {}, "elbo": "x", "split": "test", "n_images": 2, "seed": 0, "run": "r", "notes": []})
def test_any_eval_json_leaves_the_report_written(tiny_run, tmp_path_factory, value):
    from vaelab.report import run_report

    run_dir = tmp_path_factory.mktemp("eval") / "run"
    shutil.copytree(tiny_run, run_dir)
    (run_dir / "eval.json").write_text(json.dumps(value))
    assert run_report(run_dir).is_file()
