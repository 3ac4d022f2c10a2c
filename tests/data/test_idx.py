"""The IDX reader (vaelab.data.idx): MNIST's files, plain or gzipped, one by one or as a folder, and every bad file
refused in one line (a header is checked against reality before anything big is read)."""

from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.helpers.files import (
    IDX_TYPES,
    mnist_like_dir,
    write_idx,
    write_typed_idx,
)
from tests.helpers.fuzz import DIMS, FUZZ, fresh_dir, outcome
from vaelab import data
from vaelab.errors import DataError


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory(tmp_path, gz):
    ds = data.load(mnist_like_dir(tmp_path, gz=gz))
    assert (len(ds.train), len(ds.test)) == (30, 10)
    assert ds.shape == (1, 28, 28) and ds.train.labels.dtype == torch.int64


def test_idx_explicit_paths_round_trip(tmp_path):
    images = np.arange(6 * 4 * 5, dtype=np.uint8).reshape(6, 4, 5)
    labels = np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8)
    ds = data.load_idx(
        write_idx(tmp_path / "a-idx3", images),
        write_idx(tmp_path / "a-idx1", labels),
        write_idx(tmp_path / "b-idx3", images[:2]),
        write_idx(tmp_path / "b-idx1", labels[:2]),
    )
    assert torch.equal(ds.train.images[:, 0], torch.from_numpy(images))
    assert ds.test.labels.tolist() == [0, 1]


def test_idx_float_values_are_scaled(tmp_path):
    path = write_idx(tmp_path / "x-idx3", np.full((5, 3, 3), 0.5, dtype=np.float32), type_byte=0x0D)
    ds = data.load(path)  # one file: split 80/20
    assert (len(ds.train), len(ds.test)) == (4, 1) and int(ds.train.images[0, 0, 0, 0]) == 128


def test_idx_bad_magic(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + b"\0" * 100)
    with pytest.raises(DataError, match="bad magic number"):
        data.load_idx(path)


def test_idx_truncated(tmp_path):
    directory = mnist_like_dir(tmp_path)
    path = directory / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        data.load(directory)
    assert "train-images-idx3-ubyte" in str(err.value)


def test_idx_label_count_mismatch(tmp_path):
    directory = mnist_like_dir(tmp_path)
    write_idx(directory / "t10k-labels-idx1-ubyte", np.zeros(9, dtype=np.uint8))
    with pytest.raises(DataError, match="9 labels for 10 images"):
        data.load(directory)


def test_idx_directory_missing_file(tmp_path):
    directory = mnist_like_dir(tmp_path)
    (directory / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels"):
        data.load(directory)


def test_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError, match="cannot read or decompress"):
        data.load_idx(path)


