"""Images in and out of the explorer's server: PNG and raw bytes out, uploaded files in (Pillow).

uint8 arrays are channels last, `[H, W, C]` with C = 1 (grey) or 3 (RGB), as `session` returns them.
"""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from vaelab.explorer import ink

MAX_UPLOAD_PIXELS = 4096 * 4096  # checked from the header, before any pixel is decoded


class ImageError(ValueError):
    """An upload that is not a usable image; the message is one line for the user, `status` the HTTP answer's."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def to_pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image, "L" if image.shape[2] == 1 else "RGB")


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 `[H, W, C]` -> PNG file bytes (compress_level 1: these images are tiny, speed matters more)."""
    buffer = io.BytesIO()
    to_pil(image).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def raw_bytes(image: np.ndarray) -> bytes:
    """uint8 `[H, W, C]` -> its bytes, row-major, channels last (the page paints them on a canvas)."""
    return np.ascontiguousarray(image).tobytes()


def data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def read_upload(
    body: bytes, shape: tuple[int, int, int], invert: bool | None = False, box: int | None = None
) -> tuple[np.ndarray, str | None]:
    """An uploaded image file -> uint8 `[H, W, C]` at the data's `shape` (C, H, W), and a note when it had to be
    converted (resized, turned grey / RGB, inverted, normalized). Transparent pixels are laid over black (the digits'
    background); `invert` turns dark strokes on light paper into the data's light strokes on black (None: when the
    image's border is light, for digit-like data, `box` given). With `box` (the data's normalization box, see
    `ink`), a grey image is cropped to its ink, scaled into the box and centred by its centre of mass, as the data's
    digits are (an image that already looks so is left as it is)."""
    with warnings.catch_warnings():
        # what Pillow tolerates in a file ("Truncated File Read", palette transparency) is the user's file, not a
        # line for the server's terminal; a decompression bomb is an error
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return _read_upload(body, shape, invert, box)


def _read_upload(
    body: bytes, shape: tuple[int, int, int], invert: bool | None, box: int | None
) -> tuple[np.ndarray, str | None]:
    c, h, w = shape
    if not body:
        raise ImageError("upload: the request body is empty; send an image file (PNG, JPEG, ...)")
    try:
        image = Image.open(io.BytesIO(body))
        width, height = image.size
        if width * height > MAX_UPLOAD_PIXELS:
            raise ImageError(
                f"upload: a {width}x{height} image is too large (at most {MAX_UPLOAD_PIXELS:,} pixels); "
                f"the model takes {w}x{h}",
                413,
            )
        image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"upload: the image is too large (at most {MAX_UPLOAD_PIXELS:,} pixels)", 413) from None
    except UnidentifiedImageError:
        raise ImageError("upload: not an image file Pillow can read (send a PNG, JPEG, GIF, BMP, ...)", 415) from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"upload: the image file is damaged or truncated ({exc})") from None
    except Exception:  # a decoder's own error on a crafted file (struct.error, IndexError, ...): still a bad file
        raise ImageError("upload: Pillow cannot decode this file (damaged, or a variant it does not support)") from None
    if width == 0 or height == 0:
        raise ImageError(f"upload: the image is {width}x{height} pixels: there is nothing to encode")
    image, notes = to_grey_or_rgb(image, c)
    if image.size != (w, h):
        notes.insert(0, f"resized from {image.size[0]}x{image.size[1]} to {w}x{h}, the model's image size")
    digits = box is not None and c == 1
    if invert is None:
        invert = digits and ink.light_border(np.asarray(image))
        if invert:
            notes.append("dark strokes on a light background: inverted to the data's light strokes on black")
    if digits:
        array = np.asarray(image, dtype=np.uint8)
        array = 255 - array if invert else array
        if image.size != (w, h) or not ink.is_normalized(array, box):
            notes.append(f"cropped to its ink, scaled into the data's {box}x{box} box and centred, as the digits are")
            array = ink.normalize(array, h, w, box)
        return np.ascontiguousarray(array[:, :, None]), ("; ".join(notes) or None)
    if image.size != (w, h):
        image = image.resize((w, h), Image.Resampling.LANCZOS)
    array = np.asarray(image, dtype=np.uint8)
    array = array[:, :, None] if array.ndim == 2 else array
    if invert:
        array = 255 - array
    return np.ascontiguousarray(array), ("; ".join(notes) or None)


ALPHA_MODES = ("RGBA", "RGBa", "LA", "PA")
DEEP_GREY_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")  # 16- or 32-bit integer or float grey


def to_grey_or_rgb(image: Image.Image, channels: int) -> tuple[Image.Image, list[str]]:
    """An opened image in any of Pillow's modes -> mode "L" (channels 1) or "RGB" (3), and the notes on what was
    converted; a one-line `ImageError` (415) for a mode Pillow cannot convert (LAB, premultiplied "La")."""
    mode, notes = image.mode, []
    try:
        if mode in ALPHA_MODES or ("transparency" in image.info and mode in ("P", "L", "RGB")):
            rgba = image.convert("RGBA")  # transparent pixels over black, the digits' background
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
        if mode in DEEP_GREY_MODES:
            image = to_8_bits(image)
        grey = image.mode in ("L", "1") or _grey_colours(image)
        if grey != (channels == 1):
            notes.append("converted to grey" if channels == 1 else "converted to RGB")
        return image.convert("L" if channels == 1 else "RGB"), notes
    except ImageError:
        raise
    except ValueError:  # Pillow's "conversion from LAB to RGB not supported"
        raise ImageError(
            f"upload: Pillow cannot convert a {mode} image to grey or RGB; send a PNG or JPEG in grey or RGB", 415
        ) from None


def to_8_bits(image: Image.Image) -> Image.Image:
    """A 16- or 32-bit integer or float grey image -> 8 bits over its own range (its darkest pixel black)."""
    array = np.asarray(image, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ImageError("upload: the float image holds NaN or infinite pixels; send one of finite values")
    lo, hi = float(array.min()), float(array.max())
    scaled = (array - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(array)
    return Image.fromarray(scaled.astype(np.uint8))


def _grey_colours(image: Image.Image) -> bool:
    """Whether a colour image holds only greys (R = G = B), as a canvas drawing in white on black does."""
    rgb = np.asarray(image.convert("RGB"))
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
