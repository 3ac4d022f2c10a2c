"""The embedded set (vaelab.data.embedded): mnist-mini is the real 8,000 / 2,000 MNIST digits, checksummed."""

import numpy as np
import torch

from vaelab import data
from vaelab.data.embedded import MNIST_MINI_PATH, MNIST_MINI_SHA256, content_sha256


def test_mnist_mini_is_the_real_10000_digits():
    ds = data.load("mnist-mini")
    assert (len(ds.train), len(ds.test)) == (8000, 2000)
    assert ds.shape == (1, 28, 28) and ds.train.images.dtype == torch.uint8
    assert ds.num_classes == 10 and ds.classes == [str(d) for d in range(10)]
    counts = torch.bincount(torch.cat([ds.train.labels, ds.test.labels]), minlength=10).tolist()
    assert counts == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    # stratified: every class gives 20% (+-1) of its images to test
    test_counts = torch.bincount(ds.test.labels, minlength=10)
    assert torch.all((test_counts.float() - torch.tensor(counts) * 0.2).abs() <= 1)
    assert int(ds.train.images.max()) == 255 and int(ds.train.images.min()) == 0
    with np.load(MNIST_MINI_PATH) as f:
        assert content_sha256({k: f[k] for k in f.files}) == MNIST_MINI_SHA256


def test_mnist_mini_looks_like_digits():
    ds = data.load("mnist-mini")
    x = ds.train.images.float() / 255
    assert 0.10 < x.mean() < 0.16  # MNIST's mean intensity is about 0.13
    border = torch.cat([x[..., :2, :].flatten(), x[..., -2:, :].flatten()])
    assert border.mean() < 0.01  # digits are centred on a black background
    ones, zeros = x[ds.train.labels == 1].mean(), x[ds.train.labels == 0].mean()
    assert ones < zeros  # a "1" has far less ink than a "0"
