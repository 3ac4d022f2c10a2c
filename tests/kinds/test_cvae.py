"""The conditional VAE kind (Sohn et al. 2015): its step and test terms against the conditional ELBO written out,
the label's path through encoder, decoder and sampling, the classes read from the data; end to end, unlabelled
data refused and samples of the requested digit."""

import copy

import numpy as np
import pytest
import torch

from tests.helpers.tiny import SHAPE, batch, make, trainer_of
from vaelab import data
from vaelab.device import World
from vaelab.evaluate import classifier
from vaelab.kinds.cvae import CVAE, CVAEConfig
from vaelab.losses import bernoulli_log_likelihood
from vaelab.run import Run


def cvae_encoder_by_hand(model, x, onehot):
    """q(z | x, y) of the MLP encoder written out: the label's embedding added to the first dense layer."""
    first, last = model.encoder[1], model.encoder[3]
    hidden = torch.relu(x.flatten(1) @ first.weight.T + first.bias + onehot @ model.label_embedding.weight.T)
    mean, logvar = (hidden @ last.weight.T + last.bias).chunk(2, dim=1)
    return mean, logvar


CVAE_CASES = {
    "plain": {},
    "beta-and-warm-up": {"beta": 0.5, "warmup_epochs": 2.0},
    "binarized": {"binarize": True},
    "gaussian-learned-sigma": {"likelihood": "gaussian", "learn_sigma": True},
}


@pytest.mark.parametrize("case", CVAE_CASES)
def test_the_cvae_step_is_the_conditional_elbo_written_out(tmp_path, case):
    """Sohn et al. 2015: q(z|x,y), p(x|z,y); a label hidden with probability label_dropout in both networks.
    Found by mutation testing."""
    from vaelab.losses import gaussian_log_likelihood, kl_weight

    options = CVAE_CASES[case]
    trainer = trainer_of(make(tmp_path, kind="cvae", classes=3, label_dropout=0.5, **options))
    model = copy.deepcopy(trainer.model)
    if options.get("learn_sigma"):  # away from its initial value, so that a likelihood ignoring it shows
        with torch.no_grad():
            for held in (model, trainer.model):
                held.log_sigma.fill_(-0.3)
    x, y = batch(), torch.tensor([0, 1, 2, 2, 1, 0])
    terms, loss = trainer.forward(x, y, 0.5, torch.Generator().manual_seed(5))
    noise = torch.Generator().manual_seed(5)
    if options.get("binarize"):
        x = (torch.rand(x.shape, generator=noise) < x).float()
    keep = ~(torch.rand(6, generator=noise) < 0.5)[:, None]
    assert 0 < int(keep.sum()) < 6  # this seed hides some labels, not all: both branches are checked
    onehot = torch.nn.functional.one_hot(y, 3).float()
    with_label = cvae_encoder_by_hand(model, x, onehot)
    without = cvae_encoder_by_hand(model, x, torch.zeros(6, 3))
    mean, logvar = (torch.where(keep, a, b) for a, b in zip(with_label, without))
    z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=noise)
    output = model.decoder(torch.cat([z, onehot * keep], dim=1))
    if options.get("likelihood") == "gaussian":
        recon = -gaussian_log_likelihood(output, x, model.log_sigma).sum()
    else:
        recon = -bernoulli_log_likelihood(output, x).sum()
    kl = (0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar)).sum()
    beta = kl_weight(options.get("beta", 1.0), 0.5, options.get("warmup_epochs", 0.0))
    assert beta == (0.125 if "warmup_epochs" in options else 1.0)
    torch.testing.assert_close(terms["recon"], recon)
    torch.testing.assert_close(terms["kl"], kl)
    torch.testing.assert_close(terms["loss"], recon + beta * kl)
    torch.testing.assert_close(loss, (recon + beta * kl) / 6)


def test_the_cvae_test_terms_are_seeded_means_of_the_conditional_elbo(tmp_path):
    """The logged test terms: the labelled ELBO over the split, in batches of eval_batch_size, seeded with
    seed + EVAL_SEED_OFFSET, the KL weighed by the epoch's beta. Found by mutation testing."""
    from vaelab.losses import kl_weight, vae_terms
    from vaelab.noise import EVAL_SEED_OFFSET

    trainer = trainer_of(make(tmp_path, kind="cvae", classes=3, seed=2, eval_batch_size=4, beta=2.0, warmup_epochs=4))
    images, labels = (batch(10, seed=3) * 255).to(torch.uint8), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    trainer.model.train()
    got = trainer.test_terms(images, labels, 1)
    assert trainer.model.training  # left as it was
    model = trainer.model.eval()
    generator = torch.Generator().manual_seed(2 + EVAL_SEED_OFFSET)
    sums = {}
    with torch.no_grad():
        for start in (0, 4, 8):
            x, y = images[start : start + 4].float() / 255, labels[start : start + 4]
            out = model(x, generator, y)
            terms = vae_terms(model.likelihood, out.output, x, out.posterior, model.log_sigma, kl_weight(2.0, 1, 4))
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.double().sum())
    assert got == pytest.approx({name: value / 10 for name, value in sums.items()}, rel=1e-6)
    assert got["loss"] == pytest.approx(got["recon"] + 0.5 * got["kl"], rel=1e-6)
    # the model's forward pass: encode with the label, sample, decode with the label
    x, y = images[:3].float() / 255, labels[:3]
    out = model(x, torch.Generator().manual_seed(9), y)
    posterior = model.encode(x, y)
    z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(out.z, z)
    torch.testing.assert_close(out.posterior.mean, posterior.mean)
    torch.testing.assert_close(out.output, model.decode(z, y))


