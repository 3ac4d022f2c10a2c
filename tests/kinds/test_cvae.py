"""Each kind's step against the same step written out from the papers' formulas, on one tiny batch: the GAN's
losses and separate updates, the IWAE bound and its effective sample size, the VampPrior's mixture density, the
VAE-GAN's equilibrium gating. Written for the mutation run of scripts/mutate.py (docs/mutation.md)."""

import copy
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from tests.helpers.tiny import SHAPE, batch, make, trainer_of
from vaelab.device import World
from vaelab.kinds.iwae import iwae_terms
from vaelab.kinds.vamp import mixture_log_prob, monte_carlo_kl
from vaelab.losses import bernoulli_log_likelihood, discriminator_loss, generator_loss
from vaelab.models.posterior import DiagonalGaussian


@pytest.mark.parametrize("loss", ["ns", "hinge"])
def test_the_gan_step_is_the_two_losses_written_out(tmp_path, loss):
    trainer = trainer_of(make(tmp_path, kind="gan", gan_loss=loss, gan_lr=0.01, gan_betas=[0.5, 0.9], grad_clip=0.05))
    g, d = copy.deepcopy(trainer.model), copy.deepcopy(trainer.disc)
    x = batch()
    terms, pending = trainer.forward(x, None, 0.0, torch.Generator().manual_seed(1))
    fake = g(torch.randn(6, 2, generator=torch.Generator().manual_seed(1)))
    real_logits, fake_logits = d(x)[0], d(fake)[0]
    torch.testing.assert_close(terms["d_loss"], discriminator_loss(real_logits, fake_logits, loss))
    torch.testing.assert_close(terms["g_loss"], generator_loss(fake_logits, loss))
    torch.testing.assert_close(terms["d_real"], torch.sigmoid(real_logits).mean())
    torch.testing.assert_close(terms["d_fake"], torch.sigmoid(fake_logits).mean())
    assert pending is terms and trainer.update(pending) == {}
    # D steps on its own loss (the fakes detached), G on its own (through D before D's step), each with its Adam
    opt_d = torch.optim.Adam(d.parameters(), lr=0.01, betas=(0.5, 0.9))
    opt_g = torch.optim.Adam(g.parameters(), lr=0.01, betas=(0.5, 0.9))
    both = d(torch.cat([x, fake.detach()]))[0]  # one pass, as the trainer's: the same rounding
    discriminator_loss(both[:6], both[6:], loss).backward(inputs=list(d.parameters()))
    generator_loss(fake_logits, loss).backward(inputs=list(g.parameters()))
    torch.nn.utils.clip_grad_norm_(d.parameters(), 0.05)  # each network's gradient clipped on its own
    torch.nn.utils.clip_grad_norm_(g.parameters(), 0.05)
    opt_d.step()
    opt_g.step()
    for a, b in zip(trainer.disc.parameters(), d.parameters()):
        torch.testing.assert_close(a, b)
    for a, b in zip(trainer.model.parameters(), g.parameters()):
        torch.testing.assert_close(a, b)
    assert trainer.record(1) == {"lr": 0.01} and set(trainer.extra_weights()) == {"discriminator"}


def test_the_gan_test_terms_are_seeded_means_over_the_test_images(tmp_path):
    trainer = trainer_of(make(tmp_path, kind="gan", seed=3, eval_batch_size=4))
    images = (batch(10) * 255).to(torch.uint8)
    got = trainer.test_terms(images, None, 1)
    assert got == trainer.test_terms(images, None, 2) and not trainer.model.training
    generator = torch.Generator().manual_seed(3 + 10_000)
    totals = {}
    with torch.no_grad():
        for start in (0, 4, 8):
            x = images[start : start + 4].float() / 255
            fake = trainer.model(torch.randn(x.shape[0], 2, generator=generator))
            real_logits, fake_logits = trainer.disc(x)[0], trainer.disc(fake)[0]
            for name, value in {
                "d_loss": discriminator_loss(real_logits, fake_logits),
                "g_loss": generator_loss(fake_logits),
                "d_real": torch.sigmoid(real_logits).mean(),
                "d_fake": torch.sigmoid(fake_logits).mean(),
            }.items():
                totals[name] = totals.get(name, 0.0) + float(value) * x.shape[0]
    assert got == pytest.approx({name: value / 10 for name, value in totals.items()}, rel=1e-5)


def test_the_iwae_terms_are_the_bound_written_out(tmp_path):
    trainer = trainer_of(make(tmp_path, kind="iwae", k=4))
    model, x = trainer.model, batch(3)
    terms = iwae_terms(model, x, 4, torch.Generator().manual_seed(2))
    q = model.encode(x)
    eps = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(2))
    z = q.mean + q.std * eps
    log_px = bernoulli_log_likelihood(model.decode(z.reshape(-1, 2)).view(4, *x.shape), x)
    log_q = Independent(Normal(q.mean, q.std), 1).log_prob(z)
    log_p = Independent(Normal(torch.zeros(2), torch.ones(2)), 1).log_prob(z)
    log_w = log_px + log_p - log_q  # [k, B]
    torch.testing.assert_close(terms["bound"], torch.logsumexp(log_w, 0) - math.log(4))
    w = torch.softmax(log_w, 0)
    torch.testing.assert_close(terms["ess"], 1 / w.pow(2).sum(0))
    torch.testing.assert_close(terms["recon"], -log_px.mean(0))
    torch.testing.assert_close(terms["kl"], (log_q - log_p).mean(0))
    assert bool((terms["ess"] >= 1 - 1e-5).all() and (terms["ess"] <= 4 + 1e-5).all())


