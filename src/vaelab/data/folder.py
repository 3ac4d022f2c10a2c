"""Reader for folders of images (PNG, JPEG, BMP, GIF, TIFF, WebP), grayscale or RGB.

Layouts, checked in this order:
- `root/train/...` and `root/test/...`: each as below, used as the two splits;
- `root/<class>/<image>`: labels from the sub-folder names (sorted), split 80/20 stratified;
- `root/<image>`: no labels, split 80/20.
Hidden files and folders (`.x`, macOS's `._x`) are skipped.
The result is grayscale (1 channel) when every image is grayscale, RGB otherwise. Images of different
sizes need `size` (they are then all resized to it); `size` also resizes images that agree.

Two passes: every file's header is read first (format, mode, declared size), so a file that claims
20000 x 20000 pixels, a mix of sizes or a set too big for memory is refused before anything is decoded;
then each image is decoded into one preallocated array. 16-bit images are scaled to 8 bits (65535 -> 255),
palette images are expanded, an alpha channel is dropped.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vaelab import progress, threads
from vaelab.data import files, folder_cache
from vaelab.data.dataset import Dataset, label_array, make_dataset, make_split, stratified_split
from vaelab.data.files import shown
from vaelab.data.limits import MAX_DECODE_PIXELS, MAX_IMAGE_PIXELS, check_memory, check_size
from vaelab.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# The only decoders Pillow may use: a file named .png that is really an EPS must not reach Ghostscript.
# (Multi-picture JPEGs come through "JPEG"; "MPO" is not a key Pillow accepts here: it raised KeyError.)
_FORMATS = ("PNG", "JPEG", "BMP", "DIB", "GIF", "TIFF", "WEBP")
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
_GREY_MODES = {"1", "L", "LA", "La", "I", "F"} | _SIXTEEN_BIT


@dataclass(frozen=True)
class ImageHeader:
    """What an image file declares, read without decoding its pixels (palette images excepted)."""

    path: Path
    width: int
    height: int
    grey: bool


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Pillow's decoders raise many kinds of exception on a corrupt or hostile file (OSError, SyntaxError,
    struct.error, ValueError, DecompressionBombError...) and warn about others: each means the image cannot
    be used, said in one line; the warnings would only add lines to that one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except (DataError, MemoryError):
        raise
    except Image.DecompressionBombError:
        raise DataError(
            f"{shown(path)}: its header declares more than {MAX_DECODE_PIXELS} pixels; "
            "the file is corrupt or far too large: shrink it"
        ) from None
    except Exception as exc:
        raise DataError(f"{shown(path)}: unreadable image ({exc.__class__.__name__}: {exc})") from None


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    with files.open_file(path) as handle, _decoding(path), Image.open(handle, formats=_FORMATS) as image:
        yield image


def read_header(path: Path) -> ImageHeader:
    with _opened(path) as image:
        width, height = image.size
        if width < 1 or height < 1 or width * height > MAX_DECODE_PIXELS:
            raise DataError(
                f"{shown(path)}: its header declares {width} x {height} pixels, beyond vaelab's limit of "
                f"{MAX_DECODE_PIXELS} pixels per image file; the file is corrupt or far too large: shrink it"
            )
        if width * height == 1:
            raise DataError(
                f"{shown(path)}: is a single pixel (a tracking pixel or a placeholder, not a picture); remove it"
            )
        grey = image.mode in _GREY_MODES or (image.mode in ("P", "PA") and _palette_is_grey(image))
    return ImageHeader(path, width, height, grey)


def _palette_is_grey(image: Image.Image) -> bool:
    """Whether every palette entry the image uses is a grey (a GIF often carries a full colour palette)."""
    palette = image.getpalette()  # decodes the image; its size was checked first
    if not palette:
        return False
    rgb = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    used = np.unique(np.asarray(image if image.mode == "P" else image.getchannel("P")))
    rgb = rgb[used[used < len(rgb)]]
    return bool((rgb[:, 0] == rgb[:, 1]).all() and (rgb[:, 1] == rgb[:, 2]).all())


def _to_8bit(values: np.ndarray, mode: str, path: Path) -> np.ndarray:
    """Grey pixels of a 16-bit, 32-bit integer or float image as uint8.

    16-bit images scale 65535 to 255. Modes `I` and `F` do not say their range: `I` is read as 8-bit when
    its values fit, else 16-bit; `F` as [0, 1] when its values fit, else [0, 255]. Outside those, an error.
    """
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise DataError(f"{shown(path)}: holds NaN or infinite pixel values")
    lo, hi = float(values.min()), float(values.max())
    if mode in _SIXTEEN_BIT:
        peak = 65535.0
    elif mode == "F":
        peak = 1.0 if hi <= 1.0 else 255.0
    else:
        peak = 255.0 if hi <= 255 else 65535.0
    if lo < 0 or hi > peak:
        raise DataError(
            f"{shown(path)}: {mode} pixel values lie in [{lo:.4g}, {hi:.4g}], outside [0, 65535] "
            "(or [0, 255] for floats); save it as an 8- or 16-bit image"
        )
    return np.rint(values * (255.0 / peak)).astype(np.uint8)


def _convert(image: Image.Image, mode: str, path: Path) -> Image.Image:
    """`image` in mode `L` or `RGB`: deeper greys rescaled, palettes expanded, alpha dropped."""
    if image.mode in _SIXTEEN_BIT or image.mode in ("I", "F"):
        image = Image.fromarray(_to_8bit(np.asarray(image), image.mode, path))
    elif image.mode == "PA" or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")  # a palette's transparency is only dropped correctly from RGBA
    try:
        return image.convert(mode)
    except ValueError:  # Pillow has no conversion from a few modes (LAB to L, La)
        raise DataError(
            f"{shown(path)}: Pillow cannot convert its {image.mode} pixels to {mode}; save it as 8-bit grey or RGB"
        ) from None


def _decode(header: ImageHeader, grey: bool, size: tuple[int, int] | None) -> np.ndarray:
    """One image as uint8 `[C, H, W]`, resized to `size` (H, W) when given."""
    with _opened(header.path) as image:
        if image.size != (header.width, header.height):
            raise DataError(f"{shown(header.path)}: changed while it was read; try again")
        image = _convert(image, "L" if grey else "RGB", header.path)
        if size is not None and image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.Resampling.LANCZOS)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if grey else array.transpose(2, 0, 1)


def _image_files(directory: Path) -> list[Path]:
    return [p for p in files.folder_entries(directory)[0] if p.suffix.lower() in IMAGE_SUFFIXES]


def _collect(directory: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """The image files under `directory`, with labels and class names when it has class sub-folders."""
    loose, subdirs = files.folder_entries(directory)
    loose = [p for p in loose if p.suffix.lower() in IMAGE_SUFFIXES]
    if subdirs and loose:
        raise DataError(f"{shown(directory)}: holds both images and sub-folders; put every image in a class sub-folder")
    if not subdirs:
        if not loose:
            raise DataError(f"{shown(directory)}: no image files found ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return loose, None, None
    found, labels, classes = [], [], []
    for subdir in subdirs:
        members = _image_files(subdir)
        if members:
            labels += [len(classes)] * len(members)
            classes.append(subdir.name)
            found += members
    if not found:
        raise DataError(f"{shown(directory)}: its sub-folders hold no image files")
    return found, labels, classes


def _common_size(headers: list[ImageHeader], size: tuple[int, int] | None) -> tuple[int, int]:
    """The `(H, W)` every image will have: `size`, or the one size all the images share."""
    if size is not None:
        return size
    first = headers[0]
    for header in headers:
        if (header.width, header.height) != (first.width, first.height):
            raise DataError(
                f"{shown(header.path)}: is {header.width}x{header.height} but {shown(first.path.name)} is "
                f"{first.width}x{first.height}; give a size (--size H W) to resize every image"
            )
    if first.width * first.height > MAX_IMAGE_PIXELS:
        raise DataError(
            f"{shown(first.path)}: images of {first.width}x{first.height} pixels exceed vaelab's limit of "
            f"{MAX_IMAGE_PIXELS} pixels per image; give a size (--size H W) to resize them"
        )
    return first.height, first.width


def read_images(paths: list[Path], size: tuple[int, int] | None, origin: str) -> np.ndarray:
    """Decode `paths` into one uint8 `[N, C, H, W]` array, after checking every header."""
    headers = read_headers(paths)
    return decode_images(headers, size, all(h.grey for h in headers), origin)


def decode_images(headers: list[ImageHeader], size: tuple[int, int] | None, grey: bool, origin: str) -> np.ndarray:
    h, w = _common_size(headers, size)
    channels = 1 if grey else 3
    check_memory(len(headers) * channels * h * w, origin, f"{len(headers)} images of {channels} x {h} x {w}")
    out = np.empty((len(headers), channels, h, w), dtype=np.uint8)
    decode_into(out, headers, grey, size)
    return out


# Images per task of the pool: large enough that the pool's overhead vanishes, small enough for a smooth bar.
_CHUNK = 256


def _workers(n: int) -> int:
    """Threads for `n` images: one per core that other processes leave free (measured for 0.1 s), at most 8.

    On the 2-core test machine with both cores taken by other work, a pool of 2 was slower than one thread
    (bench/folder_load.py: 30.3 s against 19.9 s for 50,000 PNGs), so a busy machine decodes on one."""
    try:
        cores = set(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = set(range(os.cpu_count() or 1))
    most = max(1, min(len(cores), 8, -(-n // _CHUNK)))
    if most == 1:
        return 1
    before = threads.sample(cores)
    time.sleep(threads.FIRST)
    after = threads.sample(cores)
    if before is None or after is None:
        return most
    return threads.free_threads(threads.others_load(before, after), len(cores), most)


def _in_parallel(n: int, work, desc: str, quiet: bool) -> list:
    """`work(start, stop)` over chunks of `range(n)`, in order, with a progress bar, on a thread pool when cores are
    free (Pillow releases the GIL in its decoders, zlib and resizing; `_workers`). The first error stops the rest."""
    chunks = [(start, min(n, start + _CHUNK)) for start in range(0, n, _CHUNK)]
    results = []
    with progress.bar(n, desc, quiet or n < 2 * _CHUNK, "img", unit_scale=True) as shown:
        if len(chunks) == 1:
            results.append(work(*chunks[0]))
            shown.update(n)
            return results
        pool = ThreadPoolExecutor(_workers(n))
        try:
            for (start, stop), result in zip(chunks, pool.map(lambda c: work(*c), chunks)):
                results.append(result)
                shown.update(stop - start)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return results


def read_headers(paths: list[Path], quiet: bool = True) -> list[ImageHeader]:
    chunks = _in_parallel(len(paths), lambda a, b: [read_header(p) for p in paths[a:b]], "reading headers", quiet)
    return [header for chunk in chunks for header in chunk]


def decode_into(
    out: np.ndarray, headers: list[ImageHeader], grey: bool, size: tuple[int, int] | None, quiet: bool = True
) -> None:
    """Decode each image of `headers` into `out[i]` (`[N, C, H, W]`, resized to `size` when given)."""

    def work(start: int, stop: int) -> None:
        for i in range(start, stop):
            out[i] = _decode(headers[i], grey, size)

    _in_parallel(len(headers), work, "decoding images (once, cached)", quiet)


@dataclass(frozen=True)
class Plan:
    """A folder's images in split order (train then test), with their labels and where the test split starts."""

    paths: list[Path]
    labels: np.ndarray | None
    classes: list[str] | None
    n_train: int


