"""Data files the tests write: IDX files (plain or gzipped) and MNIST-like folders of them, and PNG images."""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_idx(path, array, type_byte=0x08, gz=False):
    array = np.asarray(array)
    raw = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def mnist_like_dir(tmp_path, gz=False, n_train=30, n_test=10):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), gz=gz
        )
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n, dtype=np.uint8), gz=gz)
    return tmp_path


def save_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def write_typed_idx(path: Path, array: np.ndarray, type_code: int = 0x08) -> None:
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.dtype(IDX_TYPES[type_code])).tobytes())


def png_header(width: int, height: int, bit_depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose header claims `width` x `height` pixels, with no real pixel data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


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