def test_the_cvae_needs_its_classes_before_it_is_built(tmp_path):
    """Found by mutation testing."""
    from vaelab.errors import ConfigError
    from vaelab.kinds.cvae import CVAE, CVAEConfig, build
    from vaelab.models import VAEConfig

    with pytest.raises(
        ConfigError, match=r"^classes: unknown; train through vaelab\.training\.loop, which reads them from the data$"
    ):
        trainer_of(make(tmp_path, kind="cvae"))
    built = build(CVAEConfig(shape=SHAPE, latent_dim=2, hidden=(8,), classes=4))
    assert isinstance(built, CVAE) and built.classes == 4
    plain = build(VAEConfig(shape=SHAPE, latent_dim=2, hidden=(8,)))  # a plain model config: the default classes
    assert isinstance(plain, CVAE) and plain.classes == 10 and plain.label_embedding.bias is None


def test_the_cvae_model_conditions_encoder_decoder_and_samples_on_the_label(tmp_path):
    """Found by mutation testing."""
    trainer = trainer_of(make(tmp_path, kind="cvae", classes=3))
    model = trainer.model.eval()
    x, y = batch(4), torch.tensor([2, 0, 1, 1])
    onehot = torch.nn.functional.one_hot(y, 3).float()
    torch.testing.assert_close(model.encode(x, y).mean, cvae_encoder_by_hand(model, x, onehot)[0])
    torch.testing.assert_close(model.encode(x).mean, cvae_encoder_by_hand(model, x, torch.zeros(4, 3))[0])
    z = torch.randn(4, 2, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(model.decode(z, y), model.decoder(torch.cat([z, onehot], 1)))
    torch.testing.assert_close(model.decode(z), model.decoder(torch.cat([z, torch.zeros(4, 3)], 1)))
    # leading dimensions: [k, N, D] latents with [N] labels decode as k batches
    stacked = torch.stack([z, 2 * z])
    torch.testing.assert_close(model.decode(stacked, y)[1], model.decode(2 * z, y))
    torch.testing.assert_close(model.sample(4, z=z, labels=1), torch.sigmoid(model.decode(z, torch.ones(4).long())))
    torch.testing.assert_close(model.sample(4, z=z), torch.sigmoid(model.decode(z)))
    torch.testing.assert_close(model.reconstruct(x, y), torch.sigmoid(model.decode(model.encode(x, y).mean, y)))
    drawn = model.sample(5, torch.Generator().manual_seed(4))
    generator = torch.Generator().manual_seed(4)
    z5 = model.sample_prior(5, generator)
    labels = torch.randint(3, (5,), generator=generator)
    torch.testing.assert_close(drawn, torch.sigmoid(model.decode(z5, labels)))
    assert model.classes == 3


def test_the_cvae_reads_its_classes_from_the_data_and_refuses_unlabelled_data(tmp_path):
    """Found by mutation testing."""
    from vaelab import data
    from vaelab.errors import ConfigError, DataError
    from vaelab.kinds.cvae import prepare

    images = (batch(6) * 255).to(torch.uint8)
    labelled = data.Dataset(
        "d", data.Split(images, torch.tensor([0, 1, 2, 3, 0, 1])), data.Split(images[:2], torch.tensor([0, 3]))
    )
    config = make(tmp_path, kind="cvae")
    prepare(config, labelled)
    assert config.options.classes == 4
    prepare(make(tmp_path, kind="cvae", classes=4), labelled)  # as many classes as the data: allowed
    prepare(make(tmp_path, kind="cvae", classes=6), labelled)  # more: allowed
    with pytest.raises(ConfigError, match="4 classes, more than --classes 3"):
        prepare(make(tmp_path, kind="cvae", classes=3), labelled)
    message = (
        "d: has no labels, and a conditional VAE (--kind cvae) needs one per image; use a labelled data set "
        "(mnist-mini, an .npz with train_labels and test_labels, or an image folder with one subfolder per class)"
    )
    with pytest.raises(DataError) as raised:
        prepare(make(tmp_path, kind="cvae"), data.Dataset("d", data.Split(images), data.Split(images[:2])))
    assert str(raised.value) == message


@pytest.mark.parametrize("options", [{"binarize": True}, {"likelihood": "gaussian", "learn_sigma": True}])
def test_the_cvae_conditional_terms_binarize_and_use_the_learned_sigma(tmp_path, options):
    """conditional_terms (the CVAE's test terms and its eval ELBO): binarized with the split's seeded generator
    before the labelled pass, the Gaussian likelihood with the model's own sigma, the KL weight 1 by default.
    Found by mutation testing."""
    from vaelab.kinds.cvae import conditional_terms
    from vaelab.losses import binarize, vae_terms

    trainer = trainer_of(make(tmp_path, kind="cvae", classes=3, **options))
    model = trainer.model.eval()
    with torch.no_grad():
        model.log_sigma.fill_(-0.4)
    images, labels = (batch(5, seed=6) * 255).to(torch.uint8), torch.tensor([2, 1, 0, 1, 2])
    got = conditional_terms(
        model,
        images,
        labels,
        binarize_images=bool(options.get("binarize")),
        seed=4,
        batch_size=8,
        device=torch.device("cpu"),
        world=World(),
    )
    generator = torch.Generator().manual_seed(4)
    x = images.float() / 255
    if options.get("binarize"):
        x = binarize(x, generator)
    with torch.no_grad():
        out = model(x, generator, labels)
        terms = vae_terms(model.likelihood, out.output, x, out.posterior, model.log_sigma, 1.0)
    assert got == pytest.approx({name: float(value.double().mean()) for name, value in terms.items()}, rel=1e-6)
    assert got["loss"] == pytest.approx(got["recon"] + got["kl"], rel=1e-6)  # the default KL weight: 1
    if options.get("binarize"):  # the trainer's test terms binarize too
        assert trainer.test_terms(images, labels, 1) == pytest.approx(
            conditional_terms(
                model,
                images,
                labels,
                binarize_images=True,
                seed=trainer.config.seed + 10_000,
                batch_size=trainer.config.eval_batch_size,
                device=torch.device("cpu"),
                world=World(),
            )
        )


DIGIT_SHAPE = (1, 28, 28)


@pytest.mark.e2e
def test_cvae_on_data_without_labels_is_a_one_line_error(cli, tmp_path):
    path = tmp_path / "unlabelled.npz"
    ds = data.load("mnist-mini")
    np.savez(path, train_images=ds.train.images[:64].numpy(), test_images=ds.test.images[:16].numpy())
    result = cli("train", "--kind", "cvae", "--data", path, "--out", tmp_path / "run", "--epochs", "1", "--quiet")
    assert result.returncode != 0 and result.stderr.strip().count("\n") == 0, result.stderr
    assert "has no labels" in result.stderr and "--kind cvae" in result.stderr
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_cvae_labels_change_the_decoded_class_and_not_the_hidden_label_path():
    torch.manual_seed(0)
    model = CVAE(CVAEConfig(DIGIT_SHAPE, latent_dim=2, hidden=(32,), classes=10)).eval()
    z = torch.randn(3, 2)
    assert model.sample(3, z=z, labels=1).shape == (3, *DIGIT_SHAPE)
    assert not torch.allclose(model.sample(3, z=z, labels=1), model.sample(3, z=z, labels=7))
    x = torch.rand(3, *DIGIT_SHAPE)
    assert not torch.allclose(
        model.encode(x, torch.tensor([0, 0, 0])).mean, model.encode(x, torch.tensor([5, 5, 5])).mean
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_cvae_samples_are_of_the_requested_digit(cli, digits_npz, tmp_path):
    """The issue's criterion on a small run: the feature classifier reads the requested class in the samples."""
    out = tmp_path / "cvae"
    result = cli(
        "train",
        "--kind",
        "cvae",
        "--data",
        digits_npz(1000, 200),
        "--out",
        out,
        "--latent-dim",
        "2",
        "--epochs",
        "15",
        "--quiet",
        "--batch-size",
        "32",
    )
    assert result.returncode == 0, result.stderr
    run = Run.open(out)
    net, info = classifier.load_or_train(run.dataset())
    assert info["test_accuracy"] > 0.85
    hits = []
    for c in range(10):
        with torch.inference_mode():
            hits.append(
                float(
                    (net(run.model.sample(50, torch.Generator().manual_seed(c), labels=c)).argmax(1) == c)
                    .double()
                    .mean()
                )
            )
    assert sum(hits) / 10 >= 0.8, hits