def test_the_iwae_step_minimises_minus_the_bound(tmp_path):
    trainer = trainer_of(make(tmp_path, kind="iwae", k=3, lr=0.01))
    twin = copy.deepcopy(trainer.model)
    x = batch(4)
    terms, loss = trainer.forward(x, None, 0.0, torch.Generator().manual_seed(5))
    expected = iwae_terms(twin, x, 3, torch.Generator().manual_seed(5))
    assert set(terms) == {"loss", "bound", "ess", "recon", "kl"}
    torch.testing.assert_close(terms["loss"], -expected["bound"].sum())
    for name in ("bound", "ess", "recon", "kl"):
        torch.testing.assert_close(terms[name], expected[name].sum())
    torch.testing.assert_close(loss, -expected["bound"].sum() / 4)
    trainer.update(loss)
    optimizer = torch.optim.Adam(twin.parameters(), lr=0.01)
    (-expected["bound"].sum() / 4).backward()
    optimizer.step()
    for a, b in zip(trainer.model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)
    assert trainer.record(1) == {"k": 3, "lr": 0.01}


def test_the_iwae_test_terms(tmp_path):
    trainer = trainer_of(make(tmp_path, kind="iwae", k=2, eval_batch_size=4))
    images = (batch(5) * 255).to(torch.uint8)
    terms = trainer.test_terms(images, None, 1)
    assert set(terms) == {"loss", "recon", "kl", "bound", "ess"} and terms["loss"] == -terms["bound"]
    assert 1 <= terms["ess"] <= 2 and terms == trainer.test_terms(images, None, 1)


def test_the_vamp_prior_is_the_mixture_of_its_components():
    torch.manual_seed(0)
    means, logvars, z = torch.randn(5, 3), torch.randn(5, 3), torch.randn(2, 4, 3)
    mixture = MixtureSameFamily(
        Categorical(logits=torch.zeros(5)), Independent(Normal(means, (0.5 * logvars).exp()), 1)
    )
    torch.testing.assert_close(mixture_log_prob(z, means, logvars), mixture.log_prob(z))
    q = DiagonalGaussian(torch.randn(4, 3), torch.randn(4, 3))
    prior = lambda v: mixture.log_prob(v)
    mean, se = monte_carlo_kl(q, prior, 50, torch.Generator().manual_seed(1))
    eps = torch.randn(50, 4, 3, generator=torch.Generator().manual_seed(1))
    values = q.log_prob(q.mean + q.std * eps) - prior(q.mean + q.std * eps)
    torch.testing.assert_close(mean, values.mean(0))
    torch.testing.assert_close(se, values.std(0) / math.sqrt(50))


@pytest.mark.parametrize("bce, d_updated, dec_adv", [(0.2, 0.0, 1.0), (0.68, 1.0, 1.0), (1.5, 1.0, 0.0)])
def test_the_vaegan_gates_its_updates_on_the_discriminator_s_bce(tmp_path, bce, d_updated, dec_adv):
    trainer = trainer_of(make(tmp_path, kind="vaegan"))
    disc = copy.deepcopy(trainer.disc)
    _, losses = trainer.forward(batch(4), None, 0.0, torch.Generator().manual_seed(0))
    losses["bce"] = torch.tensor([bce, bce])
    flags = trainer.update(losses)
    assert flags == {"d_updated": torch.tensor(d_updated), "dec_adv_updated": torch.tensor(dec_adv)}
    moved = any(not torch.equal(a, b) for a, b in zip(trainer.disc.parameters(), disc.parameters()))
    assert moved == bool(d_updated)


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
    """Sohn et al. 2015: q(z|x,y), p(x|z,y); a label hidden with probability label_dropout in both networks."""
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
    seed + EVAL_SEED_OFFSET, the KL weighed by the epoch's beta."""
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


def test_the_vae_trainer_honours_bf16_and_compile_and_names_its_network_vae(tmp_path, monkeypatch):
    """The names in training_state.safetensors ("vae") are what older runs resume from; bf16 autocasts the forward
    pass (close to fp32, not equal); --compile goes through torch.compile."""
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


@pytest.mark.parametrize("options", [{"binarize": True}, {"likelihood": "gaussian", "learn_sigma": True}])
def test_the_cvae_conditional_terms_binarize_and_use_the_learned_sigma(tmp_path, options):
    """conditional_terms (the CVAE's test terms and its eval ELBO): binarized with the split's seeded generator
    before the labelled pass, the Gaussian likelihood with the model's own sigma, the KL weight 1 by default."""
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
