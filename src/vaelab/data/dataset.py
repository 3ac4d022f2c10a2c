"""The one data-set type of vaelab: uint8 images `[N, C, H, W]`, optional labels, optional factors, a train/test split.

Factors are the known generative factors of a synthetic set (dSprites: shape, scale, orientation, x, y): per image,
one value index per factor, with the factors' names and numbers of values on the `Dataset`.

`Dataset` validates itself when it is built (shapes, dtypes, labels in range and consistent with the
class names), so no reader, and no caller that builds one by hand, can hand an absurd set to training.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from vaelab.data.files import one_line
from vaelab.data.limits import MAX_CLASSES, MAX_IMAGE_PIXELS, image_layout
from vaelab.errors import DataError


@dataclass(frozen=True)
class Split:
    """One split of a data set. `images`: uint8 `[N, C, H, W]`; `labels`: int64 `[N]` or None; `factors`: int64
    `[N, K]` value indices (factor k's in `[0, factor_sizes[k])`) or None."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    factors: torch.Tensor | None = None

    def take(self, index) -> Split:
        """The images (and their labels and factors) at `index` (a slice, or an index tensor / array)."""
        pick = lambda t: None if t is None else t[index]
        return Split(self.images[index], pick(self.labels), pick(self.factors))

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass(frozen=True)
class Dataset:
    """A named data set with `.train` and `.test` splits of the same image shape.

    Built only from valid parts: each split holds at least one uint8 `[N, C, H, W]` image (C = 1 or 3),
    both splits have the same image shape, labels are given for both or neither, and each label is an
    int64 class index in `[0, num_classes)` with at most `MAX_CLASSES` classes. Anything else is a `DataError`.
    """

    name: str
    train: Split
    test: Split
    classes: list[str] | None = field(default=None)
    source: str = ""
    factor_names: list[str] | None = None  # one name per factor (column of `Split.factors`)
    factor_sizes: list[int] | None = None  # the number of values of each factor
    factor_values: list[list[float]] | None = None  # optional: the real value of each index (dSprites' scales)

    def __post_init__(self) -> None:
        try:
            check_dataset(self)
        except DataError as exc:  # names and class names may hold control characters: keep the message one line
            raise DataError(one_line(str(exc))) from None

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

    @property
    def has_factors(self) -> bool:
        return self.train.factors is not None


def check_dataset(dataset: Dataset) -> None:
    """The checks of `Dataset`'s constructor; cheap (a min and a max over the labels), run once per set."""
    origin = dataset.source or dataset.name
    for split_name in ("train", "test"):
        split = getattr(dataset, split_name)
        if not isinstance(split, Split):
            raise DataError(f"{origin}: the {split_name} split must be a Split, got {type(split).__name__}")
        _check_images(split.images, f"{origin} ({split_name} split)")
    if dataset.train.images.shape[1:] != dataset.test.images.shape[1:]:
        raise DataError(
            f"{origin}: train images are {list(dataset.train.images.shape[1:])} "
            f"but test images are {list(dataset.test.images.shape[1:])}"
        )
    _check_factors(dataset, origin)
    if (dataset.train.labels is None) != (dataset.test.labels is None):
        raise DataError(f"{origin}: labels are given for one split but not the other")
    if dataset.train.labels is None:
        if dataset.classes is not None:
            raise DataError(f"{origin}: class names are given but the images have no labels")
        return
    ranges = [_label_range(getattr(dataset, s), f"{origin} ({s} split)") for s in ("train", "test")]
    lo, hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
    if lo < 0 or hi >= MAX_CLASSES:
        raise DataError(
            f"{origin}: labels range over [{lo}, {hi}]; they must be class indices 0 <= label < {MAX_CLASSES}"
        )
    if dataset.classes is not None:
        _check_classes(dataset.classes, hi, origin)


def _check_factors(dataset: Dataset, origin: str) -> None:
    """Factors are given for both splits or neither, with a name and a number of values per factor, each index in
    range (a max over `[N, K]`, cheap)."""
    train, test = dataset.train.factors, dataset.test.factors
    names, sizes, values = dataset.factor_names, dataset.factor_sizes, dataset.factor_values
    if (train is None) != (test is None):
        raise DataError(f"{origin}: factors are given for one split but not the other")
    if train is None:
        if names is not None or sizes is not None or values is not None:
            raise DataError(f"{origin}: factor names or sizes are given but the images have no factors")
        return
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names) or not names:
        raise DataError(f"{origin}: the factors need their names (a non-empty list of non-empty strings)")
    if len(set(names)) != len(names):
        raise DataError(f"{origin}: factor names must differ, got {', '.join(names)}")
    if not isinstance(sizes, list) or len(sizes) != len(names):
        got = len(sizes) if isinstance(sizes, list) else type(sizes).__name__
        raise DataError(f"{origin}: {len(names)} factor names but {got} factor sizes; give one size per factor")
    if not all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= MAX_CLASSES for k in sizes):
        raise DataError(f"{origin}: factor sizes must be whole numbers in 1..{MAX_CLASSES}, got {sizes}")
    if values is not None and (
        not isinstance(values, list) or len(values) != len(sizes) or any(len(v) != k for v, k in zip(values, sizes))
    ):
        raise DataError(f"{origin}: factor values must list one value per index of each factor (sizes {sizes})")
    for split_name, factors in (("train", train), ("test", test)):
        n = len(getattr(dataset, split_name))
        if not isinstance(factors, torch.Tensor) or factors.dtype != torch.int64 or factors.shape != (n, len(names)):
            got = (
                f"{factors.dtype} {list(factors.shape)}"
                if isinstance(factors, torch.Tensor)
                else type(factors).__name__
            )
            raise DataError(
                f"{origin} ({split_name} split): factors must be an int64 tensor [{n}, {len(names)}] "
                f"(one value index per image and factor), got {got}"
            )
        low, high = factors.min(0).values.tolist(), factors.max(0).values.tolist()
        for name, size, lo, hi in zip(names, sizes, low, high):
            if lo < 0 or hi >= size:
                raise DataError(
                    f"{origin} ({split_name} split): factor {name} ranges over [{lo}, {hi}]; "
                    f"its value indices must lie in [0, {size})"
                )


