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
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vaelab.data import files
from vaelab.data.dataset import Dataset, Split, make_dataset, make_split, split_arrays
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
    headers = [read_header(path) for path in paths]
    return decode_images(headers, size, all(h.grey for h in headers), origin)


def decode_images(headers: list[ImageHeader], size: tuple[int, int] | None, grey: bool, origin: str) -> np.ndarray:
    h, w = _common_size(headers, size)
    channels = 1 if grey else 3
    check_memory(len(headers) * channels * h * w, origin, f"{len(headers)} images of {channels} x {h} x {w}")
    out = np.empty((len(headers), channels, h, w), dtype=np.uint8)
    for i, header in enumerate(headers):
        out[i] = _decode(header, grey, None if size is None else (h, w))
    return out


@files.one_line_errors
def load_folder(root: str | Path, size: int | tuple[int, int] | None = None, name: str | None = None) -> Dataset:
    root = Path(root)
    files.check_folder(root)
    size = check_size(size)
    name = name or root.name
    if files.is_folder(root / "train") and files.is_folder(root / "test"):
        tr_files, tr_labels, tr_classes = _collect(root / "train")
        te_files, te_labels, te_classes = _collect(root / "test")
        if tr_classes != te_classes:
            raise DataError(
                f"{shown(root)}: train classes {_few(tr_classes)} differ from test classes {_few(te_classes)}; "
                "give both splits the same class sub-folders"
            )
        tr_headers, te_headers = [read_header(p) for p in tr_files], [read_header(p) for p in te_files]
        grey = all(h.grey for h in tr_headers + te_headers)
        size = size or _common_size(tr_headers + te_headers, None)
        train = _split(decode_images(tr_headers, size, grey, shown(root / "train")), tr_labels, root / "train")
        test = _split(decode_images(te_headers, size, grey, shown(root / "test")), te_labels, root / "test")
        return make_dataset(name, train, test, tr_classes, source=str(root))
    paths, labels, classes = _collect(root)
    images = read_images(paths, size, shown(root))
    train, test = split_arrays(images, None if labels is None else np.asarray(labels), shown(root))
    return make_dataset(name, train, test, classes, source=str(root))


def _split(images: np.ndarray, labels: list[int] | None, origin: Path) -> Split:
    return make_split(images, None if labels is None else np.asarray(labels), shown(origin))


def _few(names: list[str] | None) -> str:
    if names is None:
        return "(none: no class sub-folders)"
    return str(names[:5] + ["..."] if len(names) > 5 else names)
