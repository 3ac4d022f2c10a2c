"""`shapes` and `shapes-textured`: colour images generated inside vaelab (nothing downloaded), for tests, demos and
the README's colour example.

Each image is one shape (square, circle, triangle or ring) of a hue, a scale and a position on a background,
every one of these drawn from a seeded generator: the same name gives the same images, bit for bit, on every
machine. Shapes are drawn with 4 x 4 supersampling, so their edges take real 8-bit levels (what a likelihood of
8-bit pixels is for). `shapes-textured` draws the same factors on a two-colour gradient background (at a random
angle) with a fine pixel noise, the shape shaded from top to bottom: a harder set of the same kind.

Names: `shapes` (10,000 images of 3 x 32 x 32, 8,000 train / 2,000 test), `shapes:N` (N images), `shapes:NxS` (N
images of side S, 8..128); the same forms for `shapes-textured`. Labels: the shape; factors: shape, scale, hue,
background, x, y (`Dataset.factor_names`).
"""

from __future__ import annotations

import numpy as np

from vaelab import progress
from vaelab.data.dataset import Dataset, make_dataset, make_split
from vaelab.errors import DataError

NAMES = {
    "shapes": "coloured shapes (square, circle, triangle, ring) of varied hue, scale and position on plain "
    "backgrounds, generated: 10,000 RGB 32x32 images, 8,000 train / 2,000 test; shapes:N, shapes:NxSIDE",
    "shapes-textured": "the shapes on gradient backgrounds with pixel noise, shaded: 10,000 RGB 32x32 images; "
    "shapes-textured:N, shapes-textured:NxSIDE",
}
CLASSES = ["square", "circle", "triangle", "ring"]
FACTOR_NAMES = ["shape", "scale", "hue", "background", "x", "y"]
SCALES = np.array([0.12, 0.16, 0.20, 0.24])  # the shape's radius, as a fraction of the side
HUES = np.arange(8) / 8.0
BACKGROUNDS = np.array([[0.08, 0.08, 0.10], [0.10, 0.14, 0.32], [0.12, 0.26, 0.14], [0.80, 0.80, 0.78]])
POSITIONS = np.linspace(0.3, 0.7, 8)  # the shape's centre, as a fraction of the side (never cut by the border)
FACTOR_SIZES = [len(CLASSES), len(SCALES), len(HUES), len(BACKGROUNDS), len(POSITIONS), len(POSITIONS)]
DEFAULT_COUNT, DEFAULT_SIDE, MIN_SIDE, MAX_SIDE, MAX_COUNT = 10_000, 32, 8, 128, 1_000_000
TEST_FRACTION = 0.2
SUPERSAMPLE = 4
CHUNK = 256  # images rendered at once (4x supersampled: 256 x 128 x 128 floats at 128 px)
SEEDS = {"shapes": 0, "shapes-textured": 1}


def is_shapes(key: str) -> bool:
    return key.split(":", 1)[0] in NAMES


def parse(key: str) -> tuple[str, int, int]:
    """(name, number of images, side) of `shapes[:N[xSIDE]]`; a DataError naming the right form otherwise."""
    name, _, spec = key.partition(":")
    if not spec:
        return name, DEFAULT_COUNT, DEFAULT_SIDE
    count, times, side = spec.lower().partition("x")
    try:
        n = int(count.replace("_", "").replace(",", ""))
        s = int(side) if times else DEFAULT_SIDE
    except ValueError:
        raise DataError(f"{key}: give {name}:N or {name}:NxSIDE, e.g. {name}:2000x64") from None
    if not 2 <= n <= MAX_COUNT:
        raise DataError(f"{key}: the number of images must be between 2 (one train, one test) and {MAX_COUNT:,}")
    if not MIN_SIDE <= s <= MAX_SIDE:
        raise DataError(f"{key}: the side must be between {MIN_SIDE} and {MAX_SIDE} pixels")
    return name, n, s


def draw_factors(n: int, rng: np.random.Generator) -> np.ndarray:
    """`[n, 6]` value indices, each factor uniform over its values."""
    return np.stack([rng.integers(0, size, n) for size in FACTOR_SIZES], axis=1)


