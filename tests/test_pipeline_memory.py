"""vaelab.pipeline's pre-flight memory check (`check_memory`, `refusal`, `step_sizes`, `preflight`): every kind sized
through its own `memory`, a run that cannot fit refused in one line before anything is written, naming the memory it
would need and what to lower (issue 21, item 4; issue 27, item 5)."""

import re

import pytest

from tests.helpers.runs import one_line_error
from vaelab import data, kinds, pipeline
from vaelab.data import limits
from vaelab.device import World
from vaelab.errors import ConfigError
from vaelab.kinds.memory import Footprint, StepSizes

GIB = 2**30


@pytest.fixture(scope="module")
def digits():
    return data.load("mnist-mini")  # 8,000 train and 2,000 test digits


def machine_of(monkeypatch, nbytes: int) -> None:
    monkeypatch.setattr(pipeline, "machine_memory", lambda device: (nbytes, "this machine"))


def test_a_cpu_run_is_set_against_this_machines_memory_or_its_containers():
    assert pipeline.machine_memory("cpu") == (limits.memory_bytes(), "this machine")


def test_step_sizes_take_a_processs_share_of_the_batch_and_no_more_images_than_there_are(digits):
    config = kinds.make_config({"batch_size": 128, "eval_batch_size": 5000})
    assert pipeline.step_sizes(config, digits, World()) == StepSizes(128, 2000, pipeline.BLOCK_FLOATS)
    assert pipeline.step_sizes(config, digits, World(0, 4)) == StepSizes(32, 2000, pipeline.BLOCK_FLOATS)
    huge = kinds.make_config({"batch_size": 1 << 20, "eval_batch_size": 10})
    assert pipeline.step_sizes(huge, digits, World()) == StepSizes(8000, 10, pipeline.BLOCK_FLOATS)
    assert pipeline.step_sizes(huge, digits, World(0, 2)).batch == 4000


def test_the_refusal_of_a_step_names_the_option_the_memory_and_what_to_lower():
    config = kinds.make_config({"kind": "iwae", "k": 10_000})
    footprint = Footprint(parameters=1000, train=30 * GIB, evaluate=10, lower=("k",))
    message = pipeline.refusal(footprint, config, kinds.get("iwae"), StepSizes(128, 1000, 1), 8 * GIB, "this machine")
    assert message == (
        "--k 10000: a training step of the IWAE would need about 240 GiB for a batch of 128 "
        "(this machine has 8 GiB, 7.2 GiB of it for a run); lower --k or --batch-size"
    )
    vae = kinds.make_config({"batch_size": 8000})
    footprint = Footprint(parameters=1000, train=GIB, evaluate=10)
    message = pipeline.refusal(footprint, vae, kinds.get("vae"), StepSizes(8000, 1000, 1), 4 * GIB, "this GPU")
    assert message == (
        "--batch-size 8000: a training step of the VAE would need about 8 GiB for a batch of 8000 "
        "(this GPU has 4 GiB, 3.6 GiB of it for a run); lower --batch-size"
    )


def test_the_refusal_of_an_evaluation_and_of_the_networks_themselves():
    vamp = kinds.make_config({"kind": "vamp", "pseudo_inputs": 90_000})
    footprint = Footprint(parameters=1000, train=10, evaluate=3 * GIB, lower=("pseudo_inputs",))
    message = pipeline.refusal(footprint, vamp, kinds.get("vamp"), StepSizes(128, 1000, 1), 8 * GIB, "this machine")
    assert message == (
        "--pseudo-inputs 90000: evaluating the VampPrior VAE would need about 12 GiB "
        "(this machine has 8 GiB, 7.2 GiB of it for a run); lower --pseudo-inputs or --eval-batch-size"
    )
    wide = Footprint(parameters=10**9, train=10, evaluate=10)
    message = pipeline.refusal(wide, vamp, kinds.get("vamp"), StepSizes(128, 1000, 1), 8 * GIB, "this machine")
    assert message == (
        "the networks would have 1,000,000,000 parameters (26.1 GiB to train), more than this machine's 8 GiB "
        "allows (7.2 GiB of it for a run); use smaller --hidden, --channels or --latent-dim"
    )


@pytest.mark.parametrize("kind", kinds.names())
def test_every_kinds_default_configuration_fits_an_8_gib_laptop(kind, digits, monkeypatch):
    """A normal run of every registered kind is accepted where the issue's users train: a laptop with 8 GiB."""
    machine_of(monkeypatch, 8 * GIB)
    pipeline.preflight(kinds.make_config({"kind": kind}), kinds.get(kind), digits)
    pipeline.preflight(kinds.make_config({"kind": kind, "arch": "conv"}), kinds.get(kind), digits)


def test_an_iwae_at_the_largest_k_is_refused_on_an_8_gib_laptop(digits, monkeypatch):
    """The issue's case: --k 10000 (the most the option allows) ran out of memory mid-step on a machine of 8 GB."""
    machine_of(monkeypatch, 8 * GIB)
    config = kinds.make_config({"kind": "iwae", "k": 10_000})
    with pytest.raises(ConfigError, match=r"^--k 10000: a training step of the IWAE would need about 23 GiB for a"):
        pipeline.check_memory(config, kinds.get("iwae"), digits)
    pipeline.check_memory(kinds.make_config({"kind": "iwae", "k": 1000}), kinds.get("iwae"), digits)


@pytest.mark.parametrize("kind", ["gan", "vaegan"])
def test_adversarial_kinds_are_sized_with_their_discriminator(kind, digits, monkeypatch):
    """The same networks and batch: a VAE fits a machine that a GAN or VAE-GAN (their discriminator, its Adam, its
    three passes per step) does not. The check sized every kind as a plain VAE before."""
    machine_of(monkeypatch, 390 * 2**20)  # 351 MiB for a run: the VAE's step at a batch of 8,000 needs 262 MiB
    pipeline.check_memory(kinds.make_config({"batch_size": 8000}), kinds.get("vae"), digits)
    with pytest.raises(
        ConfigError, match=rf"^--batch-size 8000: a training step of the {re.escape(kinds.get(kind).title)} "
    ):
        pipeline.check_memory(kinds.make_config({"kind": kind, "batch_size": 8000}), kinds.get(kind), digits)


def test_an_absurd_k_is_refused_before_training_and_nothing_is_written(cli, digits_npz, tmp_path, monkeypatch):
    """Through the command line: one line, exit 2, before the run directory exists (nor anything beside it)."""
    machine_of(monkeypatch, 8 * GIB)
    digits = digits_npz(256, 64)
    out = tmp_path / "runs" / "iwae"
    result = cli("train", "--kind", "iwae", "--k", "10000", "--data", digits, "--out", out, "--quiet")
    message = one_line_error(result)
    assert message == (
        "vaelab: error: --k 10000: a training step of the IWAE would need about 23 GiB for a batch of 128 "
        "(this machine has 8 GiB, 7.2 GiB of it for a run); lower --k or --batch-size"
    )
    assert not (tmp_path / "runs").exists()
    # resuming an existing run with a larger test batch is checked the same way (eval_batch_size may change)
    ok = cli("train", "--kind", "iwae", "--k", "2", "--hidden", "8", "--data", digits, "--out", out, "--quiet")
    assert ok.returncode == 0, ok.stderr
    machine_of(monkeypatch, 40 * 2**20)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    message = one_line_error(cli("train", "--out", out, "--resume", "--epochs", "2", "--quiet"))
    assert "(this machine has 40 MiB, 36 MiB of it for a run)" in message
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
