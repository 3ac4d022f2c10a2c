"""Reader for IDX files, the format of MNIST, Fashion-MNIST and KMNIST (gzipped or not).

Layout (LeCun et al.): 2 zero bytes, a type byte, the number of dimensions, then each dimension as a
big-endian uint32, then the values, big-endian, row-major.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from vaelab.data.dataset import Dataset, make_dataset, make_split, split_arrays, to_uint8_images
from vaelab.errors import DataError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

# The usual four files of an MNIST-like directory; each pattern allows the common spellings
# (`train-images-idx3-ubyte`, `train-images.idx3-ubyte`, with or without `.gz`).
ROLES = {
    "train_images": "train-images*idx3*",
    "train_labels": "train-labels*idx1*",
    "test_images": "t10k-images*idx3*",
    "test_labels": "t10k-labels*idx1*",
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (plain or gzipped) into a numpy array in native byte order."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read or decompress ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX header declares shape {list(shape)} ({expected} bytes of data) "
            f"but the file holds {len(raw) - header}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx_files(directory: Path) -> dict[str, Path]:
    """Map each role of ROLES to its file in `directory`; an error names what is missing or ambiguous."""
    found = {}
    for role, pattern in ROLES.items():
        matches = sorted(p for p in directory.glob(pattern) if p.is_file())
        if len(matches) > 1:
            # prefer the uncompressed copy when both `x` and `x.gz` are present
            plain = [p for p in matches if p.suffix != ".gz"]
            matches = plain if len(plain) == 1 else matches
        if len(matches) != 1:
            what = "no file" if not matches else f"{len(matches)} files"
            raise DataError(f"{directory}: {what} matching {pattern} (an IDX directory needs the usual four files)")
        found[role] = matches[0]
    return found


def is_idx_directory(directory: Path) -> bool:
    return any(directory.glob("*idx[13]*"))


def _labels(path: Path) -> np.ndarray:
    labels = read_idx(path)
    if labels.ndim != 1:
        raise DataError(f"{path}: a label file must be 1-D, got shape {list(labels.shape)}")
    return labels.astype(np.int64)


def load_idx(
    train_images: str | Path,
    train_labels: str | Path | None = None,
    test_images: str | Path | None = None,
    test_labels: str | Path | None = None,
    name: str | None = None,
) -> Dataset:
    """Load IDX files given explicitly. Without `test_images`, the training pool is split 80/20 (seeded)."""
    train_images = Path(train_images)
    name = name or train_images.parent.name or "idx"
    x_train = to_uint8_images(read_idx(train_images), str(train_images))
    y_train = _labels(Path(train_labels)) if train_labels else None
    if test_images is None:
        train, test = split_arrays(x_train, y_train, str(train_images))
        return make_dataset(name, train, test, source=str(train_images))
    if (test_labels is None) != (train_labels is None):
        raise DataError(f"{train_images}: give label files for both splits or for neither")
    test_images = Path(test_images)
    x_test = to_uint8_images(read_idx(test_images), str(test_images))
    y_test = _labels(Path(test_labels)) if test_labels else None
    train = make_split(x_train, y_train, f"{train_images} + its labels")
    test = make_split(x_test, y_test, f"{test_images} + its labels")
    return make_dataset(name, train, test, source=str(train_images.parent))


def load_idx_directory(directory: str | Path, name: str | None = None) -> Dataset:
    directory = Path(directory)
    files = find_idx_files(directory)
    return load_idx(**{k: str(v) for k, v in files.items()}, name=name or directory.name)
