"""The README's training claims that users rely on, each tested so that it fails when the claim breaks:
divergence diagnosis for every kind, bf16 against fp32, options every kind either honours or refuses,
resume refusals, device resolution, the KL weight and its warm-up, and the VAE-GAN's gating and options.

Every kind-wide test iterates the registry (`vaelab.kinds`), so a new kind is held to the same claims."""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import vaelab
from vaelab import kinds
from vaelab.checkpoint import read_safetensors
from vaelab.config import TrainConfig, option_fields, type_name
from vaelab.device import World, resolve_device
from vaelab.run import RESUMABLE, Run

# tiny networks, so that a run of a few epochs of 256 digits takes about a second
TINY = ["--hidden", "32", "--latent-dim", "2", "--batch-size", "64", "--threads", "1", "--quiet"]
KIND_EXTRA = {"vamp": ["--pseudo-inputs", "5"]}  # 500 pseudo-inputs would dominate a run this small
TIMING = ("seconds", "images_per_s")


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(256, 64)


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    """Skip what follows training (figures, report: about 0.9 s of a 1 s run here; tested in their own files), so
    that the 80-odd runs below take seconds. Training, checkpoints, metrics and the epoch sample grids still run."""
    monkeypatch.setattr("vaelab.pipeline.finish_run", lambda *args, **kwargs: None)


def train(cli, data, out, kind="vae", *extra, epochs=1):
    return cli(
        "train",
        "--kind",
        kind,
        "--data",
        data,
        "--out",
        out,
        "--epochs",
        epochs,
        *TINY,
        *KIND_EXTRA.get(kind, []),
        *extra,
    )


def resume(cli, out, epochs, *extra):
    return cli("train", "--out", out, "--resume", "--epochs", epochs, "--quiet", "--threads", "1", *extra)


def ok(result):
    assert result.returncode == 0, result.stderr
    return result


def one_line_error(result, code=2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    message = result.stderr.strip()
    assert "Traceback" not in message and message.count("\n") == 0, message
    return message


def epochs_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()[1:]]


def without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in TIMING} for record in records]


def tensors(out: Path) -> dict[str, torch.Tensor]:
    """Every tensor a run directory holds: weights of each network, optimizer moments and generator states."""
    found = {}
    for path in sorted(out.glob("*.safetensors")):
        found.update({f"{path.name}:{k}": v for k, v in load_file(path).items()})
    return found


def assert_same_tensors(a: Path, b: Path) -> None:
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys()
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not different, different


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def initial_trainer(out: Path):
    """The trainer a run started from, rebuilt as the loop builds it (seeded before construction)."""
    run = Run.open(out)
    config = run.config
    torch.manual_seed(config.seed)
    return run.kind.trainer(config, tuple(run.meta["data"]["shape"]), torch.device("cpu"), World())


# --- 1. divergence: every kind -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", kinds.names())
def test_every_kind_diagnoses_divergence_keeps_its_checkpoint_and_resumes_from_it(cli, digits, tmp_path, kind):
    """An absurd learning rate gives exit 3 and one line naming the term that diverged and the option to lower,
    the last good checkpoint is left byte for byte, and the run resumed at a sane lr ends exactly like a run that
    never diverged. Catches: the adversarial kinds' divergence check never firing (a GAN at --gan-lr 1e35 exited 0
    with NaN weights), a failed resume that moves the checkpoint, the generators' states or metrics.jsonl."""
    lr_flag = "--" + kinds.get(kind).lr_option.replace("_", "-")
    whole, split = tmp_path / "whole", tmp_path / "split"
    ok(train(cli, digits, whole, kind, epochs=2))
    ok(train(cli, digits, split, kind))
    terms = set(epochs_of(split)[0]["train"])
    good_lr = json.loads((split / "config.json").read_text())["train"][kinds.get(kind).lr_option]
    before = snapshot(split)
    for absurd in ("1e30", "1e35"):
        message = one_line_error(resume(cli, split, 2, lr_flag, absurd), code=3)
        named = message.split("training diverged: the ", 1)[1].split(" term")[0]
        assert named in terms, message  # the term that went non-finite, by its logged name
        assert f"a lower {lr_flag}" in message and "epoch 2" in message and "step" in message, message
        assert "checkpoint of epoch 1" in message and "intact" in message, message
        assert snapshot(split) == before  # nothing written: weights, state, config.json, metrics.jsonl, sample grids
    for name, value in tensors(split).items():
        assert torch.isfinite(value.float()).all(), name
    assert vaelab.load(split).sample(2).isfinite().all()
    ok(resume(cli, split, 2, lr_flag, good_lr))  # the README's "continue a run after a divergence"
    assert_same_tensors(whole, split)
    assert without_timing(epochs_of(whole)) == without_timing(epochs_of(split))


