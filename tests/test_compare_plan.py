"""vaelab.compare's plan and the checks `run_study` makes before the first member trains (`pipeline.check_runs`), and
`vaelab compare`'s lists: a study that cannot run fails at once, naming the member and its data, instead of after
other members trained, and an empty --kinds is refused rather than read as the default (issue 27, item 4)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from tests.helpers.runs import one_line_error
from vaelab import data, kinds, pipeline
from vaelab.compare import mean_spread, plan, run_study, seed_rows
from vaelab.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory) -> Path:
    """An .npz of digits without labels: a VAE trains on it, a conditional VAE cannot."""
    ds = data.load("mnist-mini")
    path = tmp_path_factory.mktemp("unlabelled") / "digits_without_labels.npz"
    np.savez(path, train_images=ds.train.images[:128].numpy(), test_images=ds.test.images[:32].numpy())
    return path


def test_plan_refuses_an_empty_list_of_kinds_and_defaults_only_when_none_is_given(tmp_path):
    with pytest.raises(ConfigError, match="--kinds, --archs, --latent-dims and --betas each need at least one value"):
        plan({}, ["mlp"], [2], [1.0], tmp_path, [])
    assert [m.config.kind for m in plan({}, ["mlp"], [2], [1.0], tmp_path, None)] == ["vae"]


@pytest.mark.parametrize("value", ["", ",", " , ", ", ,"])
@pytest.mark.parametrize("option", ["--kinds", "--archs", "--latent-dims", "--betas"])
def test_an_empty_list_option_is_a_one_line_error_and_nothing_is_made(cli, tmp_path, option, value):
    result = cli("compare", option, value, "--out", tmp_path / "study", "--epochs", "1", "--quiet")
    message = one_line_error(result)
    assert f"expected at least one comma-separated value, got {value!r}" in message, message
    assert not (tmp_path / "study").exists()


def test_a_list_option_ignores_the_spaces_around_its_values(tmp_path):
    from vaelab.cli import build_parser

    args = build_parser().parse_args(["compare", "--kinds", "vae, iwae", "--latent-dims", " 2 , 10", "--out", "x"])
    assert (args.kinds, args.latent_dims) == (["vae", "iwae"], [2, 10])


def test_the_cvae_refusal_of_data_without_labels_names_the_data_path(unlabelled):
    from vaelab.kinds.cvae import prepare

    dataset = data.load(unlabelled)
    with pytest.raises(DataError, match=rf"^{unlabelled}: has no labels, and a conditional VAE"):
        prepare(kinds.make_config({"kind": "cvae"}), dataset)


def test_check_runs_loads_each_data_set_once_and_names_the_run_and_its_data(unlabelled, monkeypatch):
    loads = []
    real = pipeline.load_dataset
    monkeypatch.setattr(pipeline, "load_dataset", lambda config: loads.append(config.data) or real(config))
    configs = {f"member {k}": kinds.make_config({"kind": k, "data": str(unlabelled)}) for k in ("vae", "iwae")}
    pipeline.check_runs(configs)
    assert loads == [str(unlabelled)]
    configs["member cvae"] = kinds.make_config({"kind": "cvae", "data": str(unlabelled)})
    with pytest.raises(DataError, match=rf"^member cvae: {unlabelled}: has no labels"):
        pipeline.check_runs(configs)
    assert configs["member cvae"].options.classes == 0  # checked on a copy: the member's config is left as given
    wrong = {"member conv": kinds.make_config({"data": str(unlabelled), "arch": "conv", "channels": [4] * 6})}
    with pytest.raises(ConfigError, match=rf"^member conv on {unlabelled}: arch conv: an image side of 28 is too"):
        pipeline.check_runs(wrong)


def test_a_member_that_needs_labels_is_refused_before_any_member_trains(cli, unlabelled, tmp_path):
    """vae,cvae on unlabelled digits: the VAE member would train first; the study is refused before it does, and
    the message names the member and the data file."""
    study = tmp_path / "study"
    message = one_line_error(cli("compare", "--kinds", "vae,cvae", "--data", unlabelled, "--out", study, "--quiet"))
    assert message.startswith(f"vaelab: error: compare: member cvae-mlp-z2: {unlabelled}: has no labels"), message
    assert not study.exists()


def test_a_member_too_large_for_memory_or_for_its_images_is_refused_before_any_trains(cli, unlabelled, tmp_path):
    study = tmp_path / "study"
    too_deep = ["--archs", "mlp,conv", "--channels", "4,4,4,4,4,4", "--data", unlabelled, "--out", study, "--quiet"]
    message = one_line_error(cli("compare", *too_deep))
    assert message.startswith(f"vaelab: error: compare: member conv-z2 on {unlabelled}: arch conv: an image side"), (
        message
    )
    assert not study.exists()
    huge = ["--kinds", "vae,iwae", "--k", "10000", "--batch-size", "1048576", "--data", unlabelled, "--out", study]
    message = one_line_error(cli("compare", *huge, "--quiet"))
    assert message.startswith(f"vaelab: error: compare: member iwae-mlp-z2 on {unlabelled}: --k 10000: a training step")
    assert "for a batch of 128" in message  # the data set's 128 training images, not the option's million
    assert not study.exists()


def test_run_study_checks_a_resumed_members_saved_run_first(unlabelled, tmp_path, monkeypatch):
    """A member that has a training state is resumed from its config.json: a damaged one is refused before the
    other members train."""
    monkeypatch.setattr("vaelab.compare.train_member", lambda *args: pytest.fail("a member trained"))
    study = tmp_path / "study"
    member = study / "mlp-z10"
    member.mkdir(parents=True)
    save_file({"x": torch.zeros(1)}, member / "training_state.safetensors", metadata={"info": '{"epoch": 0}'})
    (member / "config.json").write_text('{"model": {}, "train": {"lr": -1}}')
    base = {"data": str(unlabelled), "epochs": 1, "quiet": True}
    with pytest.raises(ConfigError, match=r"mlp-z10/config.json: the saved train section is invalid \(lr: "):
        run_study(base, ["mlp"], [2, 10], [1.0], study, evaluate=False, log=lambda message: None)
    assert sorted(p.name for p in study.iterdir()) == ["mlp-z10"]  # no study.json, no other member


def test_a_kind_may_carry_its_own_options_and_every_member_is_planned_once_per_seed(tmp_path):
    """`vae:beta=4` is the β-VAE beside `vae`; a kind without --beta ignores the betas, the β-TCVAE keeps its own
    beta when --betas is not given; with several seeds each member is planned once per seed, grouped without it."""
    members = plan({}, ["mlp"], [10], None, tmp_path, ["vae", "vae:beta=4", "betatc", "factor"], [0, 1, 2])
    names = [m.name for m in members]
    assert names == [f"{g}-mlp-z10-s{s}" for g in ("vae", "vae-beta4", "betatc", "factor") for s in (0, 1, 2)]
    assert [m.group for m in members[::3]] == ["vae-mlp-z10", "vae-beta4-mlp-z10", "betatc-mlp-z10", "factor-mlp-z10"]
    assert [m.config.seed for m in members[:3]] == [0, 1, 2]
    assert [m.config.options.beta for m in members[:9:3]] == [1.0, 4.0, 6.0]
    assert all(m.path == tmp_path / m.name for m in members)
    one_seed = plan({"seed": 7}, ["mlp"], [10], [0.5, 2], tmp_path, ["vae", "vae:beta=4"])
    assert [(m.name, m.config.options.beta, m.config.seed) for m in one_seed] == [
        ("vae-mlp-z10-beta0.5", 0.5, 7),
        ("vae-mlp-z10-beta2", 2.0, 7),
        ("vae-beta4-mlp-z10", 4.0, 7),
    ]


@pytest.mark.parametrize(
    "spec,message",
    [
        ("vae:beta", "a member's own option is written kind:option=value"),
        ("vae:=4", "a member's own option is written kind:option=value"),
        ("nokind", "kind: unknown kind 'nokind'"),
        ("factor:beta=4", "compare: member factor-beta4-mlp-z10: beta: has no meaning with --kind factor"),
        ("factor:gamma=nan", "compare: member factor-gamma"),
    ],
)
def test_a_bad_kind_spec_is_refused_before_anything_trains(tmp_path, spec, message):
    with pytest.raises(ConfigError, match=message):
        plan({}, ["mlp"], [10], None, tmp_path, ["vae", spec])


def test_seed_rows_give_each_group_its_mean_and_standard_deviation():
    header = ["member", "test -ELBO", "active units", "MIG"]
    rows = [["a-s0", 100.0, "3/10", 0.1], ["a-s1", 110.0, "3/10", 0.3], ["b", 90.0, "2/10", "n/a"]]
    _, out = seed_rows(header, rows, ["a", "a", "b"])
    assert out == [["a (2 seeds)", "105 ± 7.1", "3/10", "0.2 ± 0.14"], ["b", 90.0, "2/10", "n/a"]]
    assert mean_spread([1.0, 2.0, 3.0]) == (2.0, 1.0) and mean_spread([4.0]) == (4.0, 0.0)


@pytest.mark.e2e
def test_a_study_over_seeds_writes_the_table_over_seeds(cli, digits_npz, tmp_path):
    """Two seeds of two members: four runs, the report's table over seeds and summary.md with mean ± deviation."""
    out = tmp_path / "study"
    result = cli(
        "compare", "--data", digits_npz(128, 32), "--kinds", "vae,vae:beta=4", "--archs", "mlp", "--latent-dims", "2",
        "--seeds", "0,1", "--epochs", "1", "--hidden", "16", "--no-eval", "--quiet", "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "vae-beta4-mlp-z2-s0", "vae-beta4-mlp-z2-s1", "vae-mlp-z2-s0", "vae-mlp-z2-s1",
    ]  # fmt: skip
    summary = (out / "summary.md").read_text()
    assert "| vae-mlp-z2 (2 seeds) |" in summary and "| vae-beta4-mlp-z2 (2 seeds) |" in summary and " ± " in summary
    assert "Over seeds: mean ± standard deviation" in (out / "report.html").read_text()
    assert json.loads((out / "study.json").read_text())["seeds"] == [0, 1]
    message = one_line_error(cli("compare", "--kinds", "vae:beta", "--out", tmp_path / "bad", "--quiet"))
    assert "kind:option=value" in message and not (tmp_path / "bad").exists()


def test_the_study_says_where_its_time_went(tmp_path):
    """`vaelab compare` ends with its total time and the shares of training, evaluation and the rest, read from
    what each member's run directory records (issue 26: the study prints its total time and each phase's share)."""
    from vaelab.compare import Member, time_shares

    members = []
    for name, epoch_seconds, eval_seconds in (("a", [3.0, 5.0], 4.0), ("b", [2.0], None)):
        run = tmp_path / name
        run.mkdir()
        lines = [{"config": {}}] + [
            {"epoch": i + 1, "train": {"loss": 1.0}, "test": {"loss": 1.0}, "seconds": s}
            for i, s in enumerate(epoch_seconds)
        ]
        (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        if eval_seconds is not None:
            (run / "eval.json").write_text(json.dumps({"samples": {}, "seconds": eval_seconds}))
        members.append(Member(name, kinds.make_config({"out": str(run), "quiet": True})))
    line = time_shares(members, 20.0)
    assert line == (
        "study: 20 s in all; training 10 s (50%), evaluation 4 s (20%), figures, reports and the rest 6 s (30%)"
    )
    assert time_shares(members, 9.0, jobs=2) == (
        "study: 9 s in all, members 2 at a time; summed over the members: training 10 s, evaluation 4 s"
    )
