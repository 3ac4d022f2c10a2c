"""The registry of kinds: a toy kind registered here goes through every public path (the proof that adding a
kind is one module plus one registry line), unknown kinds are named, and what every kind must do: honour or refuse
bf16 and --compile, train with its KL weight, refuse the options it has no use for, go through every command."""

import json
import math
import shutil
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import vaelab
from tests.helpers.fixtures import OLD_RUN
from tests.helpers.runs import (
    epochs_of,
    ok,
    one_line_error,
    tensors,
    train,
)
from vaelab import data, figures, kinds
from vaelab.config import option, option_fields
from vaelab.errors import ConfigError
from vaelab.kinds.base import Kind, networks
from vaelab.models import VAE
from vaelab.run import Run
from vaelab.training.common import fused_adam, set_lr

pytestmark = pytest.mark.e2e


# --- a toy kind, written as a user adding one would: a deterministic autoencoder (no KL, no likelihood) -----
@dataclass
class ToyOptions:
    lr: float = option(1e-3, "Adam learning rate", above=0)
    code_noise: float = option(0.0, "toy: std of the Gaussian noise added to the code while training", min=0)


class ToyTrainer:
    sums = True
    shown = {"recon": "recon"}

    def __init__(self, config, shape, device, world):
        self.config, self.device = config, device
        self.model = VAE(networks(config, shape)).to(device)
        self.modules = {"ae": self.model}
        self.optimizers = {"adam": fused_adam(self.model, config.options.lr, (0.9, 0.999))}

    def train_mode(self):
        self.model.train()

    def forward(self, x, y, progress, noise):
        z = self.model.encode(x).mean
        z = z + self.config.options.code_noise * torch.randn(z.shape, generator=noise)
        recon = F.binary_cross_entropy_with_logits(self.model.decode(z), x, reduction="sum")
        return {"recon": recon}, recon / x.shape[0]

    def update(self, loss):
        self.optimizers["adam"].zero_grad()
        loss.backward()
        self.optimizers["adam"].step()
        return {}

    def test_terms(self, images, labels, epoch):
        self.model.eval()
        with torch.no_grad():
            total = sum(
                float(
                    F.binary_cross_entropy_with_logits(self.model.decode(self.model.encode(x).mean), x, reduction="sum")
                )
                for x, _ in data.batches(images, 500)
            )
        return {"recon": total / len(images)}

    def record(self, epoch):
        return {"lr": self.optimizers["adam"].param_groups[0]["lr"]}

    def set_lr(self, config):
        set_lr(self.optimizers, config.options.lr)

    def extra_weights(self):
        return {}


TOY = Kind(
    name="toy-ae",
    help="a toy deterministic autoencoder",
    title="toy autoencoder",
    options=ToyOptions,
    trainer=ToyTrainer,
    build=VAE,
    encoder=True,
    likelihood=False,
)


@pytest.fixture
def toy_kind():
    kinds.register(TOY)  # the one registry line
    yield TOY
    kinds.unregister(TOY.name)


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(512, 64)