def idx_header(type_byte, shape):
    return bytes([0, 0, type_byte, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


@pytest.mark.parametrize(
    "raw, message",
    [
        # 65536^4 wrapped to 0 in numpy's int64 product: "cannot reshape array of size 0" before
        (idx_header(8, (65536, 65536, 65536, 65536)), "neither 1 \\(grey\\) nor 3 \\(RGB\\) channels"),
        (idx_header(8, (65536, 1, 65536, 65536)), "pixels per image"),
        (idx_header(8, (2**32 - 1, 28, 28)) + bytes(100), "truncated or corrupt"),
        (idx_header(8, (5,)) + bytes(5), "3 or 4 dimensions"),
        (idx_header(8, (0, 28, 28)), "holds no images"),
        (idx_header(8, (2, 0, 3)), "empty"),
        (bytes([0, 0, 8, 0]), "truncated IDX header"),
        (bytes([0, 0, 0x0A, 3]) + bytes(12), "bad magic number"),  # 0x0a is no IDX type
        (idx_header(8, (2, 1, 1)) + bytes(3), "holds 3"),  # one byte too many
        (idx_header(0x0D, (2, 1, 1)) + struct.pack(">2f", float("inf"), 0.5), "NaN or infinite"),
        (idx_header(0x0B, (2, 1, 1)) + struct.pack(">2h", 300, 0), "\\[0, 255\\]"),
    ],
)
def test_idx_header_checked_against_reality(tmp_path, raw, message):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=message) as err:
        data.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_idx_gzip_claims_checked_before_decompressing(tmp_path):
    bomb = tmp_path / "x-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(idx_header(8, (10**6, 28, 28))))  # 784 MB claimed by a 40-byte file
    with pytest.raises(DataError, match="more than a \\d+-byte gzip file can hold"):
        data.load(bomb)
    short = tmp_path / "y-idx3-ubyte.gz"
    short.write_bytes(gzip.compress(idx_header(8, (4, 2, 2)) + bytes(10)))
    with pytest.raises(DataError, match="holds 10; the file is truncated or corrupt"):
        data.load(short)
    long = tmp_path / "z-idx3-ubyte.gz"
    long.write_bytes(gzip.compress(idx_header(8, (4, 2, 2)) + bytes(17)))
    with pytest.raises(DataError, match="more data than its IDX header declares"):
        data.load(long)
    cut = tmp_path / "w-idx3-ubyte.gz"
    cut.write_bytes(gzip.compress(idx_header(8, (4, 2, 2)) + bytes(16))[:-6])  # CRC and length lost
    with pytest.raises(DataError, match="cannot read or decompress"):
        data.load(cut)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 1, 2, 10**9], ">i4"), "labels range over \\[0, 1000000000\\]"),
        (np.array([0, -1, 2, 1], ">i4"), "labels range over \\[-1, 2\\]"),
        (np.array([0, 1.5, 2, 1], ">f4"), "whole numbers"),
    ],
)
def test_idx_labels_are_class_indices(tmp_path, labels, message):
    directory = mnist_like_dir(tmp_path, n_train=4)
    type_byte = 0x0D if labels.dtype.kind == "f" else 0x0C
    (directory / "train-labels-idx1-ubyte").write_bytes(idx_header(type_byte, labels.shape) + labels.tobytes())
    with pytest.raises(DataError, match=message):
        data.load(directory)


WRAPS = ["plain", "gz", "gz-truncated", "gz-flipped", "truncated", "extra"]


def wrap(raw: bytes, how: str, at: int) -> bytes:
    """Store IDX bytes plainly or gzipped, and damage them in one of a few ways."""
    if how == "plain":
        return raw
    if how == "truncated":
        return raw[: at % (len(raw) + 1)]
    if how == "extra":
        return raw + b"\x00" * (at % 7 + 1)
    packed = gzip.compress(raw, mtime=0)
    if how == "gz-truncated":
        return packed[: at % (len(packed) + 1)]
    if how == "gz-flipped":
        i = at % len(packed)
        return packed[:i] + bytes([packed[i] ^ 0xFF]) + packed[i + 1 :]
    return packed


@st.composite
def plausible_idx_bytes(draw) -> bytes:
    """An IDX image file as a user would have it (valid header, 3 or 4 small dimensions, values in range),
    then perhaps one value out of range, or damaged bytes."""
    type_code = draw(st.sampled_from(sorted(IDX_TYPES)))
    n, h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    shape = draw(st.sampled_from([(n, h, w), (n, 1, h, w), (n, 3, h, w), (n, h, w, 3)]))
    dtype = np.dtype(IDX_TYPES[type_code])
    in_range = st.floats(0, 1, width=dtype.itemsize * 8) if dtype.kind == "f" else st.integers(0, 127)
    values = draw(hnp.arrays(dtype, shape, elements=in_range))
    if draw(st.integers(0, 3)) == 0:
        bad = [float("nan"), float("inf"), -0.5, 2.0] if dtype.kind == "f" else [-1, 256, int(np.iinfo(dtype).max)]
        bad = [v for v in bad if dtype.kind == "f" or np.iinfo(dtype).min <= v <= np.iinfo(dtype).max]
        values.flat[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from(bad))
    raw = bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + values.tobytes()
    return wrap(raw, draw(st.sampled_from(["plain"] * 6 + ["gz"] * 3 + WRAPS)), draw(st.integers(0, 10**6)))


