"""vaelab.run's `resume_config` and `resumable_options` (what may change on --resume is a property of the option, asked
of its field: issue 21, item 4), and the rule the resume path of `pipeline.train_run` and `training.loop` keeps: a
resumed run changes nothing in its directory until its first good epoch, whatever fails before (issue 27, item 3)."""

import dataclasses
import json
import shutil
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import save_file

from tests.helpers.runs import one_line_error, resume, snapshot
from vaelab import kinds
from vaelab.checkpoint import read_safetensors
from vaelab.config import TrainConfig, is_resumable, option, option_fields
from vaelab.errors import ConfigError
from vaelab.kinds.base import Kind
from vaelab.run import RESUMABLE, resumable_options, resume_config

# What could change on --resume before the options declared it themselves (run.RESUMABLE was this list), and the
# resumable options of kinds added since.
BEFORE = {
    "epochs",
    "lr",
    "gan_lr",
    "grad_clip",
    "quiet",
    "device",
    "threads",
    "eval_batch_size",
    "precision",
    "compile",
    "disc_lr",  # FactorVAE's discriminator learning rate, resumable like every other kind's lr
    "flip",  # augmentation: switching it on for the rest of a run changes no saved state
    "lr_schedule",  # a function of the step: a resume may bend the rest of the run's rates (lower, annealed)
    "lr_warmup",
}


@pytest.mark.parametrize("kind", kinds.names())
def test_the_resumable_options_are_declared_on_the_options_and_unchanged(kind):
    """Each kind's resumable options are exactly the ones the hard-coded list named, now read from the fields."""
    fields = {**option_fields(TrainConfig), **option_fields(kinds.get(kind).options)}
    assert set(resumable_options(kinds.get(kind))) == BEFORE & set(fields)
    assert {name for name, f in fields.items() if is_resumable(f)} == BEFORE & set(fields)
    assert set(RESUMABLE) == BEFORE  # the names, derived from the built-in kinds' fields


def test_option_stores_resumable_in_the_field_metadata_and_nothing_else_when_not():
    @dataclass
    class Options:
        rate: float = option(0.1, "a rate", above=0, resumable=True)
        width: int = option(3, "a width", min=1)

    rate, width = dataclasses.fields(Options)
    assert dict(rate.metadata) == {"help": "a rate", "above": 0, "resumable": True} and is_resumable(rate)
    assert dict(width.metadata) == {"help": "a width", "min": 1} and not is_resumable(width)


def saved_run(folder, kind="vae", **train):
    """A run directory as `resume_config` reads it: config.json's train section and a training state (present)."""
    folder.mkdir()
    values = {**kinds.make_config({"kind": kind}).to_dict(), **train}
    (folder / "config.json").write_text(json.dumps({"kind": kind, "model": {}, "train": values}))
    (folder / "training_state.safetensors").write_bytes(b"")
    return folder


def test_a_kind_registered_in_a_test_declares_its_own_resumable_option(tmp_path):
    """The resume code asks the fields: a new kind's option marked resumable may change, its others may not, with
    no list to edit anywhere."""

    @dataclass
    class ToyOptions:
        toy_rate: float = option(0.1, "toy: a rate that may change on --resume", above=0, resumable=True)
        toy_width: int = option(3, "toy: a width fixed by the checkpoint", min=1)

    toy = Kind("toy-resume", "a toy", "Toy", ToyOptions, trainer=None, build=None, encoder=True, likelihood=True)
    kinds.register(toy)
    try:
        run = saved_run(tmp_path / "run", kind="toy-resume")
        assert resumable_options(toy) == [*[n for n in option_fields(TrainConfig) if n in BEFORE], "toy_rate"]
        config = resume_config(run, {"toy_rate": 0.5, "epochs": 7})
        assert (config.options.toy_rate, config.epochs, config.options.toy_width) == (0.5, 7, 3)
        with pytest.raises(ConfigError) as raised:
            resume_config(run, {"toy_width": 4})
        assert str(raised.value) == "toy_width: cannot change on --resume (the run was trained with 3)"
        assert resume_config(run, {"toy_width": 3}).options.toy_width == 3  # the same value is no change
    finally:
        kinds.unregister("toy-resume")


