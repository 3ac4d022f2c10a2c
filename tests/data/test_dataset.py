"""The data-set type (vaelab.data.dataset): validated when it is built (dtypes, labels in range and named), the
class count bounded, the stratified split of a folder without a test split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.files import save_png
from tests.helpers.fuzz import FUZZ, outcome
from vaelab import data
from vaelab.data import Dataset, Split
from vaelab.data.limits import MAX_CLASSES
from vaelab.errors import DataError


def test_labels_validated_in_the_dataset_constructor():
    images = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    split = lambda labels: data.Split(images, torch.tensor(labels))
    with pytest.raises(DataError, match="label < 10000"):
        data.Dataset("x", split([0, 1, 10**12]), split([0, 1, 2]))  # data info's 8 TB bincount, train's silence
    with pytest.raises(DataError, match="label < 10000"):
        data.Dataset("x", split([0, 1, 2]), split([0, -4, 2]))
    with pytest.raises(DataError, match="label 2 has no class name"):
        data.Dataset("x", split([0, 1, 2]), split([0, 1, 1]), classes=["a", "b"])
    with pytest.raises(DataError, match="int64 tensor"):
        data.Dataset("x", data.Split(images, torch.tensor([0.0, 1.0, 2.0])), split([0, 1, 2]))
    with pytest.raises(DataError, match="class names are given but the images have no labels"):
        data.Dataset("x", data.Split(images), data.Split(images), classes=["a"])
    with pytest.raises(DataError, match="uint8 tensor"):
        data.Dataset("x", data.Split(images.float()), data.Split(images))
    with pytest.raises(DataError, match="holds no images"):
        data.Dataset("x", data.Split(images), data.Split(images[:0]))
    assert data.Dataset("x", split([0, 1, 2]), split([2, 2, 2]), classes=["a", "b", "c"]).num_classes == 3
    with pytest.raises(DataError) as err:  # found by the fuzz suite: a class name with a control character
        data.Dataset("x\n", split([0, 1, 2]), split([0, 1, 1]), classes=["\x1f", "b"])
    assert str(err.value) == "x\\n: label 2 has no class name (only 2 classes: \\x1f, b)"


def test_class_count_is_bounded(tmp_path, monkeypatch):
    from vaelab.data import dataset

    monkeypatch.setattr(dataset, "MAX_CLASSES", 3)
    for name in "abcd":
        for k in range(2):
            save_png(tmp_path / name / f"{k}.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="labels range over \\[0, 3\\]; they must be class indices 0 <= label < 3"):
        data.load(tmp_path)


def test_stratified_split_is_unchanged():
    # the indices the split drew before it was rewritten (one sort instead of one scan per class)
    from vaelab.data.dataset import stratified_split

    train, test = stratified_split(np.array([2, 0, 1, 1, 0, 2, 2, 1, 0, 0, 2, 1, 1]), 0.2, 7)
    assert train.tolist() == [11, 9, 10, 3, 5, 4, 7, 12, 8, 0] and test.tolist() == [6, 1, 2]


@FUZZ
@given(
    n=st.integers(0, 3),
    channels=st.sampled_from([1, 1, 3, 3, 0, 2, 4]),
    side=st.integers(0, 3),
    dtype=st.sampled_from([torch.uint8, torch.uint8, torch.float32, torch.int64]),
    data_=st.data(),
)
def test_fuzz_dataset_constructor(n, channels, side, dtype, data_):
    """Dataset checks itself, so no caller can build one that breaks a label histogram or a class lookup.
    Found by fuzzing: a property test (Hypothesis)."""
    images = torch.zeros((n, channels, side, side + 1), dtype=dtype)
    label = st.integers(0, 3) | st.sampled_from([-1, MAX_CLASSES, 10**12])
    labels = data_.draw(st.none() | st.lists(label, min_size=n, max_size=n) | st.lists(label, max_size=4))
    classes = data_.draw(st.none() | st.lists(st.text(max_size=3), max_size=5) | st.just([1, 2, 3, 4]))

    def build():
        label_tensor = None if labels is None else torch.tensor(labels, dtype=torch.int64)
        split = Split(images, label_tensor)
        return Dataset("x", split, split, classes)

    outcome(build)


def _factor_set(train_factors, test_factors, **extra):
    images = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    split = lambda f: data.Split(images, factors=None if f is None else torch.tensor(f))
    return data.Dataset("x", split(train_factors), split(test_factors), **extra)


def test_factors_validated_in_the_dataset_constructor():
    """Factors (issue 23): both splits or neither, a name and a size per factor, each index in range, one line."""
    ok = [[0, 1], [1, 0], [2, 1]]
    named = dict(factor_names=["a", "b"], factor_sizes=[3, 2])
    dataset = _factor_set(ok, ok, **named)
    assert dataset.has_factors and dataset.factor_sizes == [3, 2] and dataset.train.factors.dtype == torch.int64
    assert not _factor_set(None, None).has_factors
    cases = [
        ((ok, None), named, "factors are given for one split but not the other"),
        ((None, None), named, "factor names or sizes are given but the images have no factors"),
        ((ok, ok), dict(factor_sizes=[3, 2]), "the factors need their names"),
        ((ok, ok), dict(factor_names=["a", "a"], factor_sizes=[3, 2]), "factor names must differ"),
        ((ok, ok), dict(factor_names=["a", "b"], factor_sizes=[3]), "2 factor names but 1 factor sizes"),
        ((ok, ok), dict(factor_names=["a", "b"], factor_sizes=[3, 0]), "factor sizes must be whole numbers"),
        ((ok, [[0, 1], [1, 2], [2, 1]]), named, r"\(test split\): factor b ranges over \[1, 2\]; .* \[0, 2\)"),
        ((ok, [[0, 1], [-1, 0], [2, 1]]), named, r"factor a ranges over \[-1, 2\]"),
        ((ok, [[0], [1], [2]]), named, r"factors must be an int64 tensor \[3, 2\]"),
        ((ok, ok), dict(**named, factor_values=[[0.0, 1.0, 2.0], [0.5]]), "factor values must list one value"),
    ]
    for (tr, te), extra, message in cases:
        with pytest.raises(DataError, match=message) as err:
            _factor_set(tr, te, **extra)
        assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="int64 tensor"):
        images = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
        bad = data.Split(images, factors=torch.tensor(ok, dtype=torch.float32))
        data.Dataset("x", bad, bad, **named)


def test_factors_follow_every_subset_and_split():
    """`Split.take`, `make_split` and `split_arrays` carry the factors with their images (issue 23)."""
    from vaelab.data.dataset import make_split, split_arrays

    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    factors = np.stack([np.arange(10), np.arange(10) % 3], axis=1)
    train, test = split_arrays(images, None, "pool", test_fraction=0.3, seed=1, factors=factors)
    for split in (train, test):
        assert split.factors[:, 0].tolist() == split.images.flatten().tolist()
    assert len(test) == 3 and sorted(train.factors[:, 0].tolist() + test.factors[:, 0].tolist()) == list(range(10))
    part = train.take(torch.tensor([2, 0]))
    assert (
        part.factors[:, 0].tolist()
        == part.images.flatten().tolist()
        == [train.images[2, 0, 0, 0], train.images[0, 0, 0, 0]]
    )
    with pytest.raises(DataError, match=r"factors must be integer value indices \[N, K\]"):
        make_split(images, None, "pool", factors=np.zeros(10))
