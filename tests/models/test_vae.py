"""The VAE (vaelab.models.vae): shapes for both architectures at several input shapes, configurable sizes, the
clamped log-variance and the Gaussian likelihood's mean image."""

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
