"""`vaelab train` end to end: its outputs and the model reloaded, resume, divergence, the TOML file below the flags,
absurd values and paths, an existing run never overwritten."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

import vaelab
from tests.helpers.runs import one_line_error

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def small_npz(digits_npz):
    """600 train / 200 test real digits from mnist-mini: small enough for quick runs."""
    return digits_npz(600, 200)


def train_args(data_path, out, *extra):
    return ["train", "--data", data_path, "--out", out, "--quiet", "--threads", "1", "--batch-size", "64", *extra]


def test_train_end_to_end_and_reload(cli_process, small_npz, tmp_path):
    out = tmp_path / "run"
    result = cli_process(*train_args(small_npz, out, "--epochs", "3", "--latent-dim", "2"))
    assert result.returncode == 0, result.stderr
    for name in (
        "config.json",
        "model.safetensors",
        "training_state.safetensors",
        "metrics.jsonl",
        "reconstructions.png",
        "samples.png",
        "curves.png",
        "samples/epoch_003.png",
    ):
        assert (out / name).is_file(), name
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "config" in lines[0] and "torch" in lines[0]["versions"]
    epochs = lines[1:]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    for e in epochs:
        assert set(e["train"]) == set(e["test"]) == {"loss", "recon", "kl"}
        assert e["images_per_s"] > 0
        assert e["test"]["loss"] == pytest.approx(e["test"]["recon"] + e["test"]["kl"])
    assert epochs[-1]["test"]["loss"] < epochs[0]["test"]["loss"]  # it learns
    model = vaelab.load(out)
    assert not model.training and model.latent_dim == 2
    x = torch.rand(3, 1, 28, 28)
    assert model.reconstruct(x).shape == x.shape and model.sample(4).shape == (4, 1, 28, 28)


# The save/load round trip against the model training left in memory: tests/test_run.py
# (test_a_saved_run_reloads_as_the_model_that_training_left_in_memory).


# The state a resume could lose: conv layers; the learned sigma (a parameter outside the two networks); the KL
# weight ramping across the resume point (recomputed from the epoch, not saved); bf16 autocast.
RESUMED = {
    "mlp-binarized": ["--binarize", "--seed", "7"],
    "conv": ["--arch", "conv", "--channels", "4,8", "--hidden", "16"],
    "gaussian-learned-sigma": ["--likelihood", "gaussian", "--learn-sigma"],
    "kl-warm-up-across-the-resume": ["--beta", "2", "--warmup-epochs", "2.5"],
    "bf16": ["--precision", "bf16"],
    "random-flips": ["--flip"],  # drawn from the run's noise generator, which the state saves
}


@pytest.mark.parametrize("extra", RESUMED.values(), ids=RESUMED)
def test_resumed_run_ends_with_the_same_weights(cli, small_npz, tmp_path, monkeypatch, extra):
    """3 epochs in one go against 1, then --resume to 3: every tensor of the run (weights, Adam's moments, the
    generators' states) and every metric but the timings are identical."""
    monkeypatch.setattr("vaelab.pipeline.finish_run", lambda *args, **kwargs: None)  # figures: not what is tested
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert cli(*train_args(small_npz, whole, "--epochs", "3", *extra)).returncode == 0
    assert cli(*train_args(small_npz, split, "--epochs", "1", *extra)).returncode == 0
    first = load_file(split / "model.safetensors") if "--flip" in extra else None
    resumed = cli("train", "--out", split, "--resume", "--epochs", "3", "--quiet", "--threads", "1")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("model.safetensors", "training_state.safetensors"):
        a, b = load_file(whole / name), load_file(split / name)
        assert a.keys() == b.keys() and [k for k in a if not torch.equal(a[k], b[k])] == [], name
    timing = ("seconds", "images_per_s")
    lines = [
        [
            {k: v for k, v in json.loads(line).items() if k not in timing}
            for line in (run / "metrics.jsonl").read_text().splitlines()[1:]
        ]
        for run in (whole, split)
    ]
    assert [e["epoch"] for e in lines[1]] == [1, 2, 3] and lines[0] == lines[1]
    assert json.loads((split / "config.json").read_text())["train"] == {
        **json.loads((whole / "config.json").read_text())["train"],
        "out": str(split),
    }
    if "--learn-sigma" in extra:  # the case is only a case if sigma did move
        assert load_file(split / "model.safetensors")["log_sigma"] != pytest.approx(math.log(math.sqrt(0.5)))
    if "--warmup-epochs" in extra:
        assert [e["beta"] for e in lines[1]] == pytest.approx([0.8, 1.6, 2.0])
    if "--flip" in extra:  # recorded, and it did change the training (same seed, no flips: other weights)
        assert json.loads((split / "config.json").read_text())["train"]["flip"] is True
        plain = tmp_path / "plain"
        assert cli(*train_args(small_npz, plain, "--epochs", "1")).returncode == 0
        other = load_file(plain / "model.safetensors")
        assert any(not torch.equal(other[k], first[k]) for k in first)


def test_divergence_gives_a_diagnosis_and_keeps_the_checkpoint(cli, small_npz, tmp_path):
    out = tmp_path / "run"
    assert cli(*train_args(small_npz, out, "--epochs", "1")).returncode == 0
    before = {
        name: (out / name).read_bytes() for name in ("model.safetensors", "training_state.safetensors", "metrics.jsonl")
    }
    result = cli("train", "--out", out, "--resume", "--epochs", "2", "--lr", "1e9", "--quiet")
    assert result.returncode == 3
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert "non-finite" in message and "step" in message and "--lr" in message and "epoch 1" in message
    assert {name: (out / name).read_bytes() for name in before} == before
    vaelab.load(out)  # still loads


def test_bad_config_keys_and_values(cli, tmp_path):
    bad_key = tmp_path / "bad_key.toml"
    bad_key.write_text("latnt_dim = 2\n")
    bad_value = tmp_path / "bad_value.toml"
    bad_value.write_text('[train]\nbatch-size = "many"\n')
    broken = tmp_path / "broken.toml"
    broken.write_text("epochs = = 3\n")
    cases = [
        (["--config", bad_key], "unknown key 'latnt_dim'"),
        (["--config", bad_value], "batch_size: expected an integer"),
        (["--config", broken], "not valid TOML"),
        (["--config", tmp_path / "missing.toml"], "no such config file"),
        (["--lr", "-1"], "lr: must be a positive number"),
        (["--hidden", "4x0"], "hidden: expected comma-separated integers"),
        (["--recon", "gaussian", "--binarize"], "binarize: only makes sense"),
        (["--epochs", "0"], "epochs: must be >= 1"),
        (["--arch", "rnn"], "invalid choice"),
        (["--resume"], "no training state to resume from"),
    ]
    for args, message in cases:
        result = cli("train", "--out", tmp_path / "never", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stderr.strip().count("\n") == 0, (args, result.stderr)
    assert not (tmp_path / "never").exists()
    no_out = cli("train", "--resume")
    assert no_out.returncode == 2 and "--resume needs --out" in no_out.stderr


def test_toml_config_is_read_and_options_override_it(cli, small_npz, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(f'data = "{small_npz}"\nlatent-dim = 3\nepochs = 1\nhidden = [64, 32]\n')
    out = tmp_path / "run"
    result = cli("train", "--config", config, "--latent-dim", "4", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["latent_dim"] == 4 and saved["model"]["hidden"] == [64, 32]


def test_existing_run_is_not_overwritten(cli, small_npz, tmp_path):
    out = tmp_path / "run"
    assert cli(*train_args(small_npz, out, "--epochs", "1")).returncode == 0
    again = cli(*train_args(small_npz, out, "--epochs", "1"))
    assert again.returncode == 2 and "--resume" in again.stderr


def test_damaged_run_directories_give_one_line_errors(cli, small_npz, tmp_path):
    out = tmp_path / "run"
    assert cli(*train_args(small_npz, out, "--epochs", "1")).returncode == 0
    (out / "model.safetensors").write_bytes(b"not safetensors")
    result = cli("sample", out)
    assert result.returncode == 2 and "not a readable safetensors file" in result.stderr
    assert result.stderr.strip().count("\n") == 0
    (out / "config.json").write_text("{broken")
    result = cli("eval", out)
    assert result.returncode == 2 and "config.json: not valid JSON" in result.stderr
    (out / "training_state.safetensors").write_bytes(b"")
    result = cli("train", "--out", out, "--resume", "--epochs", "2", "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(256, 64)


def test_train_paths_and_absurd_values(cli, digits, tmp_path):
    """Found by hardening (bad input and faults)."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    base = ["train", "--data", digits, "--epochs", "1", "--quiet"]
    for args, message in [
        (["--out", a_file / "run"], "is a file, not a folder"),
        (["--out", tmp_path / "r", "--config", tmp_path], "is a folder; --config takes a TOML file"),
        (["--out", tmp_path / "r", "--hidden", "1000000000000"], "hidden: must be <= 65536"),
        (["--out", tmp_path / "r", "--latent-dim", "100000000000"], "latent_dim: must be <= 65536"),
        (["--out", tmp_path / "r", "--seed", "99999999999999999999999"], "seed: must be <="),
        (["--out", tmp_path / "r", "--hidden", "60000,60000,60000"], "more than this machine's"),
        (
            ["--out", tmp_path / "r", "--arch", "conv", "--channels", "8,8,8,8,8,8"],
            "too small for 6 stride-2 convolutions",
        ),
        (["--out", tmp_path / "r", "--lr", "nan"], "lr: must be a finite number"),
        (["--out", tmp_path / "r", "--batch-size", "0"], "batch_size: must be >= 1"),
        (["--out", tmp_path / "r", "--size", "0", "5"], "size: must be >= 1"),
    ]:
        one = one_line_error(cli(*base, *args))
        assert message in one, (args, one)
    assert not (tmp_path / "r").exists()


def test_colour_options_are_checked_before_any_work(cli, digits, tmp_path):
    """--likelihood logistic's --mixtures and --arch resnet's --width and --blocks: out-of-range values, and either
    given where it means nothing, are one-line errors (exit 2) before a run directory exists."""
    base = ["train", "--data", digits, "--epochs", "1", "--quiet", "--out", tmp_path / "r"]
    for args, message in [
        (["--likelihood", "logistic", "--mixtures", "0"], "mixtures: must be >= 1"),
        (["--likelihood", "logistic", "--mixtures", "33"], "mixtures: must be <= 32"),
        (["--mixtures", "3"], "mixtures: only for --likelihood logistic; leave it out with --likelihood bernoulli"),
        (["--likelihood", "gaussian", "--mixtures", "3"], "leave it out with --likelihood gaussian"),
        (["--arch", "conv", "--width", "8"], "width, blocks: only for --arch resnet"),
        (["--blocks", "2"], "width, blocks: only for --arch resnet; leave them out with --arch mlp"),
        (["--arch", "resnet", "--width", "0"], "width: must be >= 1"),
        (["--arch", "resnet", "--blocks", "-1"], "blocks: must be >= 0"),
        (["--arch", "resnet", "--blocks", "65"], "blocks: must be <= 64"),
    ]:
        one = one_line_error(cli(*base, *args))
        assert message in one, (args, one)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_resnet_with_the_logistic_likelihood_on_the_shipped_colour_set(cli, tmp_path):
    """The issue's colour path end to end: `train --data shapes --arch resnet --likelihood logistic` (small), then
    `eval`, whose -ELBO and IWAE NLL are in bits/dim of the 8-bit data with a note saying they are true bounds."""
    out = tmp_path / "colour"
    args = ["--data", "shapes:80x16", "--arch", "resnet", "--likelihood", "logistic", "--mixtures", "2"]
    small = ["--width", "4", "--hidden", "16", "--latent-dim", "4", "--batch-size", "32", "--threads", "1"]
    result = cli("train", *args, *small, "--epochs", "1", "--quiet", "--out", out)
    assert result.returncode == 0, result.stderr
    model = json.loads((out / "config.json").read_text())["model"]
    assert (model["arch"], model["likelihood"], model["mixtures"], model["width"], model["blocks"]) == (
        "resnet",
        "logistic",
        2,
        4,
        1,
    )
    result = cli("eval", out, "--iwae-k", "4", "--json", "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    elbo, iwae = report["elbo"], report["iwae"]
    dims = 3 * 16 * 16
    assert iwae["bits_per_dim"] == pytest.approx(iwae["nll"] / (dims * math.log(2)), rel=1e-6)
    # a normalized probability of 8-bit pixels: at most 8 bits per dimension for anything better than uniform,
    # and the importance-sampled bound is no looser than the ELBO's (up to the estimate's noise)
    assert 0 < iwae["bits_per_dim"] <= elbo["bits_per_dim"] + 0.05
    assert any("true bounds" in note for note in report["notes"])
