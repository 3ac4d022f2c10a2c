"""A split's means and ELBO terms (vaelab.training.split): exact means over uneven batches, without gradients, the
seeded binarization and draws, the default batch, and the shard of rank 1 of a mirrored world."""

import pytest
import torch
from torch import nn

from tests.helpers.tiny import CPU, SHAPE, make, tiny_images, tiny_vae, uint8
from vaelab import data, kinds
from vaelab.device import World
from vaelab.losses import binarize, vae_terms
from vaelab.training.split import split_means, split_terms


def test_split_means_are_exact_means_over_uneven_batches():
    """Found by mutation testing."""
    data = tiny_images(7)
    model = tiny_vae()
    model.train()

    def terms_of(x, y, generator):
        return {"sum": x.flatten(1).sum(1), "first_label": y.float(), "one": torch.ones(x.shape[0])}

    labels = torch.arange(7)
    means = split_means(model, data, terms_of, labels=labels, batch_size=3)
    assert model.training  # put back as it was
    x = data.double() / 255
    assert means == {
        "sum": pytest.approx(float(x.flatten(1).sum(1).mean())),
        "first_label": pytest.approx(3.0),
        "one": 1.0,
    }
    model.eval()
    split_means(model, data, terms_of, labels=labels)
    assert not model.training


def test_split_means_run_without_gradients_in_eval_mode():
    """Found by mutation testing."""
    model = tiny_vae()
    seen = []

    def terms_of(x, y, generator):
        seen.append((torch.is_inference_mode_enabled(), model.training, y))
        return {"x": x.mean((1, 2, 3))}

    split_means(model, tiny_images(4), terms_of, batch_size=2)
    assert seen == [(True, False, None), (True, False, None)]


def test_split_means_binarize_with_the_seeded_generator():
    """Found by mutation testing."""
    data = tiny_images(6)

    def terms_of(x, y, generator):
        return {"x": x.flatten(1).sum(1)}

    model = tiny_vae()
    plain = split_means(model, data, terms_of, batch_size=4)
    a = split_means(model, data, terms_of, binarize=True, seed=5, batch_size=4)
    generator = torch.Generator().manual_seed(5)
    expected = torch.cat([binarize(data[i : i + 4].float() / 255, generator).flatten(1).sum(1) for i in (0, 4)])
    assert a == {"x": pytest.approx(float(expected.double().mean()))} and a != plain
    assert split_means(model, data, terms_of, binarize=True, seed=6, batch_size=4) != a
    assert split_means(model, data, terms_of, binarize=True, batch_size=4) == split_means(
        model, data, terms_of, binarize=True, seed=0, batch_size=4
    )  # the default seed is 0
    assert split_means(model, data, terms_of, binarize=True, batch_size=4) != split_means(
        model, data, terms_of, binarize=True, seed=1, batch_size=4
    )


def test_split_terms_are_the_vae_terms_of_seeded_draws():
    """Found by mutation testing."""
    model, data = (
        tiny_vae(),
        tiny_images(45),
    )  # batches of 20, 20, 5: more than 16 draws each, grouped as the batches are
    got = split_terms(model, data, beta=0.5, seed=3, batch_size=20)
    generator = torch.Generator().manual_seed(3)
    sums: dict[str, float] = {}
    with torch.no_grad():
        for i in range(0, 45, 20):
            x = data[i : i + 20].float() / 255
            out = model(x, generator)
            for name, value in vae_terms("bernoulli", out.output, x, out.posterior, model.log_sigma, 0.5).items():
                sums[name] = sums.get(name, 0.0) + float(value.double().sum())
    assert got == pytest.approx({name: value / 45 for name, value in sums.items()}, rel=1e-6)
    assert split_terms(model, data, beta=0.5, seed=3, batch_size=20) == got
    assert split_terms(model, data, beta=0.5, seed=3, batch_size=45) != got  # the draws are grouped by batch
    assert split_terms(model, data, seed=3, batch_size=20)["loss"] != got["loss"]  # beta defaults to 1
    binarized = split_terms(model, data, beta=0.5, binarize=True, seed=3, batch_size=20)
    assert binarized["recon"] != got["recon"]
    default = split_terms(model, data)
    assert default == split_terms(model, data, beta=1.0, seed=0, batch_size=1000, device="cpu")


def test_split_terms_batch_a_thousand_images_by_default():
    """1001 images: one batch of 1000 and one of 1, the seeded draws grouped as with batch_size=1000.
    Found by mutation testing."""
    model = tiny_vae()
    data = tiny_images(1001, seed=3)
    assert split_terms(model, data, seed=4) == split_terms(model, data, seed=4, batch_size=1000)
    assert split_terms(model, data, seed=4) != split_terms(model, data, seed=4, batch_size=1001)


def test_split_means_of_rank_1_is_the_mean_over_its_shard(tmp_path, mirror):
    """Every second image of the split from rank 1 on (10 of 11 images shared out), binarized and scored with the
    seeded generator; sums and counts are summed across the processes, so the mean is the shard's.
    Found by mutation testing."""
    from vaelab.losses import binarize
    from vaelab.training.split import split_means, split_terms

    images, world = uint8(11, seed=4), World(rank=1, size=2)
    got = split_means(
        nn.Identity(),
        images,
        lambda x, y, g: {"mean": x.flatten(1).mean(1)},
        binarize=True,
        seed=5,
        batch_size=3,
        world=world,
    )
    generator, values = torch.Generator().manual_seed(5), []
    shard = images[1:10:2]
    for start in (0, 3):
        values += binarize(data.to_float(shard[start : start + 3]), generator).flatten(1).mean(1).tolist()
    assert got == pytest.approx({"mean": sum(values) / 5}, rel=1e-6)
    model = kinds.get("vae").trainer(make(tmp_path, epochs=2), SHAPE, CPU, World()).model
    assert split_terms(model, images, seed=2, batch_size=3, world=world) != split_terms(
        model, images, seed=2, batch_size=3
    )
