"""The VAE kind (Kingma & Welling 2014): its step and test terms against the same written out, its options (beta
and the KL warm-up, binarization, bf16, compile), in one process and as rank 1 of a mirrored world."""

import copy
import json
import math

import pytest
import torch
from safetensors.torch import load_file

import vaelab
from tests.helpers.runs import (
    epochs_of,
    ok,
    train,
)
from tests.helpers.tiny import CPU, SHAPE, batch, make, trainer_of, uint8
from vaelab import data, kinds
from vaelab.device import World
from vaelab.errors import ConfigError
from vaelab.losses import batch_sums, binarize
from vaelab.noise import EVAL_SEED_OFFSET
from vaelab.training.split import split_terms


def test_the_vae_and_cvae_test_terms_of_rank_1_cover_its_shard(tmp_path, mirror, monkeypatch):
    """The VAE's and the conditional VAE's logged test terms are those of this process's shard (rank 1 of 2),
    with the split's seeded noise, summed across the processes (here: the mirror's double).
    Found by mutation testing."""
    import vaelab.kinds.vae
    from vaelab.kinds.cvae import conditional_terms
    from vaelab.training.split import split_terms

    monkeypatch.setattr(vaelab.kinds.vae, "wrap", lambda module, compile, device, world: module)  # DDP wants a group
    world, images, labels = World(rank=1, size=2), uint8(11, seed=3), torch.arange(11) % 3
    vae = kinds.get("vae").trainer(make(tmp_path, epochs=2, seed=1, binarize=True), SHAPE, CPU, world)
    got = vae.test_terms(images, None, 1)
    seed = 1 + EVAL_SEED_OFFSET
    assert got == split_terms(vae.model, images, binarize=True, seed=seed, batch_size=4, world=world)
    assert got != split_terms(vae.model, images, binarize=True, seed=seed, batch_size=4)
    cvae = kinds.get("cvae").trainer(make(tmp_path, epochs=2, kind="cvae", classes=3, seed=1), SHAPE, CPU, world)
    got = cvae.test_terms(images, labels, 1)
    options = {"binarize_images": False, "seed": seed, "batch_size": 4, "device": CPU}
    assert got == conditional_terms(cvae.model, images, labels, world=world, **options)
    assert got != conditional_terms(cvae.model, images, labels, world=World(), **options)


@pytest.fixture(scope="module")
def digits(digits_npz):
    return digits_npz(256, 64)


@pytest.mark.e2e
@pytest.mark.usefixtures("no_figures")
def test_bf16_training_stays_within_half_a_nat_of_fp32_and_evaluates(cli, digits_npz, tmp_path):
    """The MLP VAE, three epochs on 600 digits, fp32 against bf16 from the same seed.

    Tolerance 0.5 nats on a test loss of about 220-300: bf16 keeps 8 bits of mantissa (a relative error of about
    0.4% per product) but the loss terms and sums stay in fp32 and Adam's updates in fp32 weights; on this setup the
    two runs differ by at most 0.06 nats (seeds 0-2), and the README promises 0.2 on a longer benchmark. A loss
    summed in bf16 (784 pixels) would be off by nats, and an ignored --precision leaves the weights identical: the
    test checks both. Checks a README claim."""
    from vaelab import data
    from vaelab.evaluate.iwae import iwae_log_likelihood

    small = digits_npz(600, 200)
    fp32, bf16 = tmp_path / "fp32", tmp_path / "bf16"
    common = ["--data", small, "--epochs", "3", "--batch-size", "64", "--threads", "1", "--quiet"]
    ok(cli("train", "--out", fp32, "--precision", "fp32", *common))
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


@pytest.mark.e2e
@pytest.mark.usefixtures("no_figures")
def test_the_kl_warm_up_is_logged_and_is_the_weight_the_loss_uses(cli, digits, tmp_path):
    """--beta 2 --warmup-epochs 4 over 3 epochs: the logged weight is beta * epoch / 4 at each epoch's end, the test
    loss is exactly recon + that weight * KL, and the training loss (whose weight ramps step by step through the
    epoch) lies between recon + weight-at-start * KL and recon + weight-at-end * KL. Catches a warm-up or beta
    dropped from the loss (the past bug) or a logged weight that is not the one trained with. Checks a README claim."""
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


def test_the_vae_trainer_honours_bf16_and_compile_and_names_its_network_vae(tmp_path, monkeypatch):
    """The names in training_state.safetensors ("vae") are what older runs resume from; bf16 autocasts the forward
    pass (close to fp32, not equal); --compile goes through torch.compile. Found by mutation testing."""
    x = batch()
    fp32 = trainer_of(make(tmp_path, kind="vae"))
    bf16 = trainer_of(make(tmp_path, kind="vae", precision="bf16"))
    assert fp32.modules == {"vae": fp32.model}
    a, _ = fp32.forward(x, None, 0.0, torch.Generator().manual_seed(1))
    b, _ = bf16.forward(x, None, 0.0, torch.Generator().manual_seed(1))
    assert not torch.equal(a["recon"], b["recon"])
    torch.testing.assert_close(a["recon"], b["recon"], rtol=0.02, atol=0.5)
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: compiled.append(module) or module)
    trainer = trainer_of(make(tmp_path, kind="vae", compile=True))
    assert compiled == [trainer.model]


