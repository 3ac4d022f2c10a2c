"""Model shapes for both architectures at several input shapes, and the VAE's API."""

import math

import pytest
import torch

from vaelab.models import VAE, VAEConfig
from vaelab.models.vae import LOGVAR_MAX, LOGVAR_MIN


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 7, 9), (3, 17, 23)])
@pytest.mark.parametrize("latent_dim", [1, 2, 10])
def test_shapes(arch, shape, latent_dim):
    model = VAE(VAEConfig(shape=shape, arch=arch, latent_dim=latent_dim))
    x = torch.rand(4, *shape)
    out = model(x)
    assert out.posterior.mean.shape == out.posterior.logvar.shape == out.z.shape == (4, latent_dim)
    assert out.output.shape == x.shape
    assert model.sample(5).shape == (5, *shape)
    recon = model.reconstruct(x)  # from the posterior means: deterministic, unlike model(x)'s sampled z
    assert recon.shape == x.shape and torch.equal(recon, model.reconstruct(x))
    assert torch.equal(recon, torch.sigmoid(model.decode(model.encode(x).mean)))
    assert not torch.equal(model(x, torch.Generator().manual_seed(0)).z, out.posterior.mean)


def test_hidden_sizes_and_channels_are_configurable():
    mlp = VAE(VAEConfig(shape=(1, 28, 28), hidden=(512, 256)))
    linears = [m for m in mlp.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [512, 256, 20]
    assert VAE(VAEConfig(shape=(1, 28, 28))).config.hidden == (400,)  # the classic default
    conv = VAE(VAEConfig(shape=(3, 32, 32), arch="conv", channels=(8, 16, 32)))
    convs = [m for m in conv.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [8, 16, 32]
    assert any(isinstance(m, torch.nn.ReLU) for m in conv.decoder.modules())


def test_logvar_is_clamped():
    model = VAE(VAEConfig(shape=(1, 4, 4), latent_dim=2))
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.fill_(1e4)
    q = model.encode(torch.ones(2, 1, 4, 4))
    assert q.logvar.max() <= LOGVAR_MAX and q.logvar.min() >= LOGVAR_MIN
    assert torch.isfinite(q.std).all()


def test_gaussian_output_is_the_mean_image():
    model = VAE(VAEConfig(shape=(1, 4, 4), likelihood="gaussian", learn_sigma=True))
    assert any(name == "log_sigma" for name, _ in model.named_parameters())
    assert model.to_image(torch.tensor([-1.0, 0.5, 2.0])).tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    "options",
    [
        {"arch": "mlp", "hidden": [32, 16], "activation": "elu", "likelihood": "gaussian", "learn_sigma": True},
        {"arch": "conv", "channels": [4, 8], "hidden": [16], "activation": "silu"},
        {"kind": "vamp", "pseudo_inputs": 7, "hidden": [24]},
        {"kind": "cvae", "hidden": [24], "latent_dim": 2},
    ],
    ids=["mlp-gaussian", "conv", "vamp", "cvae"],
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


def test_conv_nets_compute_the_same_in_channels_last_and_hand_back_contiguous_images():
    """The conv stacks run on channels-last activations (oneDNN's fast layout): the numbers must be those of
    the contiguous layout, and a decoded RGB batch must come back contiguous (callers `.view` it)."""
    from vaelab.models import VAE, VAEConfig

    torch.manual_seed(0)
    model = VAE(VAEConfig(shape=(3, 12, 12), arch="conv", latent_dim=4, channels=(8, 16), hidden=(32,)))
    x, z = torch.rand(5, 3, 12, 12), torch.randn(5, 4)
    fast_mean, fast_images = model.encode(x).mean, model.decode(z)
    assert fast_images.is_contiguous() and fast_images.shape == (5, 3, 12, 12)
    model.encoder.memory_format = model.decoder.memory_format = torch.contiguous_format
    torch.testing.assert_close(fast_mean, model.encode(x).mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast_images, model.decode(z), rtol=1e-5, atol=1e-5)
