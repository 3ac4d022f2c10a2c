"""The label-free feature space of sample quality (vaelab.evaluate.random_features): fixed, cached per data set,
standardised and whitened on the training split, and it ranks image sets as a feature space for FD must."""

from __future__ import annotations

import pytest
import torch

from vaelab import data
from vaelab.data.dataset import Dataset, Split
from vaelab.evaluate import random_features as rf
from vaelab.evaluate.frechet import frechet_distance, precision_recall


def unlabelled(n_train=200, n_test=100, seed=0) -> Dataset:
    """Colour images with structure: a bright square of random colour and place on a dark background."""
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    images = torch.randint(0, 40, (n, 3, 16, 16), generator=g, dtype=torch.uint8)
    for i in range(n):
        y, x = torch.randint(0, 10, (2,), generator=g).tolist()
        colour = torch.randint(128, 256, (3, 1, 1), generator=g, dtype=torch.uint8)
        images[i, :, y : y + 6, x : x + 6] = colour
    return Dataset("squares", Split(images[:n_train]), Split(images[n_train:]))


def test_the_network_is_fixed_and_cached_per_data_set(tmp_path, monkeypatch):
    dataset = unlabelled()
    net, info = rf.load_or_build(dataset, tmp_path)
    assert info["features"] == rf.COMPONENTS and rf.features(net, dataset.test.images).shape == (100, rf.COMPONENTS)
    again = rf.build(dataset)  # the same seed and data: the same network
    x = dataset.test.images[:50]
    assert torch.allclose(rf.features(net, x), rf.features(again, x), atol=1e-4)
    monkeypatch.setattr(rf, "build", lambda *a, **k: pytest.fail("a cached network was built again"))
    cached, _ = rf.load_or_build(dataset, tmp_path)
    assert torch.equal(rf.features(cached, x), rf.features(net, x))
    monkeypatch.undo()
    for path in (tmp_path / "features").glob("*.safetensors"):
        path.write_bytes(b"damaged")
    rebuilt, _ = rf.load_or_build(dataset, tmp_path)  # a damaged cache is made again
    assert torch.allclose(rf.features(rebuilt, x), rf.features(net, x), atol=1e-4)
    other = unlabelled(seed=1)  # another data set: another entry
    rf.load_or_build(other, tmp_path)
    assert len(list((tmp_path / "features").glob("*.json"))) == 2


def test_features_are_whitened_on_the_training_split_and_accept_uint8_or_float():
    dataset = unlabelled()
    net = rf.build(dataset)
    train = rf.features(net, dataset.train.images)
    assert torch.allclose(train.mean(0), torch.zeros(rf.COMPONENTS), atol=1e-3)
    assert torch.allclose(train.std(0), torch.ones(rf.COMPONENTS), atol=1e-2)
    assert torch.allclose(rf.features(net, data.to_float(dataset.test.images)), rf.features(net, dataset.test.images))


def test_real_images_score_best_and_worse_images_worse():
    """The ranking a sample-quality feature space must give: other real images of the same kind (the test split)
    are near the training images; images blurred more, then noise, are further in FD and in precision/recall."""
    dataset = unlabelled(n_train=300, n_test=200)
    net = rf.build(dataset)
    real = rf.features(net, dataset.train.images[:200])

    def blurred(times: int) -> torch.Tensor:
        x = data.to_float(dataset.test.images)
        for _ in range(times):
            x = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return x

    sets = [data.to_float(dataset.test.images), blurred(1), blurred(3), torch.rand(200, 3, 16, 16)]
    fd = [frechet_distance(real, rf.features(net, s)) for s in sets]
    pr = [precision_recall(real, rf.features(net, s)) for s in sets]
    assert fd[0] < 1.0 and min(pr[0]) > 0.8
    assert fd[0] < fd[1] < fd[2] < fd[3]
    assert pr[0][0] > pr[1][0] >= pr[2][0] and pr[3] == (0.0, 0.0)
