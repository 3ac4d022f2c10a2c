"""The one data-set type of vaelab: uint8 images `[N, C, H, W]`, optional labels, a train/test split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from vaelab.errors import DataError


@dataclass(frozen=True)
class Split:
    """One split of a data set. `images`: uint8 `[N, C, H, W]`; `labels`: int64 `[N]` or None."""

    images: torch.Tensor
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass(frozen=True)
class Dataset:
    """A named data set with `.train` and `.test` splits of the same image shape."""

    name: str
    train: Split
    test: Split
    classes: list[str] | None = field(default=None)
    source: str = ""

    @property
    def shape(self) -> tuple[int, int, int]:
        """Image shape `(C, H, W)`."""
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int | None:
        if self.classes is not None:
            return len(self.classes)
        if self.train.labels is None:
            return None
        return int(max(self.train.labels.max(), self.test.labels.max())) + 1


def make_split(images: np.ndarray, labels: np.ndarray | None, origin: str) -> Split:
    """Validate numpy arrays and wrap them (without copying where possible) as a `Split`.

    `images` must be uint8 `[N, C, H, W]`; `labels`, if given, integers in [0, 2^31) with one per image.
    `origin` names the file or folder in error messages.
    """
    if images.dtype != np.uint8:
        raise DataError(f"{origin}: images must be uint8, got {images.dtype}")
    if images.ndim != 4:
        raise DataError(f"{origin}: images must have shape [N, C, H, W], got {list(images.shape)}")
    if images.shape[0] == 0:
        raise DataError(f"{origin}: holds no images")
    if images.shape[1] not in (1, 3):
        raise DataError(f"{origin}: images must have 1 or 3 channels, got {images.shape[1]}")
    label_tensor = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError(
                f"{origin}: {labels.shape[0] if labels.ndim else 0} labels for {images.shape[0]} images; "
                "give exactly one label per image"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{origin}: labels must be integers, got {labels.dtype}")
        if labels.min() < 0:
            raise DataError(f"{origin}: labels must be >= 0, found {int(labels.min())}")
        label_tensor = torch.from_numpy(labels.astype(np.int64, copy=False))
    return Split(torch.from_numpy(np.ascontiguousarray(images)), label_tensor)


def make_dataset(
    name: str,
    train: Split,
    test: Split,
    classes: list[str] | None = None,
    source: str = "",
) -> Dataset:
    """Check that the two splits agree (shape, labels present in both) and build the `Dataset`."""
    if train.images.shape[1:] != test.images.shape[1:]:
        raise DataError(
            f"{source or name}: train images are {list(train.images.shape[1:])} "
            f"but test images are {list(test.images.shape[1:])}"
        )
    if (train.labels is None) != (test.labels is None):
        raise DataError(f"{source or name}: labels are given for one split but not the other")
    return Dataset(name=name, train=train, test=test, classes=classes, source=source)


def stratified_split(labels: np.ndarray | None, test_fraction: float, seed: int, n: int | None = None):
    """Seeded train/test indices; stratified by label when labels are given.

    Each class gives `test_fraction` of its items to the test split, with largest-remainder rounding so
    the test split has exactly `round(N * test_fraction)` items (at least one). Returns `(train_idx, test_idx)`,
    each in a seeded random order, so that the first images of a split show every class.
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    if labels is None:
        assert n is not None
        order = rng.permutation(n)
        n_test = max(1, int(round(n * test_fraction)))
        return order[n_test:], order[:n_test]
    labels = np.asarray(labels)
    classes = np.unique(labels)
    counts = np.array([(labels == c).sum() for c in classes])
    exact = counts * test_fraction
    n_test = np.floor(exact).astype(int)
    short = max(1, int(round(len(labels) * test_fraction))) - n_test.sum()
    n_test[np.argsort(-(exact - n_test), kind="stable")[:short]] += 1
    train_idx, test_idx = [], []
    for c, k in zip(classes, n_test):
        members = np.flatnonzero(labels == c)[rng.permutation(int((labels == c).sum()))]
        test_idx.append(members[:k])
        train_idx.append(members[k:])
    return rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(test_idx))


def split_arrays(
    images: np.ndarray, labels: np.ndarray | None, origin: str, test_fraction: float = 0.2, seed: int = 0
) -> tuple[Split, Split]:
    """Split one pool of images into train/test (seeded, stratified by label when there are labels)."""
    if images.shape[0] < 2:
        raise DataError(f"{origin}: needs at least 2 images to make a train and a test split")
    train_idx, test_idx = stratified_split(labels, test_fraction, seed, n=images.shape[0])
    pick = lambda a, i: None if a is None else a[i]
    return (
        make_split(images[train_idx], pick(labels, train_idx), origin),
        make_split(images[test_idx], pick(labels, test_idx), origin),
    )


def to_uint8_images(array: np.ndarray, origin: str) -> np.ndarray:
    """Bring an image array to uint8 `[N, C, H, W]`.

    Accepts `[N, H, W]`, `[N, C, H, W]` or `[N, H, W, C]` (C = 1 or 3); uint8 as is, other integers in
    [0, 255], floats in [0, 1] (scaled by 255 and rounded), booleans (0 or 255). Anything else is an error.
    """
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[1] not in (1, 3) and array.shape[-1] in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    elif array.ndim != 4:
        raise DataError(f"{origin}: images must be [N, H, W], [N, C, H, W] or [N, H, W, C], got {list(array.shape)}")
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.size == 0:
        raise DataError(f"{origin}: holds no images")
    lo, hi = array.min(), array.max()
    if np.issubdtype(array.dtype, np.integer):
        if lo < 0 or hi > 255:
            raise DataError(f"{origin}: integer pixel values must lie in [0, 255], found [{lo}, {hi}]")
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise DataError(f"{origin}: images hold NaN or infinite values")
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{origin}: float pixel values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]; "
                "rescale them, or store uint8 in [0, 255]"
            )
        return np.rint(array * 255.0).astype(np.uint8)
    raise DataError(f"{origin}: unsupported image dtype {array.dtype}")
