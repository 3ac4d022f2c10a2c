"""The Python API (vaelab.api: `vaelab.train`, `vaelab.compare`, `vaelab.open_run`): the same options as the command
line, checked the same way, and the same run directory for the same options and seed; a run's metrics, evaluation,
figures (PIL images) and export from Python; progress bars shown in a notebook."""

import json
import sys
import types

import pytest
from PIL import Image

import vaelab
from tests.helpers.runs import TINY, assert_same_tensors, ok, train
from vaelab.errors import ConfigError

OPTIONS = {"hidden": 32, "latent_dim": 2, "batch_size": 64, "threads": 1, "quiet": True, "epochs": 2, "seed": 3}


def without(values: dict, *keys) -> dict:
    return {k: v for k, v in values.items() if k not in keys}


def comparable_metrics(out) -> list[dict]:
    """metrics.jsonl without the timing fields and the run's own folder (the only things that may differ)."""
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    header = {**lines[0], "config": without(lines[0]["config"], "out")}
    return [header] + [without(line, "seconds", "images_per_s") for line in lines[1:]]


def test_the_api_and_the_cli_write_identical_run_directories(cli, digits_npz, tmp_path):
    data = digits_npz(256, 64)
    ok(train(cli, data, tmp_path / "cli", "vae", "--seed", "3", epochs=2))
    assert TINY == ["--hidden", "32", "--latent-dim", "2", "--batch-size", "64", "--threads", "1", "--quiet"]
    run = vaelab.train(data=data, kind="vae", out=tmp_path / "api", **OPTIONS)
    assert run.path == tmp_path / "api" and len(run.metrics) == 2
    assert_same_tensors(tmp_path / "cli", tmp_path / "api")  # weights, optimizer moments, generator states
    assert comparable_metrics(tmp_path / "cli") == comparable_metrics(tmp_path / "api")
    configs = [json.loads((tmp_path / name / "config.json").read_text()) for name in ("cli", "api")]
    assert [{**c, "train": without(c["train"], "out")} for c in configs][0] == {
        **configs[1],
        "train": without(configs[1]["train"], "out"),
    }
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == sorted(p.name for p in (tmp_path / "api").iterdir())


def test_options_are_checked_as_the_command_line_checks_them(digits_npz, tmp_path, cli):
    data = digits_npz(256, 64)
    with pytest.raises(ConfigError, match=r"unknown key 'latent_dims' \(did you mean latent_dim\?\)"):
        vaelab.train(data=data, latent_dims=2)
    with pytest.raises(ConfigError) as api_error:
        vaelab.train(data=data, latent_dim=0, out=tmp_path / "bad")
    cli_error = cli("train", "--data", data, "--latent-dim", "0", "--out", tmp_path / "bad")
    assert cli_error.returncode == 2 and cli_error.stderr.strip() == f"vaelab: error: {api_error.value}"
    with pytest.raises(ConfigError, match="has no meaning with --kind gan"):
        vaelab.train(data=data, kind="gan", beta=2.0)
    with pytest.raises(ConfigError, match="needs out=RUN_DIR"):
        vaelab.train(data=data, resume=True)
    assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def api_run(digits_npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    return vaelab.train(data=digits_npz(256, 64), out=out, **{**OPTIONS, "epochs": 1})


def test_a_run_from_python_evaluates_draws_its_figures_and_resumes(api_run, tmp_path):
    result = api_run.evaluate(iwae_k=5, quiet=True)
    assert result.get("iwae").nll == json.loads((api_run.path / "eval.json").read_text())["iwae"]["nll"]
    assert vaelab.open_run(api_run.path).eval_result.get("iwae").nll == result.get("iwae").nll
    samples = api_run.figure("samples")
    assert isinstance(samples, Image.Image) and samples.size == Image.open(api_run.path / "samples.png").size
    grid = api_run.figure("manifold", n=4, span=(-1.0, 1.0))  # drawn anew: the run's own file is left alone
    assert grid.size != samples.size or grid.tobytes() != Image.open(api_run.path / "manifold.png").tobytes()
    assert api_run.figure("kl_per_dim").size == Image.open(api_run.path / "kl_per_dim.png").size
    assert "classes" not in api_run.figure_names()
    with pytest.raises(ConfigError, match="has no such figure"):
        api_run.figure("classes")
    with pytest.raises(ConfigError, match="unknown figure 'nope'"):
        api_run.figure("nope")
    resumed = vaelab.train(out=api_run.path, resume=True, epochs=2, quiet=True)
    assert [e["epoch"] for e in resumed.metrics] == [1, 2]


def test_a_study_from_python(digits_npz, tmp_path):
    study = vaelab.compare(
        data=digits_npz(128, 32),
        archs=["mlp"],
        latent_dims=[2, 3],
        out=tmp_path / "study",
        evaluate=False,
        epochs=1,
        hidden=16,
        batch_size=64,
        quiet=True,
    )
    assert sorted(study.members) == ["mlp-z2", "mlp-z3"] and study.report.exists()
    assert study.members["mlp-z3"].model.latent_dim == 3
    assert isinstance(study.figure("curves"), Image.Image)
    with pytest.raises(ConfigError, match="latent_dim: compare varies it"):
        vaelab.compare(data=digits_npz(128, 32), latent_dim=2, out=tmp_path / "other")


def test_a_study_over_seeds_with_a_members_own_options_from_python(digits_npz, tmp_path):
    study = vaelab.compare(
        data=digits_npz(128, 32),
        kinds=["vae", "vae:beta=4"],
        archs=["mlp"],
        latent_dims=[2],
        seeds=[0, 1],
        out=tmp_path / "study",
        evaluate=False,
        epochs=1,
        hidden=16,
        quiet=True,
    )
    assert sorted(study.members) == ["vae-beta4-mlp-z2-s0", "vae-beta4-mlp-z2-s1", "vae-mlp-z2-s0", "vae-mlp-z2-s1"]
    assert study.members["vae-beta4-mlp-z2-s1"].config.options.beta == 4.0
    assert study.members["vae-mlp-z2-s1"].config.seed == 1 and (study.path / "summary.md").is_file()


def test_vaelab_compare_is_both_the_study_module_and_the_api_function():
    import vaelab.compare as module
    from vaelab.compare import run_study

    assert callable(vaelab.compare) and vaelab.compare is module and module.run_study is run_study


def test_progress_bars_are_shown_in_a_notebook(monkeypatch):
    from vaelab import progress

    assert progress.bar(3, "x").disable  # no terminal here
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert progress.bar(3, "x").disable  # ipykernel imported (some libraries do) is no kernel running this process
    kernel = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel))
    assert not progress.bar(3, "x").disable
    assert progress.bar(3, "x", quiet=True).disable
