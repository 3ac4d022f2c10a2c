"""Reader for `.npz` arrays.

Accepted keys (the first group found is used):
- `train_images`, `test_images`, optional `train_labels`, `test_labels` (vaelab's own layout);
- `x_train`, `x_test`, optional `y_train`, `y_test` (the Keras layout);
- `images`, optional `labels`: one pool, split 80/20 (seeded, stratified by label).
Images are uint8 in [0, 255] or float in [0, 1], shaped `[N, H, W]`, `[N, C, H, W]` or `[N, H, W, C]`.
Known generative factors, optional: `train_factors` and `test_factors` (or `factors` beside a pool), integer value
indices `[N, K]`, with optional `factor_names` (K strings) and `factor_sizes` (K integers; default: the largest
index + 1); the disentanglement metrics of `vaelab eval` use them.

Nothing is unpickled: each array's `.npy` header is read first and only plain numbers (integers, floats,
booleans) are accepted; the declared shape is checked against the bytes the archive holds, against sane
image sizes and against this machine's memory before the array itself is read (with `allow_pickle=False`).
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vaelab.data import files
from vaelab.data.dataset import Dataset, make_dataset, make_split, split_arrays, to_uint8_images
from vaelab.data.files import shown
from vaelab.data.limits import check_memory, image_layout, nbytes, shape_text
from vaelab.errors import DataError

LAYOUTS = [
    ("train_images", "train_labels", "test_images", "test_labels"),
    ("x_train", "y_train", "x_test", "y_test"),
]
_IMAGE_KEYS = {"train_images", "test_images", "x_train", "x_test", "images"}
FACTOR_KEYS = ("train_factors", "test_factors", "factors", "factor_names", "factor_sizes")
_DEFLATE_MAX_RATIO = 1032  # deflate's best compression: a member cannot expand more than this


@contextlib.contextmanager
def _parsing(path: Path, key: str = "") -> Iterator[None]:
    """zipfile and numpy's header reader raise many kinds of exception on a hostile file (BadZipFile,
    zlib.error, EOFError, NotImplementedError for an unknown compression, RuntimeError for an encrypted
    member, ValueError...): each means the file cannot be read, and is said so in one line."""
    try:
        yield
    except (DataError, MemoryError):
        raise
    except Exception as exc:
        where = f"[{key}]" if key else ""
        raise DataError(
            f"{shown(path)}{where}: not a readable .npz file ({exc.__class__.__name__}: {exc}); "
            "write it with numpy.savez"
        ) from None


def _layout(path: Path, keys: set[str]) -> tuple[str, ...]:
    """The keys to read, in the order (train images, train labels, test images, test labels) or (images, labels)."""
    for x_tr, y_tr, x_te, y_te in LAYOUTS:
        if x_tr in keys and x_te in keys:
            if (y_tr in keys) != (y_te in keys):
                raise DataError(
                    f"{shown(path)}: has only one of '{y_tr}' and '{y_te}'; give labels for both splits or neither"
                )
            return (x_tr, y_tr, x_te, y_te) if y_tr in keys else (x_tr, x_te)
    if "images" in keys:
        return ("images", "labels") if "labels" in keys else ("images",)
    listed = sorted(keys)[:10] + (["..."] if len(keys) > 10 else [])
    raise DataError(
        f"{shown(path)}: found keys {listed}; expected 'train_images'/'test_images', "
        "'x_train'/'x_test' or 'images' (see `vaelab data --help`)"
    )


def _check_header(path: Path, key: str, info: zipfile.ZipInfo, archive: zipfile.ZipFile, file_size: int) -> int:
    """Check one member's `.npy` header against reality (the member's declared sizes, and the archive's real
    size, since a zip's directory can lie too); return the bytes its data will take."""
    origin = f"{shown(path)}[{key}]"
    with _parsing(path, key), archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise DataError(f"{origin}: .npy format version {version} is not supported; write it with numpy.savez")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(member)
        header = member.tell()
    if dtype.hasobject:
        raise DataError(
            f"{origin}: holds Python objects (a pickled array), which vaelab never loads; "
            "store plain numbers (uint8 or float images, integer labels)"
        )
    if key == "factor_names" and (dtype.kind != "U" or len(shape) != 1):
        raise DataError(f"{origin}: must be a 1-D array of strings (one name per factor), got {dtype} {list(shape)}")
    if dtype.kind not in "uifb" and key != "factor_names":
        raise DataError(f"{origin}: holds {dtype} values; store plain numbers (uint8 or float images, integer labels)")
    if key in _IMAGE_KEYS:
        image_layout(shape, origin)
    size = nbytes(shape, dtype.itemsize)
    if size > info.file_size - header or size > _DEFLATE_MAX_RATIO * min(info.compress_size, file_size) + header:
        raise DataError(
            f"{origin}: declares shape {shape_text(shape)} ({size} bytes) but the archive holds "
            f"{max(info.file_size - header, 0)}; the file is truncated or corrupt"
        )
    return size


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of the layout found in the archive, each checked by its header before it is read."""
    with files.open_file(path) as handle:
        with _parsing(path):
            archive = zipfile.ZipFile(handle)
        with archive:
            # numpy.load exposes a member without the `.npy` suffix as raw bytes: such members are not arrays
            members = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}
            keys = _layout(path, set(members))
            keys += tuple(key for key in FACTOR_KEYS if key in members)
            file_size = os.fstat(handle.fileno()).st_size
            sizes = [_check_header(path, key, members[key], archive, file_size) for key in keys]
            check_memory(sum(sizes), shown(path), "its arrays")
            arrays = {}
            for key in keys:
                with _parsing(path, key), archive.open(members[key]) as member:
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


@files.one_line_errors
def load_npz(path: str | Path, name: str | None = None) -> Dataset:
    path = Path(path)
    name = name or path.stem
    arrays = read_arrays(path)
    at = lambda key: f"{shown(path)}[{key}]"
    keys = [key for key in arrays if key not in FACTOR_KEYS]  # in the order of _layout
    if keys[0] == "images":
        images = to_uint8_images(arrays["images"], at("images"))
        pool = _factor_arrays(path, arrays, ("factors",))
        train, test = split_arrays(
            images,
            arrays.get("labels"),
            at("labels") if "labels" in arrays else shown(path),
            factors=pool[0] if pool else None,
        )
        return make_dataset(name, train, test, source=str(path), **_factor_fields(arrays, [train, test]))
    x_tr, y_tr, x_te, y_te = keys if len(keys) == 4 else (keys[0], None, keys[1], None)
    label = lambda key: None if key is None else arrays[key]
    factors = _factor_arrays(path, arrays, ("train_factors", "test_factors")) or (None, None)
    train = make_split(to_uint8_images(arrays[x_tr], at(x_tr)), label(y_tr), at(x_tr), factors[0])
    test = make_split(to_uint8_images(arrays[x_te], at(x_te)), label(y_te), at(x_te), factors[1])
    return make_dataset(name, train, test, source=str(path), **_factor_fields(arrays, [train, test]))


def _factor_arrays(path: Path, arrays: dict[str, np.ndarray], keys: tuple[str, ...]) -> list[np.ndarray] | None:
    """The factor arrays of this layout (all of `keys` or none), checked to be integer `[N, K]`."""
    present = [key for key in keys if key in arrays]
    other = [key for key in ("train_factors", "test_factors", "factors") if key in arrays and key not in keys]
    if other:
        raise DataError(f"{shown(path)}: '{other[0]}' does not go with this layout; use {' and '.join(keys)}")
    if not present:
        if "factor_names" in arrays or "factor_sizes" in arrays:
            raise DataError(f"{shown(path)}: has factor names or sizes but no factors ({' and '.join(keys)})")
        return None
    if len(present) != len(keys):
        raise DataError(f"{shown(path)}: has '{present[0]}' only; give factors for both splits or neither")
    for key in keys:
        if arrays[key].dtype.kind not in "ui" or arrays[key].ndim != 2:
            raise DataError(
                f"{shown(path)}[{key}]: factors must be integer value indices [N, K], "
                f"got {arrays[key].dtype} {list(arrays[key].shape)}"
            )
    widths = {arrays[key].shape[1] for key in keys}
    if len(widths) > 1:
        raise DataError(f"{shown(path)}: {' and '.join(keys)} hold different numbers of factors ({sorted(widths)})")
    return [arrays[key] for key in keys]


def _factor_fields(arrays: dict[str, np.ndarray], splits) -> dict:
    """`factor_names` and `factor_sizes` for the Dataset (checked there): as stored, or `factor k` and the largest
    index + 1."""
    if splits[0].factors is None:
        return {}
    k = splits[0].factors.shape[1]
    if "factor_sizes" in arrays:
        stored = arrays["factor_sizes"]
        if stored.dtype.kind not in "ui" or stored.ndim != 1:
            raise DataError(
                f"factor_sizes: must be K integers, one per factor, got {stored.dtype} {list(stored.shape)}"
            )
        sizes = [int(v) for v in stored]
    else:
        sizes = [int(max(s.factors[:, j].max() for s in splits)) + 1 for j in range(k)]
    names = [str(v) for v in arrays["factor_names"]] if "factor_names" in arrays else [f"factor {j}" for j in range(k)]
    return {"factor_names": names, "factor_sizes": sizes}