def _check_images(images: object, origin: str) -> None:
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        got = f"{images.dtype} {list(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"{origin}: images must be a uint8 tensor [N, C, H, W], got {got}")
    n, c, h, w = images.shape
    if n == 0:
        raise DataError(f"{origin}: holds no images")
    if c not in (1, 3):
        raise DataError(f"{origin}: images must have 1 or 3 channels, got {c}")
    if h == 0 or w == 0 or h * w > MAX_IMAGE_PIXELS:
        raise DataError(f"{origin}: images of {h} x {w} pixels; each must have between 1 and {MAX_IMAGE_PIXELS} pixels")


def _label_range(split: Split, origin: str) -> tuple[int, int]:
    labels = split.labels
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64 or labels.shape != (len(split),):
        got = f"{labels.dtype} {list(labels.shape)}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise DataError(f"{origin}: labels must be an int64 tensor [{len(split)}] (one per image), got {got}")
    return int(labels.min()), int(labels.max())


def _check_classes(classes: object, max_label: int, origin: str) -> None:
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise DataError(f"{origin}: class names must be a list of strings, got {type(classes).__name__}")
    if not 1 <= len(classes) <= MAX_CLASSES:
        raise DataError(f"{origin}: {len(classes)} class names; give between 1 and {MAX_CLASSES}")
    if max_label >= len(classes):
        raise DataError(
            f"{origin}: label {max_label} has no class name (only {len(classes)} classes: "
            f"{', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''})"
        )


