"""Reader for IDX files, the format of MNIST, Fashion-MNIST and KMNIST (gzipped or not).

Layout (LeCun et al.): 2 zero bytes, a type byte, the number of dimensions, then each dimension as a
big-endian uint32, then the values, big-endian, row-major.

The header is read and checked first (dimensions, their product against the bytes the file can hold,
image sizes, memory), then exactly the declared bytes are read into one buffer: a lying header costs an
error message, never an allocation of what it claims.
"""

from __future__ import annotations

import fnmatch
import gzip
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from vaelab.data import files
from vaelab.data.dataset import Dataset, make_dataset, make_split, split_arrays, to_uint8_images
from vaelab.data.files import shown
from vaelab.data.limits import check_memory, image_layout, nbytes, shape_text
from vaelab.errors import DataError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# Deflate never compresses better than about 1032:1, so a gzipped file of S bytes holds at most this
# many bytes per byte: a header claiming more is a lie told before anything is decompressed.
_DEFLATE_MAX_RATIO = 1032
_NDIMS = {"images": (3, 4), "labels": (1,)}

# The usual four files of an MNIST-like directory; each pattern allows the common spellings
# (`train-images-idx3-ubyte`, `train-images.idx3-ubyte`, with or without `.gz`).
ROLES = {
    "train_images": "train-images*idx3*",
    "train_labels": "train-labels*idx1*",
    "test_images": "t10k-images*idx3*",
    "test_labels": "t10k-labels*idx1*",
}


def read_idx(path: str | Path, kind: str | None = None) -> np.ndarray:
    """Read one IDX file (plain or gzipped) into a numpy array in native byte order.

    `kind` ("images" or "labels") also checks the declared shape for that role before the data is read.
    """
    path = Path(path)
    with files.open_file(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            gzipped = handle.read(2) == b"\x1f\x8b"
            handle.seek(0)
            stream = gzip.GzipFile(fileobj=handle, mode="rb") if gzipped else handle
            shape, dtype, header = _read_header(stream, path, kind)
            expected = nbytes(shape, dtype.itemsize)
            _check_claim(path, shape, expected, size, header, gzipped)
            buffer = _read_exactly(stream, expected, path, shape)
            if stream.read(1):  # also makes gzip check its CRC
                raise DataError(
                    f"{shown(path)}: holds more data than its IDX header declares ({shape_text(shape)}); the file is corrupt"
                )
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{shown(path)}: cannot read or decompress ({files.reason(exc)})") from None
    array = buffer.view(dtype).reshape(shape)
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder())
    return array


def _read_header(stream: BinaryIO, path: Path, kind: str | None) -> tuple[tuple[int, ...], np.dtype, int]:
    """`(shape, dtype, header length)` from the magic number and the dimensions, checked for `kind`."""
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _TYPES:
        raise DataError(
            f"{shown(path)}: not an IDX file (bad magic number {magic.hex() or 'empty'}; "
            "expected 0000 then a type code 08, 09, 0b, 0c, 0d or 0e)"
        )
    ndim = magic[3]
    dims = stream.read(4 * ndim)
    if ndim == 0 or len(dims) < 4 * ndim:
        raise DataError(f"{shown(path)}: truncated IDX header ({ndim} dimensions declared); the file is corrupt")
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
    if kind is not None and ndim not in _NDIMS[kind]:
        need = " or ".join(map(str, _NDIMS[kind]))
        raise DataError(
            f"{shown(path)}: an IDX {kind} file has {need} dimensions, but this one declares shape {shape_text(shape)}"
        )
    if kind == "images":
        image_layout(shape, shown(path))  # image sizes and channel counts, before the data is read
    return shape, np.dtype(_TYPES[magic[2]]), 4 + 4 * ndim


def _check_claim(path: Path, shape: tuple[int, ...], expected: int, size: int, header: int, gzipped: bool) -> None:
    """Compare the bytes a header declares with what the file can hold, and with this machine's memory."""
    declared = f"IDX header declares shape {shape_text(shape)} ({expected} bytes of data)"
    if not gzipped and expected != size - header:
        raise DataError(
            f"{shown(path)}: {declared} but the file holds {size - header}; the file is truncated or corrupt"
        )
    if gzipped and expected > _DEFLATE_MAX_RATIO * size:
        raise DataError(
            f"{shown(path)}: {declared}, more than a {size}-byte gzip file can hold; the file is truncated or corrupt"
        )
    check_memory(expected, shown(path), f"its {shape_text(shape)} values")


def _read_exactly(stream: BinaryIO, count: int, path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """Read `count` bytes into one writable buffer (no second copy); a short read means a truncated file."""
    buffer = np.empty(count, dtype=np.uint8)
    view, done = memoryview(buffer), 0
    while done < count:
        got = stream.readinto(view[done : done + (1 << 24)])
        if not got:
            raise DataError(
                f"{shown(path)}: IDX header declares shape {shape_text(shape)} ({count} bytes of data) "
                f"but the file holds {done}; the file is truncated or corrupt"
            )
        done += got
    return buffer


def find_idx_files(directory: Path) -> dict[str, Path]:
    """Map each role of ROLES to its file in `directory`; an error names what is missing or ambiguous."""
    names = files.folder_entries(directory)[0]
    found = {}
    for role, pattern in ROLES.items():
        matches = [p for p in names if fnmatch.fnmatchcase(p.name, pattern)]
        if len(matches) > 1:
            # prefer the uncompressed copy when both `x` and `x.gz` are present
            plain = [p for p in matches if p.suffix != ".gz"]
            matches = plain if len(plain) == 1 else matches
        if len(matches) != 1:
            what = "no file" if not matches else f"{len(matches)} files"
            raise DataError(
                f"{shown(directory)}: {what} matching {pattern} (an IDX directory needs the usual four files)"
            )
        found[role] = matches[0]
    return found


def is_idx_directory(directory: Path) -> bool:
    return any(fnmatch.fnmatchcase(p.name, "*idx[13]*") for p in files.folder_entries(directory)[0])


def _labels(path: Path) -> np.ndarray:
    return read_idx(path, "labels")  # checked as class indices, one per image, by make_split / split_arrays


def _images(path: Path) -> np.ndarray:
    return to_uint8_images(read_idx(path, "images"), shown(path))


@files.one_line_errors
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
    if (test_labels is None) != (train_labels is None) and test_images is not None:
        raise DataError(f"{shown(train_images)}: give label files for both splits or for neither")
    if test_images is None and test_labels is not None:
        raise DataError(f"{shown(test_labels)}: test labels given without test images")
    x_train = _images(train_images)
    y_train = _labels(Path(train_labels)) if train_labels else None
    if test_images is None:
        train, test = split_arrays(x_train, y_train, shown(train_images))
        return make_dataset(name, train, test, source=str(train_images))
    test_images = Path(test_images)
    x_test = _images(test_images)
    y_test = _labels(Path(test_labels)) if test_labels else None
    train = make_split(x_train, y_train, f"{shown(train_images)} + its labels")
    test = make_split(x_test, y_test, f"{shown(test_images)} + its labels")
    return make_dataset(name, train, test, source=str(train_images.parent))


@files.one_line_errors
def load_idx_directory(directory: str | Path, name: str | None = None) -> Dataset:
    directory = Path(directory)
    found = find_idx_files(directory)
    return load_idx(**{k: str(v) for k, v in found.items()}, name=name or directory.name)
