"""The npz reader (vaelab.data.npz): its layouts of arrays, and every bad archive refused in one line (a member's
header is checked before its array is read)."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.helpers.fuzz import DIMS, FUZZ, fresh_dir, outcome
from vaelab import data
from vaelab.data.limits import MAX_CLASSES
from vaelab.errors import DataError


def test_npz_layouts(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)
    y = np.arange(20) % 4
    np.savez(tmp_path / "own.npz", train_images=x[:15], train_labels=y[:15], test_images=x[15:], test_labels=y[15:])
    np.savez(
        tmp_path / "keras.npz",
        x_train=x[:15, :, :, None] / 255.0,
        y_train=y[:15],
        x_test=x[15:, :, :, None] / 255.0,
        y_test=y[15:],
    )
    np.savez(tmp_path / "pool.npz", images=np.repeat(x[:, None], 3, axis=1), labels=y)
    own, keras, pool = (data.load(tmp_path / f"{n}.npz") for n in ("own", "keras", "pool"))
    assert torch.equal(own.train.images, keras.train.images)  # float [0, 1] round-trips to the same uint8
    assert own.shape == (1, 8, 8) and pool.shape == (3, 8, 8)
    assert (len(pool.train), len(pool.test)) == (16, 4)
    assert sorted(pool.test.labels.tolist()) == [0, 1, 2, 3]  # stratified


def test_npz_factors(tmp_path):
    """Factors beside the images (issue 23): per split or beside a pool (cut with it), named and sized or not."""
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (20, 6, 6), dtype=np.uint8)
    f = np.stack([np.arange(20) % 3, np.arange(20) // 4], axis=1)
    np.savez(
        tmp_path / "own.npz",
        train_images=x[:15],
        test_images=x[15:],
        train_factors=f[:15],
        test_factors=f[15:],
        factor_names=np.array(["hue", "size"]),
        factor_sizes=np.array([3, 8]),
    )
    own = data.load(tmp_path / "own.npz")
    assert own.factor_names == ["hue", "size"] and own.factor_sizes == [3, 8]
    assert own.test.factors.tolist() == f[15:].tolist() and own.train.factors.dtype == torch.int64
    np.savez(tmp_path / "pool.npz", images=x, factors=f)
    pool = data.load(tmp_path / "pool.npz")
    assert pool.factor_names == ["factor 0", "factor 1"] and pool.factor_sizes == [3, 5]
    for split in (pool.train, pool.test):  # each image keeps its own factors through the split
        rows = [int(np.flatnonzero((x == image[0].numpy()).all(axis=(1, 2)))[0]) for image in split.images]
        assert split.factors.tolist() == f[rows].tolist()
    assert data.load(tmp_path / "own.npz").factor_values is None


@pytest.mark.parametrize(
    "arrays, message",
    [
        (dict(train_factors=np.zeros((3, 1), int)), "has 'train_factors' only; give factors for both splits"),
        (dict(factors=np.zeros((5, 1), int)), "'factors' does not go with this layout"),
        (dict(train_factors=np.zeros((3, 1)), test_factors=np.zeros((2, 1))), "factors must be integer value indices"),
        (dict(factor_names=np.array(["a"])), "has factor names or sizes but no factors"),
        (
            dict(train_factors=np.zeros((3, 1), int), test_factors=np.zeros((2, 1), int), factor_names=np.array([1])),
            "must be a 1-D array of strings",
        ),
        (
            dict(train_factors=np.zeros((3, 1), int), test_factors=np.ones((2, 1), int), factor_sizes=np.array([1])),
            r"factor factor 0 ranges over \[1, 1\]; its value indices must lie in \[0, 1\)",
        ),
        (
            dict(train_factors=np.zeros((3, 1), int), test_factors=np.zeros((2, 1), int), factor_sizes=np.array([1.5])),
            "factor_sizes: must be K integers",
        ),
        (
            dict(train_factors=np.zeros((3, 2), int), test_factors=np.zeros((2, 1), int)),
            "hold different numbers of factors",
        ),
    ],
)
def test_npz_bad_factors(tmp_path, arrays, message):
    images = np.zeros((5, 4, 4), np.uint8)
    np.savez(tmp_path / "bad.npz", train_images=images[:3], test_images=images[3:], **arrays)
    with pytest.raises(DataError, match=message) as err:
        data.load(tmp_path / "bad.npz")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": np.full((4, 5, 5), 1.5)}, "must lie in \\[0, 1\\]"),
        ({"images": np.full((4, 5, 5), 300)}, "must lie in \\[0, 255\\]"),
        ({"images": np.zeros((4, 5, 5), np.uint8), "labels": np.zeros(3, int)}, "3 labels for 4 images"),
        ({"pixels": np.zeros((4, 5, 5), np.uint8)}, "found keys \\['pixels'\\]"),
        ({"images": np.zeros((4, 5), np.uint8)}, "images must be"),
        ({"images": np.full((4, 5, 5), np.nan)}, "NaN"),
    ],
)
def test_npz_bad_input(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        data.load(tmp_path / "bad.npz")


def test_npz_corrupt_file(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        data.load(tmp_path / "bad.npz")


def write_npz_member(path, key, header: dict, payload: bytes):
    import io
    import zipfile

    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{key}.npy", member.getvalue() + payload)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": np.array([["ab"] * 4] * 3)}, "holds <U2 values; store plain numbers"),  # _UFuncNoLoopError before
        ({"images": np.zeros((3, 2, 2), np.complex128)}, "complex128"),
        ({"images": np.zeros((3, 2, 2), "M8[s]")}, "datetime64"),
        ({"images": np.zeros((3, 2, 2), [("r", "u1"), ("g", "u1")])}, "store plain numbers"),
        ({"images": np.array([np.zeros(2), "x"], dtype=object)}, "never loads"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.array([0, 1, 10**12])}, "label < 10000"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.array([0, 1, 2], np.uint64) - 1}, "label < 10000"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.array([0.0, 1, np.nan])}, "whole numbers"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.array([True, False, True])}, "dtype bool"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.array(["a", "b", "c"])}, "holds <U1 values"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.eye(3)}, "look one-hot"),
        ({"images": np.zeros((3, 2, 2, 4), np.uint8)}, "neither 1 \\(grey\\) nor 3"),
        ({"images": np.zeros((3, 0, 5), np.uint8)}, "empty"),
        ({"images": np.zeros(3, np.uint8)}, "images must be"),
        ({"images": np.float32(0.5)}, "images must be"),
        ({"images": np.full((3, 2, 2), -np.inf)}, "NaN or infinite"),
        ({"images": np.full((3, 2, 2), -1, np.int8)}, "\\[0, 255\\]"),
        ({"images": np.zeros((1, 2, 2), np.uint8)}, "at least 2 images"),
        ({"x_train": np.zeros((3, 2, 2), np.uint8), "x_test": np.zeros((3, 4, 4), np.uint8)}, "test images are"),
        ({"x_train": np.zeros((3, 2, 2)), "x_test": np.zeros((0, 2, 2)), "y_train": np.zeros(3), "y_test": []}, "no"),
        ({"x_train": np.zeros((3, 2, 2)), "x_test": np.zeros((2, 2, 2)), "y_train": np.zeros(3)}, "only one of"),
    ],
)
def test_npz_values_checked(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as err:
        data.load(tmp_path / "bad.npz")
    assert "bad.npz" in str(err.value) and "\n" not in str(err.value)


def test_npz_float_labels_that_are_whole_numbers_are_accepted(tmp_path):
    np.savez(tmp_path / "k.npz", images=np.zeros((5, 2, 2), np.uint8), labels=np.array([0.0, 1, 2, 1, 0]))
    ds = data.load(tmp_path / "k.npz")
    assert ds.train.labels.dtype == torch.int64 and ds.num_classes == 3


def test_npz_headers_checked_before_reading(tmp_path):
    # a header claiming 16 TB of pixels in a 100-byte member: refused before numpy allocates it
    write_npz_member(
        tmp_path / "a.npz", "images", {"descr": "|u1", "fortran_order": False, "shape": (10**6, 8192, 8192)}, bytes(100)
    )
    with pytest.raises(DataError, match="pixels per image"):
        data.load(tmp_path / "a.npz")
    write_npz_member(
        tmp_path / "b.npz", "images", {"descr": "<f8", "fortran_order": False, "shape": (10**5, 28, 28)}, bytes(100)
    )
    with pytest.raises(DataError, match="the archive holds 100; the file is truncated or corrupt"):
        data.load(tmp_path / "b.npz")
    write_npz_member(
        tmp_path / "c.npz", "images", {"descr": "|O", "fortran_order": False, "shape": (2, 2, 2)}, b"\x80\x04N."
    )
    with pytest.raises(DataError, match="never loads"):  # a pickle: never unpickled
        data.load(tmp_path / "c.npz")


def test_npz_members_that_are_not_arrays_are_ignored(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as archive:
        archive.writestr("images", b"\0" * 64)  # numpy.load would return these raw bytes as "images"
    with pytest.raises(DataError, match="found keys \\[\\]"):
        data.load(tmp_path / "raw.npz")
    (tmp_path / "a.npy").write_bytes(b"")
    np.save(tmp_path / "a.npy", np.zeros((3, 2, 2), np.uint8))
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")  # an .npy under an .npz name
    with pytest.raises(DataError, match="not a readable .npz file"):
        data.load(tmp_path / "a.npz")


def test_npz_zip_directory_that_lies_about_sizes(tmp_path):
    import zipfile

    path = tmp_path / "lies.npz"
    write_npz_member(path, "images", {"descr": "|u1", "fortran_order": False, "shape": (4000, 1000, 1000)}, bytes(64))
    raw = bytearray(path.read_bytes())
    entry = raw.index(b"PK\x01\x02")  # the central directory's record of the member
    raw[entry + 20 : entry + 28] = struct.pack("<II", 0xFFFFFFF0, 0xFFFFFFF0)  # claims 4 GB, compressed and not
    path.write_bytes(bytes(raw))
    assert zipfile.ZipFile(path).infolist()[0].file_size == 0xFFFFFFF0
    with pytest.raises(DataError, match="the file is truncated or corrupt"):  # refused before numpy allocates 4 GB
        data.load(path)


NPZ_DTYPES = [
    np.uint8,
    np.int8,
    np.int16,
    np.uint16,
    np.int32,
    np.int64,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
    np.bool_,
    np.complex64,
    "<U3",
    "S2",
    "M8[s]",
    ">f8",
    ">u2",
]


NPZ_KEYS = [
    "train_images",
    "test_images",
    "train_labels",
    "test_labels",
    "x_train",
    "x_test",
    "y_train",
    "y_test",
    "images",
    "labels",
    "other",
]


SHAPES = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5)


@st.composite
def plausible_npz_arrays(draw) -> dict[str, np.ndarray]:
    """Arrays in one of the three layouts, as a user would save them, with at most one value or shape wrong."""
    layout = draw(
        st.sampled_from(
            [
                ("train_images", "train_labels", "test_images", "test_labels"),
                ("x_train", "y_train", "x_test", "y_test"),
                ("images", "labels"),
            ]
        )
    )
    with_labels, channels = draw(st.booleans()), draw(st.sampled_from([(), (1,), (3,), "last"]))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dtype = np.dtype(draw(st.sampled_from([np.uint8, np.float32, np.float64, np.int64, np.bool_])))
    arrays = {}
    for key in layout:
        n = draw(st.integers(1, 6))
        if key in ("train_labels", "test_labels", "y_train", "y_test", "labels"):
            if with_labels:
                arrays[key] = np.asarray(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), dtype=np.int64)
            continue
        shape = (n, h, w, 3) if channels == "last" else (n, *channels, h, w)
        elements = st.floats(0, 1) if dtype.kind == "f" else st.integers(0, 1 if dtype.kind == "b" else 255)
        arrays[key] = draw(hnp.arrays(dtype, shape, elements=elements))
    if len(arrays) > 1 and draw(st.booleans()):  # then make one array wrong in one way
        key = draw(st.sampled_from(sorted(arrays)))
        array = arrays[key]
        arrays[key] = draw(
            st.sampled_from(
                [
                    array[:0],
                    array[..., None],
                    array.astype(np.float64) * 300,
                    array.astype(np.float64) - 1,
                    np.full_like(array, np.nan, dtype=np.float64),
                    array.astype(np.complex64),
                    array.astype(str),
                    array.reshape(-1),
                    array.astype(np.int64) + MAX_CLASSES,
                ]
            )
        )
    return arrays


@st.composite
def npz_arrays(draw) -> dict[str, np.ndarray]:
    """A few arrays under the keys readers look for (and others), of any dtype and shape, values unconstrained."""
    keys = draw(st.lists(st.sampled_from(NPZ_KEYS), min_size=1, max_size=5, unique=True))
    arrays = {}
    for key in keys:
        if "label" in key or key.startswith("y_"):
            labels = st.integers(-3, 5) | st.sampled_from([MAX_CLASSES - 1, MAX_CLASSES, 10**12, -(2**63)])
            dtype = draw(st.sampled_from([np.int64, np.uint8, np.float32, np.float64, np.bool_, "<U2"]))
            n = draw(st.integers(0, 6))
            try:
                arrays[key] = np.array(draw(st.lists(labels, min_size=n, max_size=n)), dtype=dtype)
            except OverflowError:
                arrays[key] = np.array(draw(st.lists(labels, min_size=n, max_size=n)), dtype=np.int64)
        else:
            arrays[key] = draw(hnp.arrays(np.dtype(draw(st.sampled_from(NPZ_DTYPES))), SHAPES))
    return arrays


@FUZZ
@given(arrays=plausible_npz_arrays() | npz_arrays(), compressed=st.booleans())
@example(arrays={"images": np.array([["ab"] * 4] * 3)}, compressed=False)  # strings: a ufunc error before
@example(arrays={"images": np.zeros((4, 3, 3), np.uint8), "labels": np.array([0, 1, 2, 10**12])}, compressed=False)
@example(arrays={"images": np.zeros((3, 3, 3), np.uint8), "labels": np.array([0, 1, 2], np.uint64) - 1}, compressed=0)
@example(arrays={"images": np.zeros((2, 2, 2), np.complex64)}, compressed=True)
def test_fuzz_npz_values(scratch, arrays, compressed):
    """Found by fuzzing: a property test (Hypothesis)."""
    with fresh_dir(scratch) as folder:
        (np.savez_compressed if compressed else np.savez)(folder / "x.npz", **arrays)
        outcome(data.load, folder / "x.npz")


def npy_member(shape: tuple, descr: str, payload: bytes) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue() + payload


@FUZZ
@given(
    shape=st.lists(DIMS | st.sampled_from([10**12, 2**62]), max_size=5).map(tuple),
    descr=st.sampled_from(["|u1", "<f4", ">i8", "|b1", "<c8", "|O", "<U4", "|V3", "<M8[s]"]),
    payload=st.binary(max_size=400),
    key=st.sampled_from(["images", "labels", "train_images"]),
    method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
)
@example(shape=(10**6, 4096, 4096), descr="|u1", payload=b"\0" * 100, key="images", method=zipfile.ZIP_STORED)
@example(shape=(3, 2, 2), descr="|O", payload=b"\x80\x04N.", key="images", method=zipfile.ZIP_STORED)  # a pickle
def test_fuzz_npz_crafted_headers(scratch, shape, descr, payload, key, method):
    """Found by fuzzing: a property test (Hypothesis)."""
    with fresh_dir(scratch) as folder:
        with zipfile.ZipFile(folder / "x.npz", "w", compression=method) as archive:
            archive.writestr(f"{key}.npy", npy_member(shape, descr, payload))
            if key == "labels":
                archive.writestr("images.npy", npy_member((2, 2, 2), "|u1", bytes(8)))
        outcome(data.load, folder / "x.npz")


@st.composite
def damaged_npz(draw) -> bytes:
    """A valid .npz, then some bytes flipped or the end cut off."""
    buffer = io.BytesIO()
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    save = np.savez_compressed if draw(st.booleans()) else np.savez
    save(buffer, images=rng.integers(0, 256, (6, 4, 4), dtype=np.uint8), labels=np.arange(6) % 2)
    raw = bytearray(buffer.getvalue())
    for at in draw(st.lists(st.integers(0, len(raw) - 1), max_size=4)):
        raw[at] ^= draw(st.integers(1, 255))
    return bytes(raw[: draw(st.integers(0, len(raw)))] if draw(st.booleans()) else raw)


@FUZZ
@given(raw=damaged_npz() | st.binary(max_size=300).map(lambda b: b"PK\x03\x04" + b))
def test_fuzz_npz_damaged_bytes(scratch, raw):
    """Found by fuzzing: a property test (Hypothesis)."""
    with fresh_dir(scratch) as folder:
        (folder / "x.npz").write_bytes(raw)
        outcome(data.load, folder / "x.npz")
