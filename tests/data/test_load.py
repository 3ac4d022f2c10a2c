"""Fuzzing the data readers: whatever a file holds, `vaelab.data` answers with a valid `Dataset` or a `VaelabError`
whose message is one line, never another exception.

Inputs: arbitrary bytes, and files that are structurally valid but hold wrong values (IDX headers with
absurd dimensions, npz arrays of every dtype and shape, images of every mode, size and format, crafted
headers claiming huge images), image folders in every layout, and arbitrary paths.

The example budget is small in CI (derandomized, so CI is reproducible); for a long manual run:
    VAELAB_FUZZ=thorough python -m pytest -q tests/test_fuzz_data.py --hypothesis-show-statistics
Every failure found is kept below as an `@example` of the test that found it, or as a case of HOSTILE.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import shutil
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from vaelab import data
from vaelab.data import Dataset, Split
from vaelab.data.limits import MAX_CLASSES
from vaelab.errors import VaelabError

# Profiles are registered here rather than in conftest.py: they only concern this file.
_COMMON = dict(
    deadline=None,
    database=None,  # CI starts clean; a failure is kept as an @example below, not in a local database
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],  # no explain: slow, writes files
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("vaelab-ci", max_examples=200, derandomize=True, **_COMMON)
settings.register_profile("vaelab-thorough", max_examples=5000, **_COMMON)
FUZZ = settings.get_profile("vaelab-thorough" if os.environ.get("VAELAB_FUZZ") == "thorough" else "vaelab-ci")


# --- the property -----------------------------------------------------------------------------------------


def assert_valid(dataset: Dataset) -> None:
    """A data set vaelab can train on: uint8 [N, C, H, W] splits of one shape, labels int64 in range or None."""
    assert isinstance(dataset, Dataset)
    shape = dataset.train.images.shape[1:]
    for split in (dataset.train, dataset.test):
        images, labels = split.images, split.labels
        assert images.dtype == torch.uint8 and images.dim() == 4 and images.shape[0] >= 1
        assert images.shape[1] in (1, 3) and images.shape[1:] == shape and min(shape[1:]) >= 1
        assert (labels is None) == (dataset.train.labels is None)
        if labels is not None:
            assert labels.dtype == torch.int64 and labels.shape == (images.shape[0],)
            assert 0 <= int(labels.min()) and int(labels.max()) < dataset.num_classes <= MAX_CLASSES
    if dataset.classes is not None:
        assert all(isinstance(name, str) for name in dataset.classes)


def outcome(load, *args, **kwargs) -> str:
    """Call a loader; the result must be a valid data set or a one-line VaelabError (anything else fails the test)."""
    try:
        dataset = load(*args, **kwargs)
    except VaelabError as exc:
        message = str(exc)
        assert message and message.isprintable(), f"not a one-line message: {message!r}"
        event(f"error: {type(exc).__name__}")
        return "error"
    assert_valid(dataset)
    event("valid data set")
    return "dataset"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


class fresh_dir:  # noqa: N801 - used like tempfile.TemporaryDirectory
    """A new empty folder under `scratch` for one example, removed afterwards (a test runs hundreds)."""

    def __init__(self, scratch: Path):
        self.path = Path(tempfile.mkdtemp(dir=scratch))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# --- IDX --------------------------------------------------------------------------------------------------

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
DIMS = st.one_of(st.integers(0, 6), st.sampled_from([28, 255, 256, 65535, 65536, 2**31, 2**32 - 1]))
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
    with fresh_dir(scratch) as folder:
        (folder / "train-images-idx3-ubyte").write_bytes(raw)
        outcome(data.load, folder / "train-images-idx3-ubyte")


def write_idx(path: Path, array: np.ndarray, type_code: int = 0x08) -> None:
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.dtype(IDX_TYPES[type_code])).tobytes())


@FUZZ
@given(
    role=st.sampled_from(["train-images", "train-labels", "t10k-images", "t10k-labels"]),
    raw=idx_bytes()
    | st.builds(lambda v: bytes([0, 0, 0x0C, 1, 0, 0, 0, 4]) + v.astype(">i4").tobytes(), hnp.arrays(np.int32, 4)),
)
@example(role="train-labels", raw=bytes([0, 0, 0x0C, 1, 0, 0, 0, 4]) + np.array([0, 1, 2, 2**31 - 1], ">i4").tobytes())
@example(role="t10k-labels", raw=bytes([0, 0, 0x09, 1, 0, 0, 0, 2]) + bytes([0, 0xFF]))  # label -1
def test_fuzz_idx_directory_with_one_bad_file(scratch, role, raw):
    rng = np.random.default_rng(0)
    with fresh_dir(scratch) as folder:
        for prefix, n in (("train", 4), ("t10k", 2)):
            write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 5, 5)))
            write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 3)
        (folder / f"{role}-idx{1 if 'labels' in role else 3}-ubyte").write_bytes(raw)
        outcome(data.load, folder)


@FUZZ
@given(
    n=st.tuples(st.integers(1, 4), st.integers(1, 3)),
    hw=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    type_code=st.sampled_from(sorted(IDX_TYPES)),
    gz=st.booleans(),
    layout=st.sampled_from(["own", "keras", "idx"]),
    data_=st.data(),
)
def test_fuzz_valid_arrays_load_exactly(scratch, n, hw, type_code, gz, layout, data_):
    """Valid arrays in, the same pixels and labels out: IDX of each type (plain or gzipped), npz of each layout."""
    dtype = np.dtype(IDX_TYPES[type_code]).newbyteorder("=")
    in_range = st.floats(0, 1, width=dtype.itemsize * 8) if dtype.kind == "f" else st.integers(0, 127)
    splits = [data_.draw(hnp.arrays(dtype, (count, *hw), elements=in_range)) for count in n]
    labels = [data_.draw(hnp.arrays(np.uint8, count, elements=st.integers(0, 9))) for count in n]
    expected = [np.rint(x * 255) if dtype.kind == "f" else x for x in splits]
    with fresh_dir(scratch) as folder:
        if layout == "idx":
            for prefix, images, y in zip(("train", "t10k"), splits, labels):
                write_idx(folder / f"{prefix}-images-idx3-ubyte", images, type_code)
                write_idx(folder / f"{prefix}-labels-idx1-ubyte", y)
                if gz:
                    for path in folder.glob(f"{prefix}-*"):
                        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
                        path.unlink()
            dataset = data.load(folder)
        else:
            keys = ("train_images", "train_labels", "test_images", "test_labels")
            keys = keys if layout == "own" else ("x_train", "y_train", "x_test", "y_test")
            arrays = dict(zip(keys, (splits[0], labels[0], splits[1], labels[1])))
            (np.savez_compressed if gz else np.savez)(folder / "x.npz", **arrays)
            dataset = data.load(folder / "x.npz")
    assert_valid(dataset)
    for split, images, y in zip((dataset.train, dataset.test), expected, labels):
        assert np.array_equal(split.images[:, 0].numpy(), images) and split.labels.tolist() == y.tolist()


# --- npz --------------------------------------------------------------------------------------------------

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
    with fresh_dir(scratch) as folder:
        (folder / "x.npz").write_bytes(raw)
        outcome(data.load, folder / "x.npz")


# --- image folders ----------------------------------------------------------------------------------------

MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "I;16", "F", "LAB", "HSV"]
FORMATS = ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"]
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp"}


def png_header(width: int, height: int, bit_depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose header claims `width` x `height` pixels, with no real pixel data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def encode(image: Image.Image, fmt: str) -> tuple[str, bytes]:
    """`(suffix, bytes)` of `image` saved as `fmt`, or as TIFF or PNG when `fmt` cannot store its mode."""
    for candidate in (fmt, "TIFF", "PNG"):
        buffer = io.BytesIO()
        try:
            image.save(buffer, candidate)
            return SUFFIX[candidate], buffer.getvalue()
        except (OSError, ValueError, KeyError, TypeError):
            continue
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG")
    return ".png", buffer.getvalue()


@st.composite
def pil_images(draw, size: tuple[int, int], sane: bool = False) -> Image.Image:
    """A `size` (W, H) image of any mode; `sane` keeps the values of deep modes in the range a file may hold
    (else float images get NaN, inf and negatives, 32-bit ones any integer)."""
    mode = draw(st.sampled_from(MODES))
    if mode == "F":
        elements = st.floats(0, 1, width=32) if sane else None
        return Image.fromarray(draw(hnp.arrays(np.float32, size[::-1], elements=elements)))
    if mode in ("I", "I;16"):
        dtype = np.int32 if mode == "I" else np.uint16
        elements = st.integers(0, 65535) if sane else None
        return Image.fromarray(draw(hnp.arrays(dtype, size[::-1], elements=elements)))
    rgb = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
    if draw(st.booleans()):
        rgb[..., 1] = rgb[..., 2] = rgb[..., 0]  # grey pixels in a colour mode
    return Image.fromarray(rgb).convert(mode) if mode not in ("LAB", "HSV") else Image.new(mode, size)


@st.composite
def image_bytes(draw, size: tuple[int, int] | None = None) -> tuple[str, bytes]:
    """`(suffix, bytes)`: a small image of any mode in any format that can store it (`size` (W, H) most of
    the time, when given), or a hostile file."""
    kind = draw(st.sampled_from(["image"] * 12 + ["png-header", "garbage", "truncated"]))
    if kind == "png-header":
        side = st.integers(0, 8) | st.sampled_from([20000, 65535, 2**31 - 1, 2**32 - 1])
        return ".png", png_header(draw(side), draw(side), draw(st.sampled_from([1, 8, 16, 3])), draw(st.integers(0, 7)))
    if kind == "garbage":
        return draw(st.sampled_from(sorted(SUFFIX.values()))), draw(st.binary(max_size=200))
    if size is None or draw(st.integers(0, 4)) == 0:
        size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    suffix, raw = encode(draw(pil_images(size)), draw(st.sampled_from(FORMATS)))
    if kind == "truncated":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    return suffix, raw


SIZES = (
    st.none()
    | st.integers(-2, 40)
    | st.tuples(st.integers(-2, 40), st.integers(-2, 40))
    | st.sampled_from([10**9, (10**5, 10**5), (1, 10**7)])
)


@FUZZ
@given(
    images=st.tuples(st.integers(1, 6), st.integers(1, 6)).flatmap(
        lambda size: st.lists(
            st.tuples(st.sampled_from(["", "a", "b", "train", "test", ".hidden"]), image_bytes(size)), max_size=6
        )
    ),
    layout=st.sampled_from(["flat", "classes", "train-test"]),
    size=SIZES,
)
@example(images=[("", (".png", png_header(20000, 20000)))] * 2, layout="flat", size=None)  # a decompression bomb
@example(images=[("", (".png", png_header(10000, 10000)))], layout="flat", size=(8, 8))
@example(images=[("a", (".png", png_header(3, 3, 16, 0)))] * 3, layout="classes", size=None)
@example(images=[("", (".png", b"\x89PNG broken"))] * 2, layout="flat", size=10**9)
def test_fuzz_image_folders(scratch, images, layout, size):
    with fresh_dir(scratch) as folder:
        for i, (sub, (suffix, raw)) in enumerate(images):
            where = folder
            if layout == "classes" and sub:
                where = folder / sub
            elif layout == "train-test":
                where = folder / ("test" if i % 3 == 2 else "train") / sub
            where.mkdir(parents=True, exist_ok=True)
            (where / f"{i}{suffix}").write_bytes(raw)
        outcome(data.load, folder, size=size)


GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "F"}


def expected_channels(raw: bytes) -> int:
    """1 when the stored image is grey (a grey mode, or a palette whose pixels are all grey), else 3."""
    with Image.open(io.BytesIO(raw)) as stored:
        if stored.mode in GREY_MODES:
            return 1
        if stored.mode in ("P", "PA"):
            rgb = np.asarray(stored.convert("RGB")).astype(int)
            return 1 if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all() else 3
        return 3


@FUZZ
@given(
    size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    data_=st.data(),
    resize=st.none() | st.tuples(st.integers(1, 9), st.integers(1, 9)),
)
def test_fuzz_valid_images_always_load(scratch, size, data_, resize):
    """Every image a user can save (any mode, any of the formats, values in range) loads: grey or RGB, its size."""
    encoded = [
        encode(data_.draw(pil_images(size, sane=True)), data_.draw(st.sampled_from(FORMATS)))
        for _ in range(data_.draw(st.integers(2, 4)))
    ]
    with fresh_dir(scratch) as folder:
        for i, (suffix, raw) in enumerate(encoded):
            (folder / f"{i}{suffix}").write_bytes(raw)
        dataset = data.load(folder, size=resize)
    assert_valid(dataset)
    channels = 1 if all(expected_channels(raw) == 1 for _, raw in encoded) else 3
    assert dataset.shape == (channels, *(resize or size[::-1]))
    assert len(dataset.train) + len(dataset.test) == len(encoded)


# --- Dataset built by hand, and arbitrary paths -----------------------------------------------------------


@FUZZ
@given(
    n=st.integers(0, 3),
    channels=st.sampled_from([1, 1, 3, 3, 0, 2, 4]),
    side=st.integers(0, 3),
    dtype=st.sampled_from([torch.uint8, torch.uint8, torch.float32, torch.int64]),
    data_=st.data(),
)
def test_fuzz_dataset_constructor(n, channels, side, dtype, data_):
    """Dataset checks itself, so no caller can build one that breaks a label histogram or a class lookup."""
    images = torch.zeros((n, channels, side, side + 1), dtype=dtype)
    label = st.integers(0, 3) | st.sampled_from([-1, MAX_CLASSES, 10**12])
    labels = data_.draw(st.none() | st.lists(label, min_size=n, max_size=n) | st.lists(label, max_size=4))
    classes = data_.draw(st.none() | st.lists(st.text(max_size=3), max_size=5) | st.just([1, 2, 3, 4]))

    def build():
        label_tensor = None if labels is None else torch.tensor(labels, dtype=torch.int64)
        split = Split(images, label_tensor)
        return Dataset("x", split, split, classes)

    outcome(build)


PATH_PARTS = st.text(st.characters(blacklist_characters="/\x00"), min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..")
)


@FUZZ
@given(
    entries=st.lists(
        st.tuples(PATH_PARTS, st.sampled_from(["file", "folder", "link-self", "link-out", "fifo"])), max_size=4
    ),
    query=st.lists(PATH_PARTS | st.just("\x00"), max_size=3),
    content=st.binary(max_size=64),
)
@example(entries=[("\ud800", "fifo")], query=[], content=b"")  # a name no file system can hold (found by the fuzz)
@example(entries=[("x", "link-self")], query=["y"], content=b"")  # below a loop of links
@example(entries=[("x", "fifo")], query=[], content=b"")
def test_fuzz_arbitrary_paths(scratch, entries, query, content):
    with fresh_dir(scratch) as folder:
        made = []
        for name, kind in entries:
            target = folder / name
            if name in made:
                continue  # writing to a FIFO made under the same name would block the test itself
            try:
                if kind == "file":
                    target.write_bytes(content)
                elif kind == "folder":
                    target.mkdir()
                elif kind == "link-self":
                    target.symlink_to(target)  # a loop of links
                elif kind == "link-out":
                    target.symlink_to("/dev/zero")
                else:
                    os.mkfifo(target)
            except (OSError, ValueError):  # a lone surrogate cannot be encoded as a file name
                continue
            made.append(name)
        # a path into what was made (or below it), or the folder itself, read as an image folder
        parts = [made[0]] + query if made and query[:1] != ["\x00"] else query
        outcome(data.load, str(folder.joinpath(*parts)) if parts else str(folder))
        outcome(data.load, folder, size=(4, 4))


# --- hostile files, each once through the library and the command line ------------------------------------


def _idx(type_code: int, shape: tuple, payload: bytes = b"") -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _folder(*images: tuple[str, bytes]):
    def make(path: Path) -> Path:
        path.mkdir()
        for name, raw in images:
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(raw)
        return path

    return make


def _file(name: str, raw: bytes):
    def make(path: Path) -> Path:
        path.mkdir()
        (path / name).write_bytes(raw)
        return path / name

    return make


def _png(array: np.ndarray, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", **save)
    return buffer.getvalue()


# name -> (a builder of the hostile path under a fresh folder, a phrase the error must hold)
HOSTILE = {
    "idx dims past memory": (_file("x-idx3-ubyte", _idx(8, (65536, 65536, 65536, 65536))), "channels"),
    "idx dims past file": (_file("x-idx3-ubyte", _idx(8, (1000, 28, 28), b"\0" * 10)), "truncated or corrupt"),
    "idx absurd image": (_file("x-idx3-ubyte", _idx(8, (1, 65536, 65536))), "pixels per image"),
    "idx 255 dims": (_file("x-idx3-ubyte", bytes([0, 0, 8, 255]) + b"\0" * 1020), "3 or 4 dimensions"),
    "idx bad type": (_file("x-idx3-ubyte", bytes([0, 0, 7, 3]) + b"\0" * 12), "bad magic number"),
    "idx gzip bomb": (_file("x-idx3-ubyte.gz", gzip.compress(_idx(8, (10**6, 28, 28)))), "gzip file can hold"),
    "idx corrupt gzip": (_file("x-idx3-ubyte.gz", b"\x1f\x8b" + b"garbage" * 10), "cannot read or decompress"),
    "idx nan floats": (_file("x-idx3-ubyte", _idx(0x0D, (2, 1, 1), struct.pack(">2f", np.nan, 0))), "NaN"),
    "idx negative ints": (_file("x-idx3-ubyte", _idx(0x09, (2, 1, 1), b"\xff\x00")), "[0, 255]"),
    "npz of strings": (_file("x.npz", _npz(images=np.array([["ab"] * 4] * 3))), "store plain numbers"),
    "npz of objects": (_file("x.npz", _npz(images=np.array([None, 1], dtype=object))), "never loads"),
    "npz complex": (_file("x.npz", _npz(images=np.zeros((3, 2, 2), np.complex64))), "complex64"),
    "npz label 10^12": (
        _file("x.npz", _npz(images=np.zeros((4, 2, 2), np.uint8), labels=np.array([0, 1, 2, 10**12]))),
        "class indices",
    ),
    "npz negative label": (
        _file("x.npz", _npz(images=np.zeros((4, 2, 2), np.uint8), labels=np.array([0, -1, 2, 1]))),
        "class indices",
    ),
    "npz one-hot labels": (
        _file("x.npz", _npz(images=np.zeros((4, 2, 2), np.uint8), labels=np.eye(4, dtype=np.int64))),
        "one-hot",
    ),
    "npz inf": (_file("x.npz", _npz(images=np.full((3, 2, 2), np.inf))), "NaN or infinite"),
    "npz 5-d": (_file("x.npz", _npz(images=np.zeros((2, 2, 2, 2, 2), np.uint8))), "images must be"),
    "npz empty test": (
        _file("x.npz", _npz(train_images=np.zeros((3, 2, 2), np.uint8), test_images=np.zeros((0, 2, 2), np.uint8))),
        "holds no images",
    ),
    "npz count mismatch": (
        _file("x.npz", _npz(images=np.zeros((4, 2, 2), np.uint8), labels=np.zeros(3, np.int64))),
        "3 labels for 4 images",
    ),
    "npy renamed npz": (_file("x.npz", b"\x93NUMPY" + b"\0" * 60), "not a readable .npz"),
    "png bomb 20000^2": (_folder(("a.png", png_header(20000, 20000)), ("b.png", png_header(2, 2))), "a.png"),
    "png 10000^2": (_folder(("a.png", png_header(10000, 10000)), ("b.png", png_header(2, 2))), "pixels"),
    "corrupt png": (_folder(("a.png", _png(np.zeros((2, 2), np.uint8))), ("b.png", b"\x89PNG..")), "b.png"),
    "truncated png": (
        _folder(("a.png", _png(np.zeros((9, 9), np.uint8))), ("b.png", _png(np.eye(9, dtype=np.uint8))[:-30])),
        "b.png",
    ),
    "mixed sizes": (
        _folder(("a.png", _png(np.zeros((2, 2), np.uint8))), ("b.png", _png(np.zeros((3, 2), np.uint8)))),
        "give a size",
    ),
    "no images": (_folder(("notes.txt", b"hello")), "no image files"),
    "one image": (_folder(("a.png", _png(np.zeros((2, 2), np.uint8)))), "at least 2 images"),
    "newline in name": (_folder(("a\nb.png", b"junk"), ("c.png", b"junk")), "a\\nb.png"),
    "a folder named .npz": (_folder(), "no image files"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_inputs_give_one_line_errors(tmp_path, case):
    build, phrase = HOSTILE[case]
    path = build(tmp_path / "case.npz" if case == "a folder named .npz" else tmp_path / "case")
    with pytest.raises(VaelabError) as err:
        data.load(path)
    assert phrase in str(err.value) and str(err.value).isprintable()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_cli_data_info_on_hostile_inputs(cli, tmp_path, case):
    build, _ = HOSTILE[case]
    result = cli("data", "info", build(tmp_path / "case"))
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith("vaelab: error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_cli_data_info_hostile_in_a_real_process(cli_process, tmp_path):
    """The same through a real `python -m vaelab` (warnings, interpreter shutdown): one line, exit 2."""
    for case in ("png bomb 20000^2", "idx dims past memory"):
        result = cli_process("data", "info", HOSTILE[case][0](tmp_path / case.replace(" ", "_")))
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("size", [["0", "0"], ["-3", "5"], ["1000000000", "1000000000"], ["1", "100000000"]])
def test_cli_data_info_absurd_size(cli, tmp_path, size):
    folder = _folder(("a.png", _png(np.zeros((2, 2), np.uint8))), ("b.png", _png(np.ones((2, 2), np.uint8))))
    result = cli("data", "info", folder(tmp_path / "f"), "--size", *size)
    assert result.returncode == 2 and "size" in result.stderr and result.stderr.count("\n") == 1
