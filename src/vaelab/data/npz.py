"""Reader for `.npz` arrays.

Accepted keys (the first group found is used):
- `train_images`, `test_images`, optional `train_labels`, `test_labels` (vaelab's own layout);
- `x_train`, `x_test`, optional `y_train`, `y_test` (the Keras layout);
- `images`, optional `labels`: one pool, split 80/20 (seeded, stratified by label).
Images are uint8 in [0, 255] or float in [0, 1], shaped `[N, H, W]`, `[N, C, H, W]` or `[N, H, W, C]`.
The file is read with `allow_pickle=False`: object arrays are refused.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from vaelab.data.dataset import Dataset, make_dataset, make_split, split_arrays, to_uint8_images
from vaelab.errors import DataError

LAYOUTS = [
    ("train_images", "train_labels", "test_images", "test_labels"),
    ("x_train", "y_train", "x_test", "y_test"),
]


def load_npz(path: str | Path, name: str | None = None) -> Dataset:
    path = Path(path)
    name = name or path.stem
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None

    for x_tr, y_tr, x_te, y_te in LAYOUTS:
        if x_tr in arrays and x_te in arrays:
            if (y_tr in arrays) != (y_te in arrays):
                raise DataError(
                    f"{path}: has only one of '{y_tr}' and '{y_te}'; give labels for both splits or neither"
                )
            train = make_split(to_uint8_images(arrays[x_tr], f"{path}[{x_tr}]"), arrays.get(y_tr), f"{path}[{x_tr}]")
            test = make_split(to_uint8_images(arrays[x_te], f"{path}[{x_te}]"), arrays.get(y_te), f"{path}[{x_te}]")
            return make_dataset(name, train, test, source=str(path))
    if "images" in arrays:
        images = to_uint8_images(arrays["images"], f"{path}[images]")
        labels = arrays.get("labels")
        if labels is not None:
            make_split(images, labels, f"{path}[labels]")  # validates count and type before splitting
        train, test = split_arrays(images, labels, str(path))
        return make_dataset(name, train, test, source=str(path))
    raise DataError(
        f"{path}: found keys {sorted(arrays)}; expected 'train_images'/'test_images', "
        "'x_train'/'x_test' or 'images' (see `vaelab data --help`)"
    )