@pytest.mark.parametrize("kind", kinds.names())
def test_every_kind_diverging_before_its_first_checkpoint_says_so_and_can_start_again(cli, digits, tmp_path, kind):
    """Divergence in the first epoch: exit 3, 'no checkpoint was written yet', no weights left behind that would
    pass for a trained model, and the same --out trains at a sane lr without being refused as an existing run."""
    lr_flag = "--" + kinds.get(kind).lr_option.replace("_", "-")
    out = tmp_path / "run"
    message = one_line_error(train(cli, digits, out, kind, lr_flag, "1e35"), code=3)
    assert "no checkpoint was written yet" in message and f"a lower {lr_flag}" in message, message
    assert not (out / "model.safetensors").exists() and not (out / "training_state.safetensors").exists()
    ok(train(cli, digits, out, kind))
    assert len(epochs_of(out)) == 1


# --- 2. bf16, --compile: honoured or refused, never ignored --------------------------------------------------------
def test_bf16_training_stays_within_half_a_nat_of_fp32_and_evaluates(cli, digits_npz, tmp_path):
    """The MLP VAE, three epochs on 600 digits, fp32 against bf16 from the same seed.

    Tolerance 0.5 nats on a test loss of about 220-300: bf16 keeps 8 bits of mantissa (a relative error of about
    0.4% per product) but the loss terms and sums stay in fp32 and Adam's updates in fp32 weights; on this setup the
    two runs differ by at most 0.06 nats (seeds 0-2), and the README promises 0.2 on a longer benchmark. A loss
    summed in bf16 (784 pixels) would be off by nats, and an ignored --precision leaves the weights identical: the
    test checks both."""
    from vaelab import data
    from vaelab.evaluate.iwae import iwae_log_likelihood

    small = digits_npz(600, 200)
    fp32, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    common = ["--data", small, "--epochs", "3", "--batch-size", "64", "--threads", "1", "--quiet"]
    ok(cli("train", "--out", fp32, *common))
    ok(cli("train", "--out", bf16, "--precision", "bf16", *common))
    assert json.loads((bf16 / "config.json").read_text())["train"]["precision"] == "bf16"
    a, b = load_file(fp32 / "model.safetensors"), load_file(bf16 / "model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)  # autocast did run: bf16 is not silently fp32
    for x, y in zip(epochs_of(fp32), epochs_of(bf16), strict=True):
        for split in ("train", "test"):
            assert abs(x[split]["loss"] - y[split]["loss"]) < 0.5, (split, x[split], y[split])
    # the bf16 run evaluates, and a bf16 decoder in the IWAE estimate agrees with fp32 on it
    model, images = vaelab.load(bf16), data.load(small).test.images[:64]
    nll32 = -iwae_log_likelihood(model, images, 16, seed=0).mean()
    nll16 = -iwae_log_likelihood(model, images, 16, seed=0, precision="bf16").mean()
    assert math.isfinite(nll16) and abs(float(nll32 - nll16)) < 0.5


@pytest.mark.parametrize("kind", kinds.names())
def test_every_kind_honours_or_refuses_bf16_and_compile(cli, digits, tmp_path, monkeypatch, kind):
    """`--precision bf16` and `--compile` either change how the kind trains or are refused in one line, never
    accepted and ignored. Catches: the GAN and VAE-GAN trainers (no autocast, no torch.compile) and the IWAE
    trainer (its forward pass bypasses the compiled module) taking these options and training plain fp32."""
    ok(train(cli, digits, tmp_path / "fp32", kind))
    result = train(cli, digits, tmp_path / "bf16", kind, "--precision", "bf16")
    if result.returncode:
        assert one_line_error(result).startswith(f"vaelab: error: precision: not available for --kind {kind}")
        assert not (tmp_path / "bf16").exists()
    else:
        assert tensors(tmp_path / "fp32").keys() == tensors(tmp_path / "bf16").keys()
        a, b = load_file(tmp_path / "fp32" / "model.safetensors"), load_file(tmp_path / "bf16" / "model.safetensors")
        assert any(not torch.equal(a[k], b[k]) for k in a), "--precision bf16 was accepted and ignored"
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, *args, **kwargs: compiled.append(module) or module)
    result = train(cli, digits, tmp_path / "compiled", kind, "--compile")
    if result.returncode:
        assert one_line_error(result).startswith(f"vaelab: error: compile: not available for --kind {kind}")
        assert not (tmp_path / "compiled").exists()
    else:
        assert compiled, "--compile was accepted and ignored"


# --- 4. what cannot change on --resume -----------------------------------------------------------------------------
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