def test_a_kind_registered_in_a_test_trains_saves_loads_evaluates_and_reports(cli, digits, tmp_path, toy_kind):
    out = tmp_path / "toy"
    common = ["--data", digits, "--out", out, "--quiet", "--batch-size", "64", "--latent-dim", "3"]
    result = cli("train", "--kind", "toy-ae", "--epochs", "1", "--code-noise", "0.1", *common)
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "config.json").read_text())
    assert saved["kind"] == "toy-ae" and saved["train"]["code_noise"] == 0.1 and "beta" not in saved["train"]
    resumed = cli("train", "--out", out, "--resume", "--epochs", "2", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()[1:]]
    assert [e["epoch"] for e in epochs] == [1, 2] and set(epochs[-1]["test"]) == {"recon"}
    assert epochs[-1]["test"]["recon"] < epochs[0]["test"]["recon"]  # it learns
    # every figure its abilities call for (an encoder: reconstructions, interpolation, latents)
    run = Run.open(out)
    for figure in figures.for_kind(toy_kind):  # those its data allows too (`when`: dSprites' factors for some)
        if figure.default and (figure.when is None or figure.when(run)):
            assert (out / f"{figure.name}.png").is_file(), figure.name
    model = vaelab.load(out)
    weights = load_file(out / "model.safetensors")
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    # evaluation: the sections of a kind with an encoder but no likelihood
    evaluated = cli("eval", out, "--iwae-k", "2", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert "elbo" not in result and "iwae" not in result and result["latents"]["latent_dim"] == 3
    assert result["kind"] == "toy-ae" and result["samples"]["available"]
    assert cli("report", out, "--no-figures").returncode == 0
    report = (out / "report.html").read_text()
    assert "toy autoencoder" in report and "active units" in report and "NLL, IWAE" not in report
    # its options are its own: another kind's option is refused, by name
    wrong = cli("train", "--kind", "toy-ae", "--beta", "2", *common)
    assert wrong.returncode == 2 and "beta: has no meaning with --kind toy-ae" in wrong.stderr


def test_a_registered_kind_joins_a_comparison_study(cli, digits, tmp_path, toy_kind):
    study = tmp_path / "study"
    result = cli(
        "compare",
        "--kinds",
        "vae,toy-ae",
        "--archs",
        "mlp",
        "--latent-dims",
        "2",
        "--data",
        digits,
        "--out",
        study,
        "--epochs",
        "1",
        "--quiet",
        "--no-eval",
        "--batch-size",
        "64",
    )
    assert result.returncode == 0, result.stderr
    report = (study / "report.html").read_text()
    assert "vae-mlp-z2" in report and "toy-ae-mlp-z2" in report and "n/a" in report  # no KL term to show


def test_unknown_kinds_are_named_errors(cli, digits, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    meta = json.loads((run / "config.json").read_text())
    meta["kind"] = meta["train"]["model"] = "poisson-vae"
    (run / "config.json").write_text(json.dumps(meta))
    toml = tmp_path / "kind.toml"
    toml.write_text('kind = "diffusion"\n')
    for args, message in [
        (["sample", run], "kind: unknown kind 'poisson-vae'; known kinds: vae, gan, vaegan"),
        (["report", run], "unknown kind 'poisson-vae'"),
        (["train", "--config", toml, "--out", tmp_path / "never"], "unknown kind 'diffusion'"),
        (["train", "--kind", "diffusion"], "invalid choice"),
        (["compare", "--kinds", "vae,nope", "--out", tmp_path / "study"], "unknown kind 'nope'"),
    ]:
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and result.stderr.strip().count("\n") == 0, (args, result.stderr)
    assert not (tmp_path / "never").exists() and not (tmp_path / "study").exists()


def test_old_option_names_are_still_accepted(cli, digits, tmp_path):
    out = tmp_path / "run"
    result = cli(
        "train",
        "--model",
        "vae",
        "--recon",
        "gaussian",
        "--data",
        digits,
        "--out",
        out,
        "--epochs",
        "1",
        "--quiet",
        "--batch-size",
        "128",
    )
    assert result.returncode == 0, result.stderr
    saved = json.loads((out / "config.json").read_text())
    assert saved["train"]["likelihood"] == "gaussian" and saved["model"]["likelihood"] == "gaussian"


@pytest.mark.parametrize("kind", ["vamp", "cvae"])
def test_options_a_kind_cannot_honour_are_refused_not_ignored(cli, tmp_path, kind):
    for flags in (["--precision", "bf16"], ["--compile"]):
        result = cli("train", "--kind", kind, *flags, "--out", tmp_path / "never", "--quiet")
        assert result.returncode == 2 and f"not available for --kind {kind}" in result.stderr, result.stderr
    assert not (tmp_path / "never").exists()


@pytest.mark.usefixtures("no_figures")
@pytest.mark.parametrize("kind", kinds.names())
def test_every_kind_honours_or_refuses_bf16_and_compile(cli, digits_npz, tmp_path, monkeypatch, kind):
    """`--precision bf16` and `--compile` either change how the kind trains or are refused in one line, never
    accepted and ignored. Catches: the GAN and VAE-GAN trainers (no autocast, no torch.compile) and the IWAE
    trainer (its forward pass bypasses the compiled module) taking these options and training plain fp32.
    Checks a README claim."""
    digits = digits_npz(256, 64)
    ok(train(cli, digits, tmp_path / "fp32", kind, "--precision", "fp32"))
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


def _kl_weighted_kinds() -> list[str]:
    return [name for name in kinds.names() if "beta" in option_fields(kinds.get(name).options)]


@pytest.mark.usefixtures("no_figures")
@pytest.mark.parametrize("kind", _kl_weighted_kinds())
def test_every_kind_with_a_kl_weight_trains_with_it(cli, digits_npz, tmp_path, kind):
    """For every kind with --beta: the logged KL weight is --beta (and follows --warmup-epochs), the logged loss (where
    the kind logs one) is recon + beta * KL on the training and the test split, and the weight changes what is
    learned: --beta 0 leaves a larger KL than the default, --beta 8 a smaller one, and a warm-up different weights.
    Catches --beta or the warm-up being dropped from a kind's loss, or from its test loss only.
    Checks a README claim."""
    digits = digits_npz(256, 64)
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
                    if "tc" in terms:  # a β-TCVAE's beta weighs only the total correlation it logs
                        expected = terms["recon"] + terms["kl"] + (float(beta) - 1) * terms["tc"]
                    assert terms["loss"] == pytest.approx(expected, rel=1e-5, abs=1e-3), (split, beta, terms)
    if "warmup_epochs" not in option_fields(kinds.get(kind).options):
        # the β-TCVAE: its beta weighs the total correlation only, which two epochs of 256 digits leave near 0 (a
        # collapsed code) whatever beta; that beta is in its loss is checked above, that it trains here; no warm-up
        a, b = load_file(tmp_path / "beta0" / "model.safetensors"), load_file(tmp_path / "beta8" / "model.safetensors")
        assert any(not torch.equal(a[k], b[k]) for k in a), "--beta changed nothing"
        return
    assert kl["0"] > kl["1"] > kl["8"], kl
    ok(train(cli, digits, tmp_path / "warm", kind, "--warmup-epochs", "2", epochs=2))
    assert [r["beta"] for r in epochs_of(tmp_path / "warm")] == [0.5, 1.0]
    a, b = load_file(tmp_path / "warm" / "model.safetensors"), load_file(tmp_path / "beta1" / "model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a), "--warmup-epochs changed nothing"


@pytest.mark.parametrize("kind,options", [("iwae", ["--k", "3"]), ("vamp", ["--pseudo-inputs", "20"]), ("cvae", [])])
def test_new_kinds_train_resume_evaluate_and_report(cli, digits, tmp_path, kind, options):
    out = tmp_path / kind
    common = ["--data", digits, "--out", out, "--quiet", "--batch-size", "64", "--latent-dim", "3"]
    result = cli("train", "--kind", kind, "--epochs", "1", *options, *common)
    assert result.returncode == 0, result.stderr
    assert cli("train", "--out", out, "--resume", "--epochs", "2", "--quiet").returncode == 0
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()[1:]]
    assert [e["epoch"] for e in epochs] == [1, 2] and epochs[-1]["test"]["loss"] < epochs[0]["test"]["loss"]
    run = Run.open(out)
    for figure in figures.for_kind(run.kind):  # those its data allows too (`when`: dSprites' factors for some)
        if figure.default and (figure.when is None or figure.when(run)):
            assert (out / f"{figure.name}.png").is_file(), figure.name
    fitted = cli("fit-sampler", out, "--components", "3")
    assert fitted.returncode == 0, fitted.stderr
    assert cli("sample", out, "--sampler", "gmm").returncode == 0 and (out / "samples-gmm.png").is_file()
    evaluated = cli("eval", out, "--iwae-k", "4", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["kind"] == kind and math.isfinite(result["iwae"]["nll"]) and result["samplers"]["gmm"]["available"]
    assert set(result["prior_mismatch"]) >= {"prior", "gmm"}
    assert cli("report", out, "--no-figures").returncode == 0
    report = (out / "report.html").read_text()
    assert "sampler gmm" in report and "Samples decoded from the Gaussian mixture" in report
    if kind == "iwae":
        assert {"bound", "ess"} <= set(epochs[-1]["train"]) and 1 <= epochs[-1]["train"]["ess"] <= 3
        assert cli("train", "--kind", "iwae", "--beta", "2", *common).returncode == 2  # no KL weight in the bound
    if kind == "vamp":
        assert run.model.pseudo.shape[0] == 20
        from vaelab.explorer.session import Session, samplers

        session = Session(out)  # the explorer draws from the learned prior, and from the fitted sampler
        assert samplers(run) == ["N(0, I)", "gmm"]
        z, _ = session.sample(4000, seed=0)
        expected = run.model.sample_prior(4000, torch.Generator().manual_seed(0))
        assert torch.allclose(torch.tensor(z), expected, atol=1e-5)
        z_gmm, images = session.sample(8, seed=0, sampler="gmm")
        assert len(z_gmm) == 8 and len(images) == 8
    if kind == "cvae":
        assert (out / "class_manifolds.png").is_file() and "the latent manifold of each class" in report
        assert cli("sample", out, "--label", "3").returncode == 0 and (out / "samples-prior-class3.png").is_file()
        assert cli("sample", out, "--label", "10").returncode == 2


def test_meaningless_option_combinations_are_errors(cli, tmp_path):
    for args, message in [
        (["--model", "gan", "--beta", "4"], "beta: has no meaning with --kind gan"),
        (["--model", "gan", "--recon", "gaussian"], "likelihood: has no meaning with --kind gan"),
        (["--gan-loss", "hinge"], "gan_loss: has no meaning with --kind vae"),
        (["--model", "vaegan", "--init-from", tmp_path], "init_from: has no meaning with --kind vaegan"),
        (["--model", "vaegan", "--gan-loss", "hinge"], "equilibrium gating is defined for ns only"),
        (["--model", "gan", "--lr", "0.01"], "use gan_lr"),
        (["--model", "gan", "--gamma", "2"], "gamma: has no meaning with --kind gan"),
        (["--model", "gan", "--init-from", tmp_path / "none"], "config.json: missing"),
    ]:
        result = cli("train", "--out", tmp_path / "never", "--quiet", "--epochs", "1", *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)


@pytest.mark.parametrize("units", ["this CPU has AMX", None])
@pytest.mark.parametrize("kind", kinds.names())
def test_precision_auto_picks_bf16_only_where_the_kind_and_the_device_can(monkeypatch, kind, units):
    """`--precision auto` (the default) becomes bf16 for a kind whose trainer autocasts, on a device with bf16
    units, and fp32 otherwise; config.json keeps the concrete choice, and the note says why. An explicit bf16 for a
    kind without a bf16 path is refused; an explicit fp32 is never overridden."""
    monkeypatch.setattr(kinds, "bf16_units", lambda device: units)
    config = kinds.make_config({"kind": kind})
    can = kinds.get(kind).bf16
    assert config.precision == ("bf16" if can and units else "fp32")
    assert config.to_dict()["precision"] == config.precision
    why = units if can and units else (f"the {kind} kind trains in fp32" if not can else "no bf16 units")
    assert why in config.precision_note
    assert kinds.make_config({"kind": kind, "precision": "fp32"}).precision == "fp32"
    if not can:
        with pytest.raises(ConfigError, match=f"precision: not available for --kind {kind}"):
            kinds.make_config({"kind": kind, "precision": "bf16"})
