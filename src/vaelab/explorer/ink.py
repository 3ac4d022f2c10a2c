"""Images made to look like the data's digits before they are encoded: MNIST's preprocessing (LeCun et al., 1998:
"size normalized to fit in a 20x20 pixel box while preserving their aspect ratio ... centered in a 28x28 image by
computing the center of mass of the pixels"), applied to drawings and uploads.

A drawing that fills its canvas, or a photo of a digit on paper, is not what the encoder was trained on: the digit
must be cropped to its ink, scaled so that its larger side fills the data's box, and shifted so that its centre of
mass sits at the image's centre. `static/ink.js` is the same computation for the page's canvas (the tests hold the
two to one grey level of each other): the same area-average resampling, the same rounding (floor(x + 0.5)).

Images here are grey 2-D arrays, light ink on black, values 0..255.
"""

from __future__ import annotations

import numpy as np

INK = 0.1  # a pixel is ink when it is brighter than this share of the image's brightest pixel
LIGHT = 127.5  # a border brighter than this on average is paper, not the data's black background


def round_half_up(x):
    """floor(x + 0.5): JavaScript's Math.round, not numpy's round-half-to-even."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def ink_bounds(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the ink, inclusive; None for an image without ink."""
    peak = float(image.max())
    if peak <= 0:
        return None
    mask = image > INK * peak
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def ink_box(images: np.ndarray) -> int | None:
    """The side of the data's normalization box (20 for MNIST): the median larger side of the ink of `images`
    (uint8 `[N, C, H, W]`), for digit-like data only (one channel, light ink on a black border); None otherwise."""
    if images.ndim != 4 or images.shape[1] != 1 or images.shape[0] == 0:
        return None
    grey = images[:, 0].astype(np.float64)
    if light_border(grey.mean(0)) or border(grey).mean() > 0.1 * 255:
        return None
    sides = []
    for image in grey:
        bounds = ink_bounds(image)
        if bounds is not None:
            top, bottom, left, right = bounds
            sides.append(max(bottom - top, right - left) + 1)
    return int(np.median(sides)) if sides else None


def border(image: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels of `[..., H, W]`."""
    return np.concatenate([image[..., 0, :], image[..., -1, :], image[..., :, 0], image[..., :, -1]], axis=-1)


def light_border(image: np.ndarray) -> bool:
    """Whether a grey image's outermost ring is light on average: dark strokes on light paper."""
    return bool(border(np.asarray(image, dtype=np.float64)).mean() > LIGHT)


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """`[n_out, n_in]`: output pixel o averages the input over [o, o + 1) * n_in / n_out, each input pixel weighted
    by its overlap (an area average; up-scaling repeats pixels, blending at the seams)."""
    scale = n_in / n_out
    starts = np.arange(n_out)[:, None] * scale
    lo = np.maximum(starts, np.arange(n_in)[None, :])
    hi = np.minimum(starts + scale, np.arange(n_in)[None, :] + 1)
    weights = np.clip(hi - lo, 0, None)
    return weights / weights.sum(1, keepdims=True)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) of the brightness-weighted mean pixel position."""
    total = image.sum()
    rows = np.arange(image.shape[0]) @ image.sum(1) / total
    cols = np.arange(image.shape[1]) @ image.sum(0) / total
    return float(rows), float(cols)


def is_normalized(image: np.ndarray, box: int) -> bool:
    """Whether the image already looks like the data: its ink's larger side within one pixel of the box, its centre
    of mass within one pixel of the centre (an image taken from the data is then left exactly as it is)."""
    bounds = ink_bounds(image)
    if bounds is None:
        return True
    top, bottom, left, right = bounds
    h, w = image.shape
    cy, cx = centre_of_mass(image.astype(np.float64))
    side = max(bottom - top, right - left) + 1
    return abs(side - box) <= 1 and abs(cy - (h - 1) / 2) <= 1 and abs(cx - (w - 1) / 2) <= 1


def normalize(image: np.ndarray, height: int, width: int, box: int) -> np.ndarray:
    """A grey image of any size (light ink on black) -> uint8 `[height, width]`: cropped to its ink, scaled (area
    average) so that its larger side is `box` pixels, aspect ratio kept, and placed so that its centre of mass is at
    the centre (pixels shifted past the edge are dropped). An image without ink comes back black."""
    image = np.asarray(image, dtype=np.float64)
    out = np.zeros((height, width))
    bounds = ink_bounds(image)
    if bounds is None:
        return out.astype(np.uint8)
    top, bottom, left, right = bounds
    crop = image[top : bottom + 1, left : right + 1]
    ch, cw = crop.shape
    scale = box / max(ch, cw)
    rh, rw = max(1, int(round_half_up(ch * scale))), max(1, int(round_half_up(cw * scale)))
    scaled = area_weights(ch, rh) @ crop @ area_weights(cw, rw).T  # [rh, rw]
    cy, cx = centre_of_mass(scaled)
    oy, ox = int(round_half_up((height - 1) / 2 - cy)), int(round_half_up((width - 1) / 2 - cx))
    y0, x0 = max(oy, 0), max(ox, 0)
    y1, x1 = min(oy + rh, height), min(ox + rw, width)
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = scaled[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return np.clip(round_half_up(out), 0, 255).astype(np.uint8)
