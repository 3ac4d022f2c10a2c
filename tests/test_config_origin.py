"""vaelab.config's origins (`Layer`, `COMMAND_LINE`) and how `kinds.make_config` and `run.resume_config` use them: an
invalid value is blamed on the file it came from (a TOML file, a run's config.json), not on an option the user typed
with another, valid value (issue 27, item 6)."""

import json

import pytest

from vaelab import kinds
from vaelab.config import COMMAND_LINE, Layer, read_toml
from vaelab.errors import ConfigError
from vaelab.run import resume_config


def saved_run(folder, **train):
    """A run directory as `resume_config` reads it: config.json's train section (the defaults, then `train`) and a
    training state (only its presence is read here)."""
    folder.mkdir()
    values = {**kinds.make_config({}).to_dict(), **train}
    (folder / "config.json").write_text(json.dumps({"kind": values["kind"], "model": {}, "train": values}))
    (folder / "training_state.safetensors").write_bytes(b"")
    return folder


def test_a_bad_value_in_a_toml_file_names_the_file(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("lr = -3\n")
    with pytest.raises(ConfigError) as raised:
        kinds.make_config(read_toml(toml), {"epochs": 2})
    assert str(raised.value) == f"{toml}: lr: must be a positive number, got -3.0"
    toml.write_text("k = 5\n")  # an option of another kind
    with pytest.raises(ConfigError, match=rf"^{toml}: k: has no meaning with --kind vae$"):
        kinds.make_config(read_toml(toml))


def test_a_bad_value_from_the_command_line_names_the_option_alone():
    """Values given as options (plain dicts, or a Layer whose origin is the command line) are named by the option:
    the user typed it; the same value from a file names the file."""
    for layer in ({"lr": -3}, Layer({"lr": -3}, COMMAND_LINE)):
        with pytest.raises(ConfigError) as raised:
            kinds.make_config({}, layer)
        assert str(raised.value) == "lr: must be a positive number, got -3.0"
    with pytest.raises(ConfigError, match=r"^saved\.toml: lr: must be a positive number, got -3\.0$"):
        kinds.make_config(Layer({"lr": -3}, "saved.toml"), {"epochs": 2})


def test_a_valid_option_on_the_command_line_overrides_a_file_only_when_it_is_the_later_layer(tmp_path):
    """The command line wins over the TOML file below it: a bad value in the file that the command line replaces is
    still checked (it is in the file), and named as the file's."""
    toml = tmp_path / "run.toml"
    toml.write_text("epochs = 0\n")
    with pytest.raises(ConfigError, match=rf"^{toml}: epochs: must be >= 1, got 0$"):
        kinds.make_config(read_toml(toml), {"epochs": 3})


def test_resume_names_config_json_for_a_bad_saved_value_while_the_typed_one_is_valid(tmp_path):
    """The run's config.json holds lr = -1 (edited by hand); the user resumes with --lr 0.001: the message names the
    file and what to do, not `lr` alone (which the user just gave a valid value)."""
    run = saved_run(tmp_path / "run", lr=-1.0)
    with pytest.raises(ConfigError) as raised:
        resume_config(run, {"lr": 0.001, "epochs": 2})
    assert str(raised.value) == (
        f"{run}/config.json: the saved train section is invalid (lr: must be a positive number, got -1.0); "
        "restore the file, or train a new run"
    )


def test_resume_names_the_toml_file_of_an_option_that_cannot_change(tmp_path):
    run = saved_run(tmp_path / "run")
    toml = tmp_path / "more.toml"
    toml.write_text("hidden = [3]\nepochs = 4\n")
    with pytest.raises(ConfigError) as raised:
        resume_config(run, read_toml(toml), {"epochs": 5})
    assert str(raised.value) == f"{toml}: hidden: cannot change on --resume (the run was trained with None)"
    with pytest.raises(ConfigError, match=r"^hidden: cannot change on --resume"):  # typed: the option alone
        resume_config(run, read_toml(toml), {"hidden": "7"})
    toml.write_text("lr = -2.0\n")
    with pytest.raises(ConfigError, match=rf"^{toml}: lr: must be a positive number, got -2.0$"):
        resume_config(run, read_toml(toml))
    toml.write_text('kind = "gan"\n')
    with pytest.raises(
        ConfigError, match=rf"^{toml}: kind: cannot change on --resume \(the run was trained as 'vae'\)$"
    ):
        resume_config(run, read_toml(toml))
    toml.write_text("epochs = 4\n")  # a resumable option from a file is applied, the command line winning
    assert resume_config(run, read_toml(toml)).epochs == 4
    assert resume_config(run, read_toml(toml), {"epochs": 6}).epochs == 6


def test_resume_through_the_command_line_names_config_json(cli, tiny_run, tmp_path):
    """End to end: one line, exit 2, naming the run's config.json, and the run left as it was."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    meta = json.loads((run / "config.json").read_text())
    meta["train"]["lr"] = -1.0
    (run / "config.json").write_text(json.dumps(meta))
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    result = cli("train", "--out", run, "--resume", "--epochs", "2", "--lr", "0.001", "--quiet")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"vaelab: error: {run}/config.json: the saved train section is invalid (lr: ")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