# --- 5. --device --------------------------------------------------------------------------------------------------
def test_device_resolution_and_unavailable_or_invalid_devices(cli, digits, tmp_path):
    """auto and cpu resolve to the CPU on a machine without CUDA or MPS; asking for an absent GPU, or a device that
    does not exist, is one line and exit 2 before anything is written (also on --resume, which may change it)."""
    has_mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    assert resolve_device("auto").type == expected
    out = tmp_path / "run"
    ok(train(cli, digits, out, "vae", "--device", "auto"))
    before = snapshot(out)
    absent = [name for name, there in (("cuda", torch.cuda.is_available()), ("mps", has_mps)) if not there]
    for name in absent:
        message = one_line_error(train(cli, digits, tmp_path / "never", "vae", "--device", name))
        assert f"device: {name} was asked for" in message and "--device cpu" in message, message
        if name == "cuda":
            assert "no CUDA GPU" in message
        assert not (tmp_path / "never").exists()
        assert f"device: {name} was asked for" in one_line_error(resume(cli, out, 2, "--device", name))
        assert snapshot(out) == before
    assert "invalid choice: 'tpu'" in one_line_error(train(cli, digits, tmp_path / "never", "vae", "--device", "tpu"))
    toml = tmp_path / "run.toml"
    toml.write_text('device = "cuda:7x"\n')
    assert "device: must be one of auto, cpu, cuda, mps" in one_line_error(
        cli("train", "--config", toml, "--out", tmp_path / "never")
    )
    assert not (tmp_path / "never").exists()


# --- 6. beta and the KL warm-up -----------------------------------------------------------------------------------
def _kl_weighted_kinds() -> list[str]:
    return [name for name in kinds.names() if "beta" in option_fields(kinds.get(name).options)]


def test_the_kl_warm_up_is_logged_and_is_the_weight_the_loss_uses(cli, digits, tmp_path):
    """--beta 2 --warmup-epochs 4 over 3 epochs: the logged weight is beta * epoch / 4 at each epoch's end, the test
    loss is exactly recon + that weight * KL, and the training loss (whose weight ramps step by step through the
    epoch) lies between recon + weight-at-start * KL and recon + weight-at-end * KL. Catches a warm-up or beta
    dropped from the loss (the past bug) or a logged weight that is not the one trained with."""
    out = tmp_path / "run"
    ok(train(cli, digits, out, "vae", "--beta", "2", "--warmup-epochs", "4", epochs=3))
    records = epochs_of(out)
    assert [r["beta"] for r in records] == pytest.approx([0.5, 1.0, 1.5])
    for e, r in enumerate(records, start=1):
        test, tr = r["test"], r["train"]
        assert test["loss"] == pytest.approx(test["recon"] + r["beta"] * test["kl"], rel=1e-6)
        low, high = 2 * (e - 1) / 4, 2 * e / 4
        assert tr["recon"] + low * tr["kl"] - 1e-3 <= tr["loss"] <= tr["recon"] + high * tr["kl"] + 1e-3, (e, tr)
        assert tr["loss"] < tr["recon"] + high * tr["kl"] - 1e-3  # strictly below: the weight did ramp


