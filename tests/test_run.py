"""A run directory opened for use (vaelab.run): its options, kind and model, loaded once; what may change on --resume."""

import json

import pytest

from tests.helpers.runs import (
    epochs_of,
    ok,
    one_line_error,
    resume,
    snapshot,
    train,
)
from vaelab import kinds
from vaelab.checkpoint import read_safetensors
from vaelab.config import TrainConfig, option_fields, type_name
from vaelab.run import RESUMABLE


def _changed(name: str, field_, saved, other_data: str) -> list[str]:
    """Command-line arguments that set option `name` to a valid value other than `saved`."""
    flag, md, annotation = "--" + name.replace("_", "-"), field_.metadata, type_name(field_)
    if name == "kind":
        return [flag, next(k for k in kinds.names() if k != saved)]
    if name == "data":
        return [flag, other_data]
    if md.get("choices"):
        return [flag, next(c for c in md["choices"] if c != saved)]
    if annotation == "bool":
        return [f"--no-{flag[2:]}" if saved else flag]
    if annotation.startswith("list[int]") and md.get("length") == 2:  # --size H W
        return [flag, "28", "29"] if saved is None else [flag, str(saved[0] + 1), str(saved[1])]
    if annotation.startswith("list"):  # comma-separated
        if saved is None:
            return [flag, "17"]
        return [flag, ",".join(map(str, [saved[0] + 1 if "int" in annotation else saved[0] / 2, *saved[1:]]))]
    if annotation.startswith("str"):
        return [flag, "elsewhere"]
    if annotation.startswith("int"):
        return [flag, str(saved + 1 if saved + 1 <= md.get("max", saved + 1) else saved - 1)]
    value = saved / 2 if saved else 0.5  # float: halving keeps every bound of these options (min 0, below 1...)
    return [flag, str(value)]


@pytest.mark.usefixtures("no_figures")
@pytest.mark.parametrize("kind", kinds.names())
def test_every_option_that_cannot_change_on_resume_is_refused_and_the_run_left_alone(cli, digits_npz, tmp_path, kind):
    """Every option of the kind that is not in `run.RESUMABLE` (the list the code keeps), given a new value on
    --resume, is a one-line error naming it (exit 2) that leaves the whole run directory as it was; the same value
    as the run's is accepted, and the resumable ones (a lower lr after a divergence) are applied from the resumed epoch
    on. Catches an option silently taken from the saved config (the user thinks it changed), silently applied to a
    checkpoint it does not fit, or a new lr saved in config.json but not given to the optimizers."""
    digits = digits_npz(256, 64)
    out = tmp_path / "run"
    ok(train(cli, digits, out, kind))
    saved = json.loads((out / "config.json").read_text())["train"]
    options = {**option_fields(TrainConfig), **option_fields(kinds.get(kind).options)}
    fixed = [name for name in options if name not in RESUMABLE and name != "out"]
    assert {"kind", "data", "latent_dim", "hidden", "arch", "seed", "batch_size"} <= set(fixed)
    before = snapshot(out)
    for name in fixed:
        args = _changed(name, options[name], saved[name], str(digits_npz(300, 64)))
        message = one_line_error(resume(cli, out, 2, *args))
        assert message.startswith(f"vaelab: error: {name}: "), (args, message)
        if name != "learn_sigma":  # refused first by a rule across options: it needs the Gaussian likelihood
            assert "cannot change on --resume" in message, (args, message)
        assert snapshot(out) == before, args
    # the same values as the run's are accepted, and the resumable options are applied from the resumed epoch on
    lr_option = kinds.get(kind).lr_option
    lr_flag, new_lr = "--" + lr_option.replace("_", "-"), saved[lr_option] / 2
    same = ["--latent-dim", saved["latent_dim"], "--seed", saved["seed"]]
    ok(resume(cli, out, 2, *same, lr_flag, new_lr, "--grad-clip", "1", "--eval-batch-size", "100"))
    assert [(e["epoch"], e["lr"]) for e in epochs_of(out)] == [(1, saved[lr_option]), (2, new_lr)]
    now = json.loads((out / "config.json").read_text())["train"]
    assert (now[lr_option], now["grad_clip"], now["eval_batch_size"]) == (new_lr, 1.0, 100)
    groups = json.loads(read_safetensors(out / "training_state.safetensors", tensors=False)[1]["param_groups"])
    assert {group["lr"] for optimizer in groups.values() for group in optimizer} == {new_lr}  # every network's Adam