def plan(root: Path) -> Plan:
    """The folder's layout read from its listing alone (nothing decoded): the splits, the labels."""
    if files.is_folder(root / "train") and files.is_folder(root / "test"):
        tr_files, tr_labels, tr_classes = _collect(root / "train")
        te_files, te_labels, te_classes = _collect(root / "test")
        if tr_classes != te_classes:
            raise DataError(
                f"{shown(root)}: train classes {_few(tr_classes)} differ from test classes {_few(te_classes)}; "
                "give both splits the same class sub-folders"
            )
        labels = None if tr_labels is None else label_array(tr_labels + te_labels, len(tr_files) + len(te_files), "")
        return Plan(tr_files + te_files, labels, tr_classes, len(tr_files))
    paths, labels, classes = _collect(root)
    if len(paths) < 2:
        raise DataError(f"{shown(root)}: needs at least 2 images to make a train and a test split")
    labels = None if labels is None else label_array(labels, len(paths), shown(root))
    train_idx, test_idx = stratified_split(labels, 0.2, 0, n=len(paths))
    order = np.concatenate([train_idx, test_idx])
    return Plan([paths[i] for i in order], None if labels is None else labels[order], classes, len(train_idx))


def decode_plan(found: Plan, size: tuple[int, int] | None, origin: str, allocate, quiet: bool = True) -> np.ndarray:
    """Check every header (sizes, modes, memory), then decode the images into `allocate(shape, fill)`'s array."""
    listing = sorted(range(len(found.paths)), key=lambda i: found.paths[i].parts)  # errors in listing order
    headers = [None] * len(listing)
    for i, header in zip(listing, read_headers([found.paths[i] for i in listing], quiet)):
        headers[i] = header
    grey = all(h.grey for h in headers)
    h, w = _common_size([headers[i] for i in listing], size)
    shape = (len(headers), 1 if grey else 3, h, w)
    check_memory(math.prod(shape), origin, f"{shape[0]} images of {shape[1]} x {h} x {w}")
    return allocate(shape, lambda out: decode_into(out, headers, grey, None if size is None else (h, w), quiet))