@st.composite
def idx_bytes(draw) -> bytes:
    """An IDX file: a magic number (valid or not), dimensions (small or absurd), values of the declared type."""
    if draw(st.booleans()):
        return draw(plausible_idx_bytes())
    type_code = draw(st.sampled_from(sorted(IDX_TYPES)) | st.integers(0, 255))
    shape = draw(st.lists(DIMS, max_size=6))
    ndim = draw(st.just(len(shape)) | st.integers(0, 255))  # the header's count may disagree with the dims written
    prefix = draw(st.just(b"\x00\x00") | st.binary(min_size=2, max_size=2))
    header = prefix + bytes([type_code, ndim]) + b"".join(struct.pack(">I", d) for d in shape)
    dtype = IDX_TYPES.get(type_code)
    count = math.prod(shape)
    if dtype is not None and count * np.dtype(dtype).itemsize <= 4096 and draw(st.booleans()):
        values = draw(hnp.arrays(np.dtype(dtype), count))  # NaN, inf, negatives, 255+ included
        payload = values.tobytes()
    else:
        payload = draw(st.binary(max_size=600))
    return wrap(header + payload, draw(st.sampled_from(WRAPS)), draw(st.integers(0, 10**6)))


@FUZZ
@given(raw=st.binary(max_size=300), name=st.sampled_from(["x-idx3-ubyte", "x-idx1-ubyte.gz", "x.ubyte", "x"]))
def test_fuzz_idx_arbitrary_bytes(scratch, raw, name):
    """Found by fuzzing: a property test (Hypothesis)."""
    with fresh_dir(scratch) as folder:
        (folder / name).write_bytes(raw)
        outcome(data.load, folder / name)


@FUZZ
@given(raw=idx_bytes())
@example(raw=bytes([0, 0, 8, 4]) + struct.pack(">4I", 65536, 65536, 65536, 65536))  # product wrapped to 0 in int64
@example(raw=bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1))
@example(raw=gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", 10**6, 28, 28)))  # claims 784 MB in a tiny gz
@example(raw=bytes([0, 0, 0x0D, 3]) + struct.pack(">3I", 2, 1, 1) + struct.pack(">2f", float("nan"), 0.5))
def test_fuzz_idx_images(scratch, raw):
    """Found by fuzzing: a property test (Hypothesis)."""
    with fresh_dir(scratch) as folder:
        (folder / "train-images-idx3-ubyte").write_bytes(raw)
        outcome(data.load, folder / "train-images-idx3-ubyte")


@FUZZ
@given(
    role=st.sampled_from(["train-images", "train-labels", "t10k-images", "t10k-labels"]),
    raw=idx_bytes()
    | st.builds(lambda v: bytes([0, 0, 0x0C, 1, 0, 0, 0, 4]) + v.astype(">i4").tobytes(), hnp.arrays(np.int32, 4)),
)
@example(role="train-labels", raw=bytes([0, 0, 0x0C, 1, 0, 0, 0, 4]) + np.array([0, 1, 2, 2**31 - 1], ">i4").tobytes())
@example(role="t10k-labels", raw=bytes([0, 0, 0x09, 1, 0, 0, 0, 2]) + bytes([0, 0xFF]))  # label -1
def test_fuzz_idx_directory_with_one_bad_file(scratch, role, raw):
    """Found by fuzzing: a property test (Hypothesis)."""
    rng = np.random.default_rng(0)
    with fresh_dir(scratch) as folder:
        for prefix, n in (("train", 4), ("t10k", 2)):
            write_typed_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 5, 5)))
            write_typed_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 3)
        (folder / f"{role}-idx{1 if 'labels' in role else 3}-ubyte").write_bytes(raw)
        outcome(data.load, folder)
