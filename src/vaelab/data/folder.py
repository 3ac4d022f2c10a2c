"""Reader for folders of images (PNG, JPEG, BMP, GIF, TIFF, WebP), grayscale or RGB.

Layouts, checked in this order:
- `root/train/...` and `root/test/...`: each as below, used as the two splits;
- `root/<class>/<image>`: labels from the sub-folder names (sorted), split 80/20 stratified;
- `root/<image>`: no labels, split 80/20.
The result is grayscale (1 channel) when every image is grayscale, RGB otherwise. Images of different
sizes need `size` (they are then all resized to it); `size` also resizes images that agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vaelab.data.dataset import Dataset, Split, make_dataset, make_split, split_arrays
from vaelab.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def _image_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _collect(directory: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """The image files under `directory`, with labels and class names when it has class sub-folders."""
    subdirs = sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = _image_files(directory)
    if subdirs and loose:
        raise DataError(f"{directory}: holds both images and sub-folders; put every image in a class sub-folder")
    if not subdirs:
        if not loose:
            raise DataError(f"{directory}: no image files found ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return loose, None, None
    files, labels, classes = [], [], []
    for subdir in subdirs:
        members = _image_files(subdir)
        if members:
            labels += [len(classes)] * len(members)
            classes.append(subdir.name)
            files += members
    if not files:
        raise DataError(f"{directory}: its sub-folders hold no image files")
    return files, labels, classes


def _open(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
        return image
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable image ({exc.__class__.__name__}: {exc})") from None


def _read_images(files: list[Path], size: tuple[int, int] | None, grey: bool) -> np.ndarray:
    mode = "L" if grey else "RGB"
    arrays, first = [], None
    for path in files:
        image = _open(path)
        if image.mode in ("I", "I;16", "F"):  # 16-bit or float greyscale: rescale to 8 bits
            data = np.asarray(image, dtype=np.float64)
            peak = 65535.0 if data.max() > 255 else 255.0
            image = Image.fromarray(np.rint(data / peak * 255).clip(0, 255).astype(np.uint8))
        image = image.convert(mode)
        if size is not None:
            image = image.resize((size[1], size[0]), Image.Resampling.LANCZOS)
        elif first is None:
            first = (path, image.size)
        elif image.size != first[1]:
            raise DataError(
                f"{path}: is {image.size[0]}x{image.size[1]} but {first[0].name} is {first[1][0]}x{first[1][1]}; "
                "give a size (--size H W) to resize every image"
            )
        array = np.asarray(image, dtype=np.uint8)
        arrays.append(array[None] if grey else array.transpose(2, 0, 1))
    return np.stack(arrays)


def _is_grey(files: list[Path]) -> bool:
    for path in files:
        with _open(path) as image:
            if image.mode not in _GREY_MODES and not (image.mode == "P" and _palette_is_grey(image)):
                return False
    return True


def _palette_is_grey(image: Image.Image) -> bool:
    rgb = np.asarray(image.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())


def _split(files, labels, size, grey, origin) -> Split:
    return make_split(_read_images(files, size, grey), None if labels is None else np.asarray(labels), origin)


def load_folder(root: str | Path, size: int | tuple[int, int] | None = None, name: str | None = None) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    if isinstance(size, int):
        size = (size, size)
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise DataError(f"size must be a positive height and width, got {size}")
    name = name or root.name
    if (root / "train").is_dir() and (root / "test").is_dir():
        tr_files, tr_labels, tr_classes = _collect(root / "train")
        te_files, te_labels, te_classes = _collect(root / "test")
        if tr_classes != te_classes:
            raise DataError(f"{root}: train classes {tr_classes} differ from test classes {te_classes}")
        grey = _is_grey(tr_files + te_files)
        train = _split(tr_files, tr_labels, size, grey, str(root / "train"))
        test = _split(te_files, te_labels, size, grey, str(root / "test"))  # sizes compared by make_dataset
        return make_dataset(name, train, test, tr_classes, source=str(root))
    files, labels, classes = _collect(root)
    images = _read_images(files, size, _is_grey(files))
    train, test = split_arrays(images, None if labels is None else np.asarray(labels), str(root))
    return make_dataset(name, train, test, classes, source=str(root))