def test_resume_applies_only_resumable_options_and_sets_out_to_the_run(tmp_path):
    run = saved_run(tmp_path / "run", out="elsewhere")
    config = resume_config(run, {"lr": 5e-4, "epochs": 9, "seed": 0, "quiet": True})
    assert (config.options.lr, config.epochs, config.quiet, config.out) == (5e-4, 9, True, str(run))
    with pytest.raises(ConfigError, match=r"^seed: cannot change on --resume \(the run was trained with 0\)$"):
        resume_config(run, {"seed": 1})


# --- a failed resume changes nothing -------------------------------------------------------------------------------
def _garbage_metrics_line(run):
    (run / "metrics.jsonl").write_text((run / "metrics.jsonl").read_text() + "[1, 2]\n")


def _metrics_without_header(run):
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text("".join(lines[1:]))


def _string_epoch_in_the_training_state(run):
    tensors, metadata = read_safetensors(run / "training_state.safetensors")
    save_file(tensors, run / "training_state.safetensors", metadata={**metadata, "info": '{"epoch": "two"}'})


def _nan_in_the_training_state(run):
    tensors, metadata = read_safetensors(run / "training_state.safetensors")
    first = next(k for k in tensors if k.startswith("model/"))
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, run / "training_state.safetensors", metadata=metadata)


def _invalid_lr_in_config_json(run):
    meta = json.loads((run / "config.json").read_text())
    meta["train"]["lr"] = -1.0
    (run / "config.json").write_text(json.dumps(meta))


def _edited_model_section(run):
    meta = json.loads((run / "config.json").read_text())
    meta["model"]["latent_dim"] = 5
    (run / "config.json").write_text(json.dumps(meta))


def _machine_of_100_kib(monkeypatch):
    monkeypatch.setattr("vaelab.pipeline.machine_memory", lambda device: (100 * 1024, "this machine"))


FAILURES = {
    # name: (damage to the run, or to the machine; the options of the resume; exit code; what the line says)
    "a garbage line in metrics.jsonl": (_garbage_metrics_line, [], 2, "line 3 is not an epoch record"),
    "metrics.jsonl without its header": (_metrics_without_header, [], 2, "metrics.jsonl: has no header line"),
    "a damaged training state": (_string_epoch_in_the_training_state, [], 2, "damaged"),
    "NaN weights in the training state": (_nan_in_the_training_state, [], 2, "holds non-finite values"),
    "an invalid value in config.json": (_invalid_lr_in_config_json, [], 2, "config.json: the saved train section"),
    "an edited model section": (_edited_model_section, [], 2, "the model section does not match"),
    "an option that cannot change": (None, ["--latent-dim", "3"], 2, "latent_dim: cannot change on --resume"),
    "an invalid option": (None, ["--grad-clip", "-1"], 2, "grad_clip: must be >= 0"),
    "a diverging first epoch": (None, ["--lr", "1e12"], 3, "training diverged"),
    "a machine too small": ("machine", [], 2, "(this machine has 0.0977 MiB, 0.0879 MiB of it for a run)"),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_a_resume_that_fails_before_its_first_good_epoch_leaves_the_run_byte_identical(
    cli, no_figures, tiny_run, tmp_path, monkeypatch, failure
):
    """config.json, metrics.jsonl, the safetensors files (and every other file) are byte for byte what they were,
    with a new lr asked for on the command line (the option a failed resume used to write into config.json before
    a damaged metrics.jsonl was found, an epoch later)."""
    damage, options, code, says = FAILURES[failure]
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    if damage == "machine":
        _machine_of_100_kib(monkeypatch)
    elif damage:
        damage(run)
    before = snapshot(run)
    message = one_line_error(resume(cli, run, 3, "--lr", "0.0005", *options), code)
    assert says in message, message
    assert snapshot(run) == before
    assert {"config.json", "metrics.jsonl", "model.safetensors", "training_state.safetensors"} <= set(before)


def test_a_resume_after_a_refused_one_trains_from_the_same_checkpoint(cli, no_figures, tiny_run, tmp_path):
    """The refusal left the run whole: once metrics.jsonl is repaired, the resume takes its new lr from the resumed
    epoch on and config.json records it."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    good = (run / "metrics.jsonl").read_text()
    _garbage_metrics_line(run)
    one_line_error(resume(cli, run, 2, "--lr", "0.0005"))
    (run / "metrics.jsonl").write_text(good)
    assert resume(cli, run, 2, "--lr", "0.0005").returncode == 0
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == 0.0005
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()[1:]]
    assert [(e["epoch"], e["lr"]) for e in lines] == [(1, 1e-3), (2, 0.0005)]
