"""dSprites (Matthey, Higgins, Hassabis, Lerchner 2017), generated here from its published specification.

Every combination of five factors, exactly once: 3 shapes (square, ellipse, heart) x 6 scales (linspace(0.5, 1, 6))
x 40 orientations (linspace(0, 2 pi, 40), the last one 2 pi excluded as published) x 32 x-positions x 32
y-positions (linspace(0, 1, 32)): 737,280 binary 64 x 64 images, in the published order (y varies fastest, then x,
orientation, scale, shape), so image `i`'s factors follow from `i` alone.

The geometry the specification leaves open is fixed here: a sprite's centre moves in one-pixel steps (x = 0 puts
it on the centre of pixel column 16, x = 1 on column 47; y = 0 at the top), the smallest steps at which every image
differs; at scale s its outline reaches at most `RADIUS * s` pixels from that centre (a square of side
15 sqrt(2) px at scale 1, an ellipse of semi-axes 15 and 7.5 px, a heart (x^2 + y^2 - 1)^3 <= x^2 y^3 with the same
reach), rotated anticlockwise by the orientation. A pixel is on (255) when its centre lies inside the shape.
As in the published set, a square repeats every quarter turn and an ellipse every half turn.

`dsprites` is the whole set (built once, with a progress bar, and cached bit-packed: 377 MB); `dsprites:N` a
seeded subset of N images drawn from it (rendered directly, identical to the same images of the whole set). Either is
split 90 % train / 10 % test by a seeded permutation. Labels are the shapes; factors are all five.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np

from vaelab import progress
from vaelab.data.dataset import Dataset, make_dataset, make_split
from vaelab.data.download import CACHE_ENV, cache_root
from vaelab.data.files import reason, shown
from vaelab.data.limits import check_memory
from vaelab.errors import DataError

NAME = "dsprites"
SIDE = 64  # image side in pixels
RADIUS = 15.0  # pixels from the centre to the farthest point of a sprite at scale 1
WINDOW = 33  # a sprite is drawn in a 33 x 33 window (offsets -16..16 around its centre pixel)
SHAPES = ("square", "ellipse", "heart")
FACTOR_NAMES = ["shape", "scale", "orientation", "x", "y"]
FACTOR_SIZES = [3, 6, 40, 32, 32]
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * math.pi, 40, endpoint=False)
POSITIONS = np.linspace(0.0, 1.0, 32)
SIZE = math.prod(FACTOR_SIZES)  # 737,280
TEST_FRACTION = 0.1
SEED = 0  # the subset and the split are drawn with this seed: `dsprites:N` is the same set on every machine
CACHE_FILE = "dsprites-v1.npy"  # bit-packed images [737280, 512], in the published order
# The heart (x^2 + y^2 - 1)^3 <= x^2 y^3 spans y in [-1, 1.236]: centred on its box's middle, its farthest point
# lies 1.3366 from there (measured on a 3001^2 grid).
HEART_CENTRE_Y, HEART_REACH = 0.118, 1.3366
TOLERANCE = 1e-9  # a pixel centre on the outline counts as inside, whatever the last bit of a sine


def factor_values() -> list[list[float]]:
    """The published value of each factor index (shape: 1, 2, 3 as published)."""
    return [[1.0, 2.0, 3.0], SCALES.tolist(), ORIENTATIONS.tolist(), POSITIONS.tolist(), POSITIONS.tolist()]


def factors_of(index: np.ndarray) -> np.ndarray:
    """Factor value indices `[N, 5]` of images `index` of the whole set (published order: y fastest)."""
    return np.stack(np.unravel_index(np.asarray(index, dtype=np.int64), FACTOR_SIZES), axis=1).astype(np.int64)


def inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether the points (u, v) (sprite units: reach 1, v up) lie inside shape `shape`."""
    if shape == 0:  # a square whose corners are at distance 1
        half = 1 / math.sqrt(2)
        return (np.abs(u) <= half + TOLERANCE) & (np.abs(v) <= half + TOLERANCE)
    if shape == 1:  # an ellipse with semi-axes 1 (along u) and 1/2
        return u * u + 4 * v * v <= 1 + TOLERANCE
    x, y = u * HEART_REACH, v * HEART_REACH + HEART_CENTRE_Y
    return (x * x + y * y - 1) ** 3 - x * x * y**3 <= TOLERANCE


def sprite_masks() -> np.ndarray:
    """Every sprite before it is moved: bool `[3, 6, 40, WINDOW, WINDOW]`, centred on the window's middle pixel."""
    offsets = np.arange(WINDOW, dtype=np.float64) - WINDOW // 2
    dx, dy = np.meshgrid(offsets, -offsets)  # dy up: row offsets grow downwards
    masks = np.zeros((len(SHAPES), len(SCALES), len(ORIENTATIONS), WINDOW, WINDOW), dtype=bool)
    for o, theta in enumerate(ORIENTATIONS):
        cos, sin = math.cos(theta), math.sin(theta)
        # the point rotated back by theta (the sprite is rotated anticlockwise by theta)
        u, v = cos * dx + sin * dy, -sin * dx + cos * dy
        for s, scale in enumerate(SCALES):
            reach = RADIUS * scale
            for shape in range(len(SHAPES)):
                masks[shape, s, o] = inside(shape, u / reach, v / reach)
    return masks


