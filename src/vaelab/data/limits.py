"""What a sane data set looks like: bounds checked against a file's header before anything big is allocated.

A header is a claim, not a fact: an IDX file may declare 2^32 images, a PNG 20000 x 20000 pixels, an npz
array 10^12 labels. Every reader asks these functions first, so a lie costs an error message, not memory.
"""

from __future__ import annotations

import math
import os

from vaelab.errors import DataError

# At most this many classes: far beyond any labelled image set a VAE is trained on (ImageNet-21k has 21,841
# but no one fits it in memory here), and it keeps a label histogram or a one-hot table small.
MAX_CLASSES = 10_000
# Pixels of one stored image (H x W): 4096 x 4096, far above what a VAE is trained on; larger ones need --size.
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_IMAGE_SIDE = 16_384
# Pixels an image file may declare before it is decoded (resized afterwards by --size): a 64-megapixel photo.
# Pillow's own decompression-bomb limit (89 megapixels, a warning; twice that, an error) is looser.
MAX_DECODE_PIXELS = 8192 * 8192


def gib(nbytes: int) -> str:
    """A size for a message: three significant digits (`1.5 GiB`, `412 GiB`, `12,345 GiB`; MiB below 1 GiB)."""
    if nbytes >= 999.5 * 2**30:  # .3g would write 1e+03
        return f"{nbytes / 2**30:,.0f} GiB"
    return f"{nbytes / 2**30:.3g} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.3g} MiB"


# A container's memory limit (cgroup v2, then v1): a process is killed past it, whatever the machine has.
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def memory_bytes() -> int | None:
    """Memory this process may use in bytes: the machine's, or its container's limit when lower; None where
    the platform does not say."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    for path in _CGROUP_LIMITS:
        try:
            with open(path) as handle:
                limit = handle.read().strip()
        except OSError:
            continue
        if limit.isdigit():  # "max" means no limit
            total = min(total, int(limit))
        break
    return total


def check_memory(nbytes: int, origin: str, what: str = "the data") -> None:
    """Refuse a load that cannot fit in this machine's memory, before allocating it."""
    total = memory_bytes()
    if total is not None and nbytes > total:
        raise DataError(
            f"{origin}: {what} would take {gib(nbytes)} in memory but this machine has {gib(total)}; "
            "use a smaller data set, or a smaller --size for an image folder"
        )


def check_size(size: object) -> tuple[int, int] | None:
    """Validate a requested image size (`--size H W`, or one int for a square) and return it as `(H, W)`."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else tuple(size) if isinstance(size, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in pair):
        raise DataError(f"size must be two integers H W, got {size!r}")
    h, w = pair
    if min(h, w) < 1 or max(h, w) > MAX_IMAGE_SIDE or h * w > MAX_IMAGE_PIXELS:
        raise DataError(
            f"size {h} x {w} is out of range: give --size H W with 1 <= H, W <= {MAX_IMAGE_SIDE} "
            f"and H x W <= {MAX_IMAGE_PIXELS} pixels (28 28 for MNIST-sized images)"
        )
    return h, w


def image_layout(shape: tuple[int, ...], origin: str) -> tuple[int, int, int, int, bool]:
    """Read `(N, C, H, W, channels_last)` from an image array's shape, refusing what no image set looks like.

    `[N, H, W]` is greyscale; a 4-D shape is `[N, C, H, W]` when its second axis is 1 or 3, else
    `[N, H, W, C]` when its last is. Checked on a header's claimed shape, before the data is read.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) == 3:
        (n, h, w), c, last = shape, 1, False
    elif len(shape) == 4 and shape[1] in (1, 3):
        (n, c, h, w), last = shape, False
    elif len(shape) == 4 and shape[3] in (1, 3):
        (n, h, w, c), last = shape, True
    elif len(shape) == 4:
        raise DataError(
            f"{origin}: images of shape {shape_text(shape)} have neither 1 (grey) nor 3 (RGB) channels "
            "on axis 1 or the last axis; store [N, H, W], [N, C, H, W] or [N, H, W, C]"
        )
    else:
        raise DataError(f"{origin}: images must be [N, H, W], [N, C, H, W] or [N, H, W, C], got {shape_text(shape)}")
    if n == 0:
        raise DataError(f"{origin}: holds no images")
    if h == 0 or w == 0:
        raise DataError(f"{origin}: images of shape {shape_text(shape)} are empty (height or width 0)")
    if h * w > MAX_IMAGE_PIXELS:
        raise DataError(
            f"{origin}: images of {h} x {w} pixels exceed vaelab's limit of {MAX_IMAGE_PIXELS} pixels per image; "
            "the header is corrupt, or store the images smaller"
        )
    return n, c, h, w, last


def shape_text(shape: tuple[int, ...]) -> str:
    """A shape for a message; a hostile header may declare 255 dimensions."""
    dims = [str(int(d)) for d in shape]
    return "[" + ", ".join(dims if len(dims) <= 6 else dims[:6] + [f"... ({len(dims)} dimensions)"]) + "]"


def nbytes(shape: tuple[int, ...], itemsize: int) -> int:
    """Bytes of an array of `shape`, in Python integers (numpy's int64 product wraps around for a hostile header)."""
    return math.prod(int(d) for d in shape) * itemsize