@pytest.mark.parametrize("kind", _kl_weighted_kinds())
def test_every_kind_with_a_kl_weight_trains_with_it(cli, digits, tmp_path, kind):
    """For every kind with --beta: the logged KL weight is --beta (and follows --warmup-epochs), the logged loss (where
    the kind logs one) is recon + beta * KL on the training and the test split, and the weight changes what is
    learned: --beta 0 leaves a larger KL than the default, --beta 8 a smaller one, and a warm-up different weights.
    Catches --beta or the warm-up being dropped from a kind's loss, or from its test loss only."""
    kl = {}
    for beta in ("0", "1", "8"):
        out = tmp_path / f"beta{beta}"
        ok(train(cli, digits, out, kind, "--beta", beta, epochs=2))
        records = epochs_of(out)
        kl[beta] = records[-1]["train"]["kl"]
        for r in records:
            assert r["beta"] == float(beta)
            for split in ("train", "test"):
                if "loss" in r[split]:
                    terms = r[split]
                    expected = terms["recon"] + float(beta) * terms["kl"]
                    assert terms["loss"] == pytest.approx(expected, rel=1e-5, abs=1e-3), (split, beta, terms)
    assert kl["0"] > kl["1"] > kl["8"], kl
    ok(train(cli, digits, tmp_path / "warm", kind, "--warmup-epochs", "2", epochs=2))
    assert [r["beta"] for r in epochs_of(tmp_path / "warm")] == [0.5, 1.0]
    a, b = load_file(tmp_path / "warm" / "model.safetensors"), load_file(tmp_path / "beta1" / "model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a), "--warmup-epochs changed nothing"


# --- 7. the VAE-GAN's gating and options ----------------------------------------------------------------------------
def _parts(out: Path) -> dict[str, dict[str, torch.Tensor]]:
    model = load_file(out / "model.safetensors")
    return {
        "discriminator": load_file(out / "discriminator.safetensors"),
        "encoder": {k: v for k, v in model.items() if k.startswith("encoder.")},
        "decoder": {k: v for k, v in model.items() if k.startswith("decoder.")},
    }


def _unchanged(out: Path) -> dict[str, bool]:
    """Which networks of a VAE-GAN run still hold their initial weights."""
    trainer = initial_trainer(out)
    start = {**trainer.model.state_dict(), **{f"d.{k}": v for k, v in trainer.disc.state_dict().items()}}
    prefix = {"discriminator": "d.", "encoder": "", "decoder": ""}
    return {name: all(torch.equal(w[k], start[prefix[name] + k]) for k in w) for name, w in _parts(out).items()}


def test_vaegan_equilibrium_gating_skips_exactly_the_updates_it_logs(cli, digits, tmp_path):
    """The gate on D's mean BCE decides each step: an equilibrium D's BCE never reaches (9.9, margin 0) leaves the
    discriminator at its initial weights and logs d_updated = 0; one it always exceeds (0.05, margin 0) keeps D
    learning but drops the decoder's adversarial term (with --gamma 0 --pixel-weight 0 that is the decoder's
    whole loss, so the decoder stays at its initial weights) and logs dec_adv_updated = 0; the converse settings
    update what the first ones froze. Catches a discriminator updated every step whatever the gate says (the past
    bug), and a gate that is logged but not applied."""
    pure = ["--gamma", "0", "--pixel-weight", "0", "--hidden", "32,16"]  # the decoder's loss: its GAN term alone
    runs = {
        "d_frozen": ["--equilibrium", "9.9", "--margin", "0"],
        "adv_dropped": ["--equilibrium", "0.05", "--margin", "0"],
        "open": ["--margin", "9"],
    }
    for name, gate in runs.items():
        ok(train(cli, digits, tmp_path / name, "vaegan", *pure, *gate))
    shares = {name: epochs_of(tmp_path / name)[0]["train"] for name in runs}
    assert shares["d_frozen"]["d_updated"] == 0 and shares["d_frozen"]["dec_adv_updated"] == 1
    assert shares["adv_dropped"]["d_updated"] == 1 and shares["adv_dropped"]["dec_adv_updated"] == 0
    assert shares["open"]["d_updated"] == 1 and shares["open"]["dec_adv_updated"] == 1
    assert _unchanged(tmp_path / "d_frozen") == {"discriminator": True, "encoder": False, "decoder": False}
    assert _unchanged(tmp_path / "adv_dropped") == {"discriminator": False, "encoder": False, "decoder": True}
    assert _unchanged(tmp_path / "open") == {"discriminator": False, "encoder": False, "decoder": False}


def test_vaegan_pixel_weight_gamma_and_disc_layer_change_training_and_bad_values_are_refused(cli, digits, tmp_path):
    """Each of --pixel-weight, --gamma and --disc-layer changes the weights a VAE-GAN ends with (--disc-layer also the
    logged feature_recon, measured in another layer), and each refuses a bad value in one line before anything is
    written. Catches an option parsed, saved in config.json and never passed to the loss or the discriminator."""
    net = ["--hidden", "32,16"]  # two hidden layers, so that --disc-layer has a choice (overrides TINY's 32)
    ok(train(cli, digits, tmp_path / "default", "vaegan", *net))
    base = tensors(tmp_path / "default")
    for flag, value in (("--pixel-weight", "0.5"), ("--gamma", "1"), ("--disc-layer", "0")):
        out = tmp_path / flag.strip("-")
        ok(train(cli, digits, out, "vaegan", *net, flag, value))
        assert json.loads((out / "config.json").read_text())["train"][flag[2:].replace("-", "_")] == float(value)
        changed = tensors(out)
        assert any(not torch.equal(base[k], changed[k]) for k in base if "model.safetensors" in k), flag
    default, layer0 = epochs_of(tmp_path / "default")[0], epochs_of(tmp_path / "disc-layer")[0]
    assert layer0["train"]["feature_recon"] != pytest.approx(default["train"]["feature_recon"], rel=0.05)
    for args, message in [
        (["--pixel-weight", "-0.1"], "pixel_weight: must be >= 0"),
        (["--gamma", "-1"], "gamma: must be >= 0"),
        (["--disc-layer", "2"], "disc_layer: the discriminator has 2 hidden layers, got 2"),
        (["--disc-layer", "-3"], "disc_layer: the discriminator has 2 hidden layers, got -3"),
        (["--disc-layer", "last"], "disc_layer: expected an integer"),
        (["--equilibrium", "0"], "equilibrium: must be a positive number"),
        (["--margin", "-1"], "margin: must be >= 0"),
    ]:
        assert message in one_line_error(train(cli, digits, tmp_path / "never", "vaegan", *net, *args)), args
        assert not (tmp_path / "never").exists(), args
