"""A run directory opened for use (vaelab.run): its options, kind and model, loaded once; what may change on --resume."""

import json
import math
import shutil

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from tests.helpers.fixtures import OLD_RUN
from tests.helpers.fuzz import FUZZ_RUNS, json_values, one_line
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
from vaelab.errors import VaelabError
from vaelab.run import RESUMABLE, Run


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
    if annotation.startswith("int") and saved is None:  # an option chosen from the data (--width, --mixtures)
        return [flag, "2"]
    if annotation.startswith("int"):
        return [flag, str(saved + 1 if saved + 1 <= md.get("max", saved + 1) else saved - 1)]
    value = saved / 2 if saved else 0.5  # float: halving keeps every bound of these options (min 0, below 1...)
    return [flag, str(value)]


@pytest.mark.e2e
@pytest.mark.usefixtures("no_figures")
@pytest.mark.parametrize("kind", kinds.names())
def test_every_option_that_cannot_change_on_resume_is_refused_and_the_run_left_alone(cli, digits_npz, tmp_path, kind):
    """Every option of the kind that is not in `run.RESUMABLE` (the list the code keeps), given a new value on
    --resume, is a one-line error naming it (exit 2) that leaves the whole run directory as it was; the same value
    as the run's is accepted, and the resumable ones (a lower lr after a divergence) are applied from the resumed epoch
    on. Catches an option silently taken from the saved config (the user thinks it changed), silently applied to a
    checkpoint it does not fit, or a new lr saved in config.json but not given to the optimizers.
    Checks a README claim."""
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
        # refused first by a rule across options: they need the Gaussian (learn_sigma), the logistic (mixtures)
        if name not in ("learn_sigma", "mixtures"):
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
    # every network's Adam, but those with a learning rate of their own (FactorVAE's discriminator: --disc-lr)
    own = {saved[name] for name in saved if name.endswith("_lr") and name != lr_option and name in RESUMABLE}
    assert {group["lr"] for optimizer in groups.values() for group in optimizer} == {new_lr} | own


@pytest.mark.e2e
def test_runs_written_by_vaelab_0_1_0_still_load_report_and_resume(cli, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(OLD_RUN, old)
    train = json.loads((old / "config.json").read_text())["train"]
    assert train["model"] == "vae" and train["recon"] == "bernoulli" and "gan_lr" in train  # the 0.1.0 layout
    run = Run.open(old)
    assert run.kind.name == "vae" and run.config.options.likelihood == "bernoulli" and run.model.latent_dim == 2
    assert cli("report", old).returncode == 0 and (old / "manifold.png").is_file()
    resumed = cli("train", "--out", old, "--resume", "--epochs", "2", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    train = json.loads((old / "config.json").read_text())["train"]
    assert train["kind"] == "vae" and train["likelihood"] == "bernoulli" and "gan_lr" not in train


@pytest.mark.e2e
@pytest.mark.parametrize(
    "options",
    [
        {"arch": "mlp", "hidden": [32, 16], "activation": "elu", "likelihood": "gaussian", "learn_sigma": True},
        {"arch": "conv", "channels": [4, 8], "hidden": [16], "activation": "silu"},
        {"kind": "vamp", "pseudo_inputs": 7, "hidden": [24]},
        {"kind": "cvae", "hidden": [24], "latent_dim": 2},
        {"arch": "resnet", "width": 4, "blocks": 1, "hidden": [16], "likelihood": "logistic", "mixtures": 2},
    ],
    ids=["mlp-gaussian", "conv", "vamp", "cvae", "resnet-logistic"],
)
def test_a_saved_run_reloads_as_the_model_that_training_left_in_memory(digits_npz, tmp_path, options):
    """The save/load round trip against the trained model itself, not against a second load of the same file:
    catches weights saved before the last update, a parameter or buffer left out of model.safetensors (the
    learned sigma, the pseudo-inputs), and a config.json that rebuilds another network (activation, sizes)."""
    import vaelab
    from vaelab import data, kinds
    from vaelab.noise import fixed_generator
    from vaelab.rundir import RunDir
    from vaelab.training.loop import train

    config = kinds.make_config(
        {
            "data": str(digits_npz(200, 40)),
            "epochs": 2,
            "batch_size": 50,
            "latent_dim": 3,
            "seed": 1,
            "quiet": True,
            "out": str(tmp_path / "run"),
            **options,
        }
    )
    dataset = data.load(config.data)
    trained = train(config, kinds.get(config.kind), dataset, RunDir(config.out)).model
    loaded = vaelab.load(config.out)
    assert type(loaded) is type(trained) and not loaded.training
    assert trained.state_dict().keys() == loaded.state_dict().keys()
    assert all(torch.equal(t, loaded.state_dict()[k]) for k, t in trained.state_dict().items())
    x = data.to_float(dataset.test.images[:16])
    z = torch.randn(16, trained.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = trained.encode(x), loaded.encode(x)
        assert torch.equal(a.mean, b.mean) and torch.equal(a.logvar, b.logvar)
        assert torch.equal(trained.reconstruct(x), loaded.reconstruct(x))
        assert torch.equal(trained.decode(z), loaded.decode(z))
        assert torch.equal(trained.log_prior(z), loaded.log_prior(z))
        prior = trained.sample_prior(8, fixed_generator(3)), loaded.sample_prior(8, fixed_generator(3))
        assert torch.equal(*prior)
        if config.kind == "cvae":
            assert torch.equal(trained.sample(4, z=z[:4], labels=7), loaded.sample(4, z=z[:4], labels=7))
    if options.get("learn_sigma"):
        learned = loaded.log_sigma.item()
        assert learned == trained.log_sigma.item() and learned != pytest.approx(math.log(math.sqrt(0.5)))
    # and the model is not what a fresh build of the same config gives (training changed it)
    fresh = kinds.get(config.kind).build(loaded.config)
    assert not torch.equal(fresh.decode(z), loaded.decode(z))


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


@pytest.mark.e2e
@FUZZ_RUNS
@given(CONFIG_PATHS, json_values)
@example(["model", "shape"], [1, -28, 28])
@example(["model", "hidden"], [65536, 65536, 65536])
@example(["model", "likelihood"], "poisson")
@example(["train", "seed"], "seven")
@example([], [1, 2])
def test_any_edit_of_config_json_opens_or_gives_a_one_line_error(tiny_run, tmp_path_factory, path, value):
    """Found by fuzzing: a property test (Hypothesis)."""
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
