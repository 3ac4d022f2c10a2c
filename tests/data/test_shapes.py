"""The generated colour sets `shapes` and `shapes-textured` (vaelab.data.shapes): the same images on every load,
their shapes, labels and factors, real 8-bit edges, and one-line errors for a bad `NAME:NxSIDE`."""

import hashlib

import numpy as np
import pytest

from vaelab import data
from vaelab.data.shapes import CLASSES, FACTOR_NAMES, FACTOR_SIZES, generate, parse
from vaelab.errors import DataError


def test_the_same_name_gives_the_same_images_and_factors():
    first, second = data.load("shapes:300"), data.load("shapes:300")
    assert np.array_equal(first.train.images.numpy(), second.train.images.numpy())
    assert np.array_equal(first.test.factors.numpy(), second.test.factors.numpy())
    # a prefix of the default set: the generator draws factors, then renders in order
    images, factors = generate("shapes", 300, 32)
    assert np.array_equal(images[:240], first.train.images.numpy())


def test_the_default_set_is_fixed():
    """The first 200 images of `shapes` hash to a recorded value: a change to the generator is a new data set, and
    this test says so."""
    images, _ = generate("shapes", 200, 32)
    assert hashlib.sha256(images.tobytes()).hexdigest()[:16] == RECORDED


RECORDED = "ddfc5dc0ef684056"


@pytest.mark.parametrize("key", ["shapes:50", "shapes-textured:50x64"])
def test_images_labels_and_factors(key):
    dataset = data.load(key)
    side = 64 if "x64" in key else 32
    assert dataset.shape == (3, side, side) and len(dataset.train) == 40 and len(dataset.test) == 10
    assert dataset.classes == CLASSES and dataset.factor_names == FACTOR_NAMES
    assert dataset.factor_sizes == FACTOR_SIZES
    for split in (dataset.train, dataset.test):
        assert split.images.dtype.is_floating_point is False and split.factors.shape == (len(split), 6)
        assert np.array_equal(split.labels.numpy(), split.factors[:, 0].numpy())


def test_shapes_are_coloured_with_antialiased_edges():
    images, factors = generate("shapes", 64, 32)
    # the three channels differ (colour, not grey) and edges take levels between shape and background
    assert (images[:, 0] != images[:, 1]).any() and (images[:, 1] != images[:, 2]).any()
    levels = [len(np.unique(image.reshape(3, -1), axis=1)) for image in images]
    assert min(levels) > 2
    # every factor varies
    assert all(len(np.unique(factors[:, k])) > 1 for k in range(6))


def test_textured_backgrounds_differ_from_plain_ones():
    plain, _ = generate("shapes", 20, 32)
    textured, _ = generate("shapes-textured", 20, 32)
    corner = lambda images: images[:, :, :4, :4].reshape(20, 3, -1).std(-1).mean()
    assert corner(textured) > 3 * corner(plain) + 1


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("shapes:1", "between 2"),
        ("shapes:abc", "give shapes:N or shapes:NxSIDE"),
        ("shapes:100x4", "side must be between 8 and 128"),
        ("shapes:100x999", "side must be between 8 and 128"),
        ("shapes-textured:10x", "give shapes-textured:N"),
    ],
)
def test_a_bad_size_is_one_line(key, message):
    with pytest.raises(DataError, match=message):
        data.load(key)


def test_forms_of_the_name():
    assert parse("shapes") == ("shapes", 10_000, 32) and parse("shapes:2_000x64") == ("shapes", 2000, 64)
    assert "shapes" in data.names() and "shapes-textured" in data.names()