def render(index: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """Images `index` of the whole set: uint8 `[N, 1, 64, 64]` in {0, 255}."""
    masks = sprite_masks() if masks is None else masks
    f = factors_of(index)
    images = np.zeros((len(f), SIDE, SIDE), dtype=np.uint8)
    # x = i puts the window's left column at i: its centre (offset 16) on column 16 + i
    window = np.arange(WINDOW)
    rows = f[:, 4, None, None] + window[None, :, None]
    cols = f[:, 3, None, None] + window[None, None, :]
    sprites = masks[f[:, 0], f[:, 1], f[:, 2]]  # [N, WINDOW, WINDOW]
    images[np.arange(len(f))[:, None, None], rows, cols] = sprites.astype(np.uint8) * 255
    return images[:, None]


def parse(key: str) -> int | None:
    """The number of images `dsprites[:N]` asks for (None for the whole set); a DataError for a bad N."""
    if key == NAME:
        return None
    count = key[len(NAME) + 1 :]
    try:
        n = int(count.replace("_", "").replace(",", ""))
    except ValueError:
        raise DataError(f"{key}: give dsprites:N with N a whole number of images (2..{SIZE:,})") from None
    if not 2 <= n <= SIZE:
        raise DataError(
            f"{key}: dSprites has {SIZE:,} images; a subset needs between 2 (one train, one test) and {SIZE:,}"
        )
    return None if n == SIZE else n


def is_dsprites(key: str) -> bool:
    return key == NAME or key.startswith(NAME + ":")


def subset_indices(n: int) -> np.ndarray:
    """N distinct images of the whole set, drawn with `SEED` (sorted: the published order)."""
    rng = np.random.Generator(np.random.PCG64(SEED))
    return np.sort(rng.choice(SIZE, size=n, replace=False))


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the train and test images among `n` (10 % test, at least one), each split in a seeded random
    order: the first images of a split (those the figures show) mix every factor, as in a shuffled data set."""
    order = np.random.Generator(np.random.PCG64(SEED + 1)).permutation(n)
    n_test = max(1, int(round(n * TEST_FRACTION)))
    return order[n_test:], order[:n_test]


def build_cache(path: Path, quiet: bool = False) -> None:
    """Render the whole set in chunks and write it bit-packed to `path` (atomically: a temporary file, renamed)."""
    masks = sprite_masks()
    chunk = 32 * 32 * 40  # one shape and scale
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise DataError(
            f"{shown(path.parent)}: cannot create the data cache ({reason(exc)}); "
            f"point ${CACHE_ENV} or --cache-dir at a writable folder"
        ) from None
    os.close(handle)
    try:
        out = np.lib.format.open_memmap(temp, mode="w+", dtype=np.uint8, shape=(SIZE, SIDE * SIDE // 8))
        with progress.bar(SIZE, "building dSprites (once)", quiet, unit="img") as bar:
            for start in range(0, SIZE, chunk):
                images = render(np.arange(start, start + chunk), masks)
                out[start : start + chunk] = np.packbits(images.reshape(chunk, -1) > 0, axis=1)
                bar.update(chunk)
        out.flush()
        del out
        os.replace(temp, path)
    except OSError as exc:
        raise DataError(f"{shown(path)}: cannot write the dSprites cache ({reason(exc)})") from None
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def cached_images(cache_dir: str | Path | None = None, quiet: bool = False) -> np.ndarray:
    """The whole set's bit-packed images `[737280, 512]` (memory-mapped), built first when the cache lacks them
    (or holds a file of another shape, which is rebuilt)."""
    path = cache_root(cache_dir) / NAME / CACHE_FILE
    for attempt in range(2):
        try:
            packed = np.load(path, mmap_mode="r", allow_pickle=False)
            if packed.shape == (SIZE, SIDE * SIDE // 8) and packed.dtype == np.uint8:
                return packed
        except (OSError, ValueError):
            pass
        if attempt == 0:
            build_cache(path, quiet)
    raise DataError(f"{shown(path)}: the dSprites cache cannot be read back; delete it and try again")


def unpack(packed: np.ndarray) -> np.ndarray:
    """Bit-packed rows `[N, 512]` -> uint8 images `[N, 1, 64, 64]` in {0, 255}."""
    images = np.unpackbits(packed, axis=1).reshape(len(packed), 1, SIDE, SIDE)
    images *= 255
    return images


def load_dsprites(key: str = NAME, cache_dir: str | Path | None = None, quiet: bool = False) -> Dataset:
    """`dsprites` (the whole set, from the cache) or `dsprites:N` (a seeded subset of N images)."""
    n = parse(key)
    # the images, and a split's copy of them while it is cut: refused before any work if that cannot fit
    check_memory(2 * (n or SIZE) * SIDE * SIDE, key, "its images")
    if n is None:
        index, packed = np.arange(SIZE), cached_images(cache_dir, quiet)
        images_at = lambda at: unpack(packed[at])  # one split at a time: no second copy of the 3 GB set
    else:
        index = subset_indices(n)
        images_at = lambda at: render(index[at])
    factors = factors_of(index)
    train, test = split_indices(len(index))
    origin = "dsprites (generated)"
    return make_dataset(
        key,
        make_split(images_at(train), factors[train, 0], origin, factors[train]),
        make_split(images_at(test), factors[test, 0], origin, factors[test]),
        list(SHAPES),
        source=f"generated from the published dSprites specification ({len(index):,} of {SIZE:,} images)",
        factor_names=list(FACTOR_NAMES),
        factor_sizes=list(FACTOR_SIZES),
        factor_values=factor_values(),
    )
