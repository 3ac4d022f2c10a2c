"""An image folder decoded once: a uint8 `.npy` in the cache, memory-mapped on later starts.

Each folder (its absolute path and `--size`) has one entry under `<cache>/folders/`: `<key>.json` (what was
decoded: the folder's digest, the array's shape, the split, labels and class names) and the images, in split
order (train then test), in `<key>.<digest>.npy`. The digest covers every image file's relative path, size and
modification time, the `--size` and this format's version, so a folder whose files were added, removed, edited
or touched is decoded again; nothing is read from the images to decide that (a start over 50,000 files stats
them, it does not open them).

Both files are written to a temporary name and renamed (the array first, the JSON naming it last), so a kill
leaves the previous entry or none. A damaged entry (unreadable JSON, a truncated or resized array, a wrong
header) is noticed in one line on stderr and decoded again. Later starts map the array copy-on-write
(`mmap_mode="c"`): the pages are shared with the OS's file cache, no second copy is made, and a write through a
tensor (nothing in vaelab writes to a data set) would stay private to the process instead of reaching the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaelab.checkpoint import atomic_write
from vaelab.data.download import cache_root
from vaelab.data.files import reason, shown
from vaelab.errors import DataError, VaelabError

FORMAT = "vaelab-folder-cache-1"


@dataclass(frozen=True)
class Entry:
    """What a cache entry holds besides the pixels: how the array splits, and the labels."""

    n_train: int
    labels: np.ndarray | None  # int64 [N], split order
    classes: list[str] | None


def notice(message: str) -> None:
    print(f"vaelab: {message}", file=sys.stderr, flush=True)


def digest(root: Path, paths: list[Path], size: tuple[int, int] | None) -> str:
    """The folder's identity: every file's path (relative to `root`, in split order), size and mtime, plus
    `--size` and the format version. A file that cannot be stat'ed is a one-line error."""
    h = hashlib.sha256(f"{FORMAT}\n{size}\n".encode())
    start = len(os.fsencode(root)) + 1  # every path lies below root: its relative name, without pathlib's cost
    for path in paths:
        name = os.fsencode(path)
        try:
            info = os.stat(name)
        except OSError as exc:
            raise DataError(f"{shown(path)}: cannot be accessed ({reason(exc)})") from None
        relative = name[start:]
        h.update(b"%d:%s:%d:%d\n" % (len(relative), relative, info.st_size, info.st_mtime_ns))
    return h.hexdigest()


def entry_path(root: Path, size: tuple[int, int] | None, cache_dir) -> Path:
    """`<cache>/folders/<name>-<hash of the absolute path and size>.json`: one entry per folder and size."""
    where = os.fsencode(root.resolve())
    key = hashlib.sha256(where + f"\n{size}".encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", root.resolve().name)[:40] or "folder"
    return cache_root(cache_dir) / "folders" / f"{name}-{key}.json"


def read(meta_path: Path, wanted: str, origin: str) -> tuple[np.ndarray, Entry] | None:
    """The cached images (memory-mapped) and entry when `meta_path` holds the folder whose digest is `wanted`;
    None when there is no entry, the folder changed, or the entry is damaged (each said in one line but the first)."""
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("not a vaelab folder cache of this version")
        if meta.get("digest") != wanted:
            notice(f"{origin}: the folder changed since it was decoded; decoding it again")
            return None
        images, entry = _open(meta_path.parent, meta)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        notice(f"{origin}: its decoded cache {shown(meta_path)} is damaged ({reason(exc)}); decoding it again")
        return None
    return images, entry


def _open(folder: Path, meta: dict) -> tuple[np.ndarray, Entry]:
    shape = tuple(int(d) for d in meta["shape"])
    n_train = int(meta["n_train"])
    if len(shape) != 4 or shape[1] not in (1, 3) or not 0 < n_train < shape[0]:
        raise ValueError(f"bad shape {list(shape)} or split {n_train}")
    array_path = folder / str(meta["images"])
    if array_path.parent != folder:
        raise ValueError("the array is not in the cache folder")
    images = np.load(array_path, mmap_mode="c", allow_pickle=False)
    if images.dtype != np.uint8 or images.shape != shape:
        raise ValueError(f"the array is {images.dtype} {list(images.shape)}, the entry says uint8 {list(shape)}")
    if os.stat(array_path).st_size != images.offset + images.nbytes:
        raise ValueError("the array file's size does not match its header")
    labels = meta["labels"]
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (shape[0],) or labels.dtype.kind not in "iu":
            raise ValueError("labels do not match the images")
        labels = labels.astype(np.int64)
    classes = meta["classes"]
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        raise ValueError("bad class names")
    return images, Entry(n_train, labels, classes)


def writable(meta_path: Path) -> bool:
    try:
        meta_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(meta_path.parent, os.W_OK)


def write(meta_path: Path, wanted: str, shape: tuple[int, ...], entry: Entry, fill, origin: str) -> np.ndarray:
    """Create the entry: `fill(array)` writes the pixels into a fresh memory-mapped `.npy` of `shape` (so the
    decode holds no second copy in memory), then the JSON naming it. Returns the new array, mapped as `read` does."""
    array_path = meta_path.with_name(f"{meta_path.stem}.{wanted[:16]}.npy")

    def decode_into(temp: str) -> None:
        out = np.lib.format.open_memmap(temp, mode="w+", dtype=np.uint8, shape=shape)
        fill(out)
        out.flush()
        del out

    try:
        atomic_write(array_path, decode_into)
        meta = {
            "format": FORMAT,
            "digest": wanted,
            "source": origin,
            "images": array_path.name,
            "shape": list(shape),
            "n_train": entry.n_train,
            "labels": None if entry.labels is None else entry.labels.tolist(),
            "classes": entry.classes,
        }
        atomic_write(meta_path, lambda temp: Path(temp).write_text(json.dumps(meta)))
    except VaelabError as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"{origin}: could not cache its decoded images ({exc})") from None
    for old in meta_path.parent.glob(f"{meta_path.stem}.*.npy"):  # the entry's earlier arrays
        if old != array_path:
            old.unlink(missing_ok=True)
    return _open(meta_path.parent, meta)[0]