def label_array(labels: object, n: int, origin: str) -> np.ndarray:
    """Labels as int64 class indices `[n]`, checked before anything uses them as indices or counts.

    Accepts integers, or floats that are whole numbers (Keras files often store `3.0`). Each must lie in
    `[0, MAX_CLASSES)`: a label of 10^12 would make a label histogram allocate terabytes.
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "uif":
        raise DataError(f"{origin}: labels must be integer class indices, got dtype {labels.dtype}")
    if labels.ndim == 2 and labels.shape[0] == n and labels.shape[1] > 1:
        raise DataError(
            f"{origin}: labels of shape {list(labels.shape)} look one-hot; store class indices (argmax), one per image"
        )
    if labels.ndim != 1 or labels.shape[0] != n:
        raise DataError(
            f"{origin}: {labels.shape[0] if labels.ndim else 0} labels for {n} images; give exactly one label per image"
        )
    if labels.size == 0:
        return labels.astype(np.int64)
    if labels.dtype.kind == "f" and not (np.isfinite(labels).all() and (labels == np.round(labels)).all()):
        raise DataError(f"{origin}: labels must be whole numbers (class indices), found NaN, infinite or fractional")
    lo, hi = labels.min(), labels.max()
    if lo < 0 or hi >= MAX_CLASSES:
        raise DataError(
            f"{origin}: labels range over [{lo:.0f}, {hi:.0f}]; they must be class indices 0 <= label < {MAX_CLASSES}"
        )
    return labels.astype(np.int64)


def make_split(images: np.ndarray, labels: np.ndarray | None, origin: str, factors: np.ndarray | None = None) -> Split:
    """Validate numpy arrays and wrap them (without copying where possible) as a `Split`.

    `images` must be uint8 `[N, C, H, W]`; `labels`, if given, class indices with one per image; `factors`, if
    given, integer value indices `[N, K]` (checked against the factors' sizes by the `Dataset`).
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
        label_tensor = torch.from_numpy(label_array(labels, images.shape[0], origin))
    factor_tensor = None
    if factors is not None:
        factors = np.asarray(factors)
        if factors.dtype.kind not in "ui" or factors.ndim != 2 or factors.shape[0] != images.shape[0]:
            raise DataError(
                f"{origin}: factors must be integer value indices [N, K] with one row per image, "
                f"got {factors.dtype} {list(factors.shape)}"
            )
        factor_tensor = torch.from_numpy(factors.astype(np.int64))
    return Split(torch.from_numpy(np.ascontiguousarray(images)), label_tensor, factor_tensor)


def make_dataset(
    name: str,
    train: Split,
    test: Split,
    classes: list[str] | None = None,
    source: str = "",
    **factors,
) -> Dataset:
    """Build the `Dataset` (its constructor checks that the two splits agree); `factors`: `factor_names`,
    `factor_sizes`, `factor_values`."""
    return Dataset(name=name, train=train, test=test, classes=classes, source=source, **factors)


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
    classes, counts = np.unique(labels, return_counts=True)
    # members of each class in ascending index order, in one sort (not one scan of the labels per class)
    groups = np.split(np.argsort(labels, kind="stable"), np.cumsum(counts)[:-1])
    exact = counts * test_fraction
    n_test = np.floor(exact).astype(int)
    short = max(1, int(round(len(labels) * test_fraction))) - n_test.sum()
    n_test[np.argsort(-(exact - n_test), kind="stable")[:short]] += 1
    train_idx, test_idx = [], []
    for members, k in zip(groups, n_test):
        members = members[rng.permutation(members.size)]
        test_idx.append(members[:k])
        train_idx.append(members[k:])
    return rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(test_idx))


def split_arrays(
    images: np.ndarray,
    labels: np.ndarray | None,
    origin: str,
    test_fraction: float = 0.2,
    seed: int = 0,
    factors: np.ndarray | None = None,
) -> tuple[Split, Split]:
    """Split one pool of images (and their factors, if any) into train/test (seeded, stratified by label when there
    are labels)."""
    if images.shape[0] < 2:
        raise DataError(f"{origin}: needs at least 2 images to make a train and a test split")
    if labels is not None:
        labels = label_array(labels, images.shape[0], origin)  # checked before they are counted per class
    train_idx, test_idx = stratified_split(labels, test_fraction, seed, n=images.shape[0])
    pick = lambda a, i: None if a is None else a[i]
    return (
        make_split(images[train_idx], pick(labels, train_idx), origin, pick(factors, train_idx)),
        make_split(images[test_idx], pick(labels, test_idx), origin, pick(factors, test_idx)),
    )


def to_uint8_images(array: np.ndarray, origin: str) -> np.ndarray:
    """Bring an image array to uint8 `[N, C, H, W]`.

    Accepts `[N, H, W]`, `[N, C, H, W]` or `[N, H, W, C]` (C = 1 or 3); uint8 as is, other integers in
    [0, 255], floats in [0, 1] (scaled by 255 and rounded), booleans (0 or 255). Anything else is an error.
    """
    if array.dtype.kind not in "uifb":
        raise DataError(
            f"{origin}: images must be numbers (uint8 in [0, 255] or float in [0, 1]), got dtype {array.dtype}"
        )
    n, c, h, w, channels_last = image_layout(array.shape, origin)
    array = array.transpose(0, 3, 1, 2) if channels_last else array.reshape(n, c, h, w)
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError(f"{origin}: images hold NaN or infinite values")
    lo, hi = array.min(), array.max()
    if array.dtype.kind in "ui":
        if lo < 0 or hi > 255:
            raise DataError(f"{origin}: integer pixel values must lie in [0, 255], found [{lo}, {hi}]")
        return array.astype(np.uint8)
    if lo < 0.0 or hi > 1.0:
        raise DataError(
            f"{origin}: float pixel values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]; "
            "rescale them, or store uint8 in [0, 255]"
        )
    return np.rint(array * 255.0).astype(np.uint8)