@files.one_line_errors
def load_folder(
    root: str | Path,
    size: int | tuple[int, int] | None = None,
    name: str | None = None,
    cache_dir: str | Path | None = None,
    quiet: bool = True,
    cache: bool = True,
) -> Dataset:
    """Load an image folder: decoded once and cached (see `folder_cache`), memory-mapped on later calls."""
    root = Path(root)
    files.check_folder(root)
    size = check_size(size)
    name = name or root.name
    found = plan(root)
    origin = shown(root)
    images = None
    meta_path = folder_cache.entry_path(root, size, cache_dir) if cache else None
    if meta_path is not None:
        wanted = folder_cache.digest(root, found.paths, size)
        cached = folder_cache.read(meta_path, wanted, origin)
        if cached is not None:
            images, entry = cached
            found = Plan(found.paths, entry.labels, entry.classes, entry.n_train)
        elif folder_cache.writable(meta_path):
            entry = folder_cache.Entry(found.n_train, found.labels, found.classes)
            images = decode_plan(
                found,
                size,
                origin,
                lambda shape, fill: folder_cache.write(meta_path, wanted, shape, entry, fill, origin),
                quiet,
            )
        else:
            folder_cache.notice(f"{origin}: the cache folder {shown(meta_path.parent)} is not writable; not cached")
    if images is None:
        images = decode_plan(found, size, origin, _in_memory, quiet)
    n, labels = found.n_train, found.labels
    train = make_split(images[:n], None if labels is None else labels[:n], origin)
    test = make_split(images[n:], None if labels is None else labels[n:], origin)
    return make_dataset(name, train, test, found.classes, source=str(root))


def _in_memory(shape: tuple[int, ...], fill) -> np.ndarray:
    out = np.empty(shape, dtype=np.uint8)
    fill(out)
    return out


def _few(names: list[str] | None) -> str:
    if names is None:
        return "(none: no class sub-folders)"
    return str(names[:5] + ["..."] if len(names) > 5 else names)
