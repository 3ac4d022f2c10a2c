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