@pytest.fixture(scope="module")
def dataset():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (34, *SHAPE), dtype=torch.uint8, generator=g)
    labels = torch.arange(34) % 2
    return data.Dataset(
        name="tiny",
        train=data.Split(images[:24], labels[:24]),
        test=data.Split(images[24:], labels[24:]),
        classes=["a", "b"],
        source="made in the test",
    )


def test_the_vae_step_is_the_negative_elbo_written_out(tmp_path, dataset):
    """Found by mutation testing."""
    config = make(tmp_path, epochs=2, beta=0.5, warmup_epochs=2.0, lr=0.01, grad_clip=0.05)
    trainer = kinds.get("vae").trainer(config, SHAPE, torch.device("cpu"), World())
    twin = copy.deepcopy(trainer.model)
    x = dataset.train.images[:8].float() / 255
    terms, loss = trainer.forward(x, None, 0.5, torch.Generator().manual_seed(1))
    out = twin(x, torch.Generator().manual_seed(1))
    sums = batch_sums("bernoulli", out.output, x, out.posterior, twin.log_sigma)
    expected_loss = sums["recon"] + 0.125 * sums["kl"]  # beta 0.5 a quarter of the way through its warm-up
    assert set(terms) == {"loss", "recon", "kl"}
    torch.testing.assert_close(terms["loss"], expected_loss)
    torch.testing.assert_close(terms["recon"], sums["recon"])
    torch.testing.assert_close(loss, expected_loss / 8)
    assert trainer.update(loss) == {}
    optimizer = torch.optim.Adam(twin.parameters(), lr=0.01)
    (expected_loss / 8).backward()
    torch.nn.utils.clip_grad_norm_(twin.parameters(), 0.05)
    optimizer.step()
    for a, b in zip(trainer.model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)
    assert trainer.record(1) == {"beta": 0.25, "lr": 0.01}
    trainer.set_lr(make(tmp_path, epochs=2, lr=0.003))
    assert trainer.optimizers["adam"].param_groups[0]["lr"] == 0.003 and trainer.extra_weights() == {}


def test_the_vae_step_binarizes_with_the_noise_generator(tmp_path, dataset):
    """Found by mutation testing."""
    config = make(tmp_path, epochs=2, binarize=True)
    trainer = kinds.get("vae").trainer(config, SHAPE, torch.device("cpu"), World())
    twin = copy.deepcopy(trainer.model)
    x = dataset.train.images[:8].float() / 255
    terms, _ = trainer.forward(x, None, 0.0, torch.Generator().manual_seed(2))
    noise = torch.Generator().manual_seed(2)
    xb = binarize(x, noise)
    out = twin(xb, noise)
    torch.testing.assert_close(
        terms["recon"], batch_sums("bernoulli", out.output, xb, out.posterior, twin.log_sigma)["recon"]
    )


def test_the_gaussian_vae_logs_its_squared_error_and_checks_its_options(tmp_path, dataset):
    """Found by mutation testing."""
    trainer = kinds.get("vae").trainer(
        make(tmp_path, epochs=2, likelihood="gaussian", sigma=0.5, learn_sigma=True),
        SHAPE,
        torch.device("cpu"),
        World(),
    )
    assert (
        trainer.model.likelihood == "gaussian"
        and trainer.model.config.sigma == 0.5
        and trainer.model.config.learn_sigma
    )
    terms, _ = trainer.forward(dataset.train.images[:4].float() / 255, None, 0.0, torch.Generator().manual_seed(0))
    assert set(terms) == {"loss", "recon", "kl", "sq_error"}
    with pytest.raises(ConfigError, match="^binarize: only makes sense with likelihood = bernoulli$"):
        make(tmp_path, epochs=2, likelihood="gaussian", binarize=True)
    with pytest.raises(ConfigError, match="^learn_sigma: only makes sense with likelihood = gaussian$"):
        make(tmp_path, epochs=2, learn_sigma=True)


def test_the_vae_test_terms_use_the_seeded_eval_noise(tmp_path, dataset):
    """Found by mutation testing."""
    config = make(tmp_path, epochs=2, beta=3.0, warmup_epochs=2.0, binarize=True, seed=5, eval_batch_size=3)
    trainer = kinds.get("vae").trainer(config, SHAPE, torch.device("cpu"), World())
    got = trainer.test_terms(dataset.test.images, None, 1)
    expected = split_terms(
        trainer.model, dataset.test.images, beta=1.5, binarize=True, seed=5 + EVAL_SEED_OFFSET, batch_size=3
    )
    assert got == expected