def hsv_to_rgb(h: np.ndarray, s: float, v: float) -> np.ndarray:
    """`[n]` hues in [0, 1) at saturation `s` and value `v` -> `[n, 3]` RGB in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0])[None, :] + h[:, None] * 6.0) % 6.0
    return v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def coverage(factors: np.ndarray, side: int) -> np.ndarray:
    """`[n, side, side]`: the fraction of each pixel the shape covers (4 x 4 samples per pixel)."""
    fine = side * SUPERSAMPLE
    grid = ((np.arange(fine) + 0.5) / fine).astype(np.float32)
    v, u = grid[None, :, None], grid[None, None, :]  # rows, columns
    shape = factors[:, 0, None, None]
    r = SCALES[factors[:, 1]][:, None, None].astype(np.float32)
    du = u - POSITIONS[factors[:, 4]][:, None, None].astype(np.float32)
    dv = v - POSITIONS[factors[:, 5]][:, None, None].astype(np.float32)
    dist = np.sqrt(du * du + dv * dv)
    square = np.maximum(np.abs(du), np.abs(dv)) <= 0.8 * r
    circle = dist <= r
    # an upward triangle: apex r above the centre, base r / 2 below it, sides at 30 degrees from the vertical
    triangle = (dv <= 0.5 * r) & (np.abs(du) <= (dv + r) / np.sqrt(3.0))
    ring = (dist <= r) & (dist >= 0.55 * r)
    inside = np.select([shape == 0, shape == 1, shape == 2], [square, circle, triangle], ring)
    counts = inside.reshape(len(factors), side, SUPERSAMPLE, side, SUPERSAMPLE).sum((2, 4), dtype=np.int32)
    return counts / SUPERSAMPLE**2


def render(factors: np.ndarray, side: int, textured: bool, rng: np.random.Generator) -> np.ndarray:
    """uint8 `[n, 3, side, side]` images of the given factors (`rng` draws a textured set's nuisances)."""
    n = len(factors)
    alpha = coverage(factors, side)[:, None]  # [n, 1, S, S]
    colour = hsv_to_rgb(HUES[factors[:, 2]], 0.75, 0.95)[:, :, None, None]  # [n, 3, 1, 1]
    background = BACKGROUNDS[factors[:, 3]][:, :, None, None]
    grid = (np.arange(side) + 0.5) / side
    if textured:
        angle = rng.uniform(0, 2 * np.pi, n)[:, None, None]
        ramp = (np.cos(angle) * (grid[None, None, :] - 0.5) + np.sin(angle) * (grid[None, :, None] - 0.5)) + 0.5
        second = 0.6 * background + 0.4 * hsv_to_rgb(rng.uniform(0, 1, n), 0.5, 0.6)[:, :, None, None]
        background = background + (second - background) * ramp[:, None]
        background = background + rng.normal(0.0, 0.03, (n, 3, side, side))
        shade = 1.1 - 0.35 * (grid[None, None, :, None] - POSITIONS[factors[:, 5]][:, None, None, None]) / 0.24
        colour = colour * np.clip(shade, 0.6, 1.2)
    image = background * (1.0 - alpha) + colour * alpha
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def generate(name: str, n: int, side: int, quiet: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 `[n, 3, side, side]`, factors int64 `[n, 6]`) of the named set, from its fixed seed."""
    rng = np.random.Generator(np.random.PCG64(SEEDS[name]))
    factors = draw_factors(n, rng)
    images = np.empty((n, 3, side, side), np.uint8)
    with progress.bar(n, f"generating {name}", quiet, unit="img") as shown:
        for start in range(0, n, CHUNK):
            images[start : start + CHUNK] = render(factors[start : start + CHUNK], side, name != "shapes", rng)
            shown.update(min(CHUNK, n - start))
    return images, factors


def load_shapes(key: str = "shapes", quiet: bool = True) -> Dataset:
    """`shapes[:N[xSIDE]]` or `shapes-textured[:N[xSIDE]]`: the first 80 % of the images train, the rest test."""
    name, n, side = parse(key)
    images, factors = generate(name, n, side, quiet)
    n_test = max(1, int(round(n * TEST_FRACTION)))
    origin = f"{key} (generated)"
    cut = n - n_test
    return make_dataset(
        key,
        make_split(images[:cut], factors[:cut, 0], origin, factors[:cut]),
        make_split(images[cut:], factors[cut:, 0], origin, factors[cut:]),
        list(CLASSES),
        source=f"generated by vaelab ({n:,} images of 3x{side}x{side}, seed {SEEDS[name]})",
        factor_names=list(FACTOR_NAMES),
        factor_sizes=list(FACTOR_SIZES),
        factor_values=[list(map(float, v)) for v in (range(4), SCALES, HUES, range(4), POSITIONS, POSITIONS)],
    )
