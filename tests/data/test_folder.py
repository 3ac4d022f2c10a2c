"""The image-folder reader (vaelab.data.folder): layouts, modes, bit depths and formats loaded pixel for pixel, and
every bad folder or image refused in one line (a header claiming a huge image is refused before it is decoded)."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from tests.helpers.files import png_header, save_png
from tests.helpers.fuzz import FUZZ, assert_valid, fresh_dir, outcome
from vaelab import data
from vaelab.data import folder
from vaelab.errors import DataError


def test_folder_with_class_subfolders_grayscale(tmp_path):
    for k in range(10):
        save_png(tmp_path / ("cat" if k % 2 else "dog") / f"{k}.png", np.full((6, 7), k * 20, np.uint8))
    ds = data.load(tmp_path)
    assert ds.classes == ["cat", "dog"] and ds.shape == (1, 6, 7)
    assert (len(ds.train), len(ds.test)) == (8, 2) and sorted(ds.test.labels.tolist()) == [0, 1]
    # label follows the folder: dog images hold even multiples of 20
    for image, label in zip(ds.train.images, ds.train.labels):
        assert (int(image[0, 0, 0]) // 20) % 2 == (0 if ds.classes[label] == "dog" else 1)


def test_folder_train_test_rgb_resized(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        for k in range(3):
            Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(tmp_path / split / f"{k}.jpg")
    ds = data.load(tmp_path, size=(16, 12))
    assert ds.shape == (3, 16, 12) and len(ds.train) == 3 and ds.train.labels is None


def test_folder_mixed_sizes_need_a_size(tmp_path):
    save_png(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    save_png(tmp_path / "b.png", np.zeros((9, 8), np.uint8))
    with pytest.raises(DataError, match="give a size"):
        data.load(tmp_path)
    assert data.load(tmp_path, size=4).shape == (1, 4, 4)


def test_folder_unreadable_image(tmp_path):
    save_png(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "b.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="b.png: unreadable image"):
        data.load(tmp_path)


def test_folder_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        data.load(tmp_path / "empty")


def png_claiming(width, height):
    """A PNG whose header claims width x height pixels, with no pixel data behind it."""
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [20000, 10000, 2**31 - 1])
@pytest.mark.parametrize("size", [None, (8, 8)])
def test_folder_header_claiming_huge_image(tmp_path, side, size):
    save_png(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "b.png").write_bytes(png_claiming(side, side))
    with pytest.raises(DataError, match="b.png: its header declares") as err:
        data.load(tmp_path, size=size)
    assert "DecompressionBomb" not in str(err.value)


def test_folder_sixteen_bit_images_scale_by_their_depth(tmp_path):
    # 16-bit values scale 65535 -> 255 whatever the image holds (a dark 16-bit image stays dark)
    Image.fromarray(np.array([[0, 65535], [32896, 200]], np.uint16)).save(tmp_path / "a.png")
    Image.fromarray(np.array([[257, 514], [0, 0]], np.uint16)).save(tmp_path / "b.tif")
    ds = data.load(tmp_path)
    pixels = sorted(torch.cat([ds.train.images, ds.test.images]).flatten().tolist())
    assert pixels == sorted([0, 255, 128, 1] + [1, 2, 0, 0])
    assert ds.shape == (1, 2, 2)


def test_folder_float_images(tmp_path):
    Image.fromarray(np.array([[0.0, 1.0]], np.float32)).save(tmp_path / "a.tif")
    Image.fromarray(np.array([[0.5, 0.25]], np.float32)).save(tmp_path / "b.tif")
    ds = data.load(tmp_path)
    assert sorted(torch.cat([ds.train.images, ds.test.images]).flatten().tolist()) == [0, 64, 128, 255]
    Image.fromarray(np.array([[np.nan, 1.0]], np.float32)).save(tmp_path / "c.tif")
    with pytest.raises(DataError, match="c.tif: holds NaN"):
        data.load(tmp_path)


def test_folder_palette_alpha_and_odd_modes(tmp_path):
    grey_palette = Image.fromarray(np.full((3, 3), 90, np.uint8)).convert("P")
    grey_palette.save(tmp_path / "a.gif")  # a GIF's palette holds colours its grey pixels never use
    Image.fromarray(np.full((3, 3, 2), 200, np.uint8), "LA").save(tmp_path / "b.png")
    transparent = Image.fromarray(np.full((3, 3), 30, np.uint8)).convert("P")
    transparent.save(tmp_path / "c.png", transparency=0)
    (tmp_path / "._d.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS's shadow file: skipped
    ds = data.load(tmp_path)
    assert ds.shape == (1, 3, 3)
    assert sorted({int(x) for x in torch.cat([ds.train.images, ds.test.images]).flatten()}) == [30, 90, 200]
    Image.new("CMYK", (3, 3), (0, 255, 0, 0)).save(tmp_path / "e.jpg")  # a colour image: the set becomes RGB
    assert data.load(tmp_path).shape == (3, 3, 3)


def loaded_arrays(ds) -> list[np.ndarray]:
    """Every image of both splits as an `[H, W, C]` uint8 array, in the loader's order."""
    return [image.permute(1, 2, 0).numpy() for image in torch.cat([ds.train.images, ds.test.images])]


def same_images(loaded: list[np.ndarray], written: list[np.ndarray]) -> bool:
    """Whether the loaded images are exactly the written ones (in any order: the split shuffles them)."""
    return len(loaded) == len(written) and all(any(np.array_equal(a, b) for a in loaded) for b in written)


def test_folder_rgb_pixels_round_trip_exactly_in_channel_order(tmp_path):
    """Catches RGB images read as BGR, with channels or axes transposed, or rounded on the way (a lossy
    resize or colour conversion when no --size was asked)."""
    rng = np.random.default_rng(1)
    written = {
        split: [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8) for _ in range(3)] for split in ("train", "test")
    }
    written["train"][0][0, 0] = (255, 0, 0)  # pure red, green and blue pixels: channel 0 is red
    written["train"][0][0, 1] = (0, 255, 0)
    written["train"][0][4, 6] = (0, 0, 255)
    for split, arrays in written.items():
        for k, array in enumerate(arrays):
            save_png(tmp_path / split / f"{k}.png", array)
    ds = data.load(tmp_path)
    assert ds.shape == (3, 5, 7) and ds.train.images.dtype == torch.uint8
    for split, arrays in written.items():
        loaded = [image.permute(1, 2, 0).numpy() for image in getattr(ds, split).images]
        assert same_images(loaded, arrays), split
    red = next(image for image in ds.train.images if image[:, 0, 0].tolist() == [255, 0, 0])
    assert red[:, 0, 1].tolist() == [0, 255, 0] and red[:, 4, 6].tolist() == [0, 0, 255]


def test_folder_of_grey_and_colour_images_becomes_rgb_with_grey_in_every_channel(tmp_path):
    """Catches a grey image in a colour set left in one channel (or dropped) instead of repeated in all three."""
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    colour = np.dstack([grey, 255 - grey, np.full_like(grey, 77)])
    save_png(tmp_path / "a.png", grey)
    save_png(tmp_path / "b.png", colour)
    ds = data.load(tmp_path)
    assert ds.shape == (3, 3, 4)
    assert same_images(loaded_arrays(ds), [np.dstack([grey] * 3), colour])


def test_folder_sixteen_bit_grey_png_scales_every_value_by_257(tmp_path):
    """Catches 16-bit pixels truncated to their low byte, clipped at 255, divided by 256 instead of 257, or
    scaled by the image's own maximum (a dark 16-bit image must stay dark)."""
    values = np.linspace(0, 65535, 6 * 9).round().astype(np.uint16).reshape(6, 9)
    values[0, :3] = (511, 383, 65534)  # 1.99, 1.49, 254.996 levels: rounding, not truncation
    dark = np.full((6, 9), 300, np.uint16)
    for name, array in (("a.png", values), ("b.png", dark)):
        Image.fromarray(array).save(tmp_path / name)
    assert Image.open(tmp_path / "a.png").mode.startswith("I;16")  # a real 16-bit file
    ds = data.load(tmp_path)
    expected = [np.rint(array / 257.0).astype(np.uint8)[..., None] for array in (values, dark)]
    assert ds.shape == (1, 6, 9) and same_images(loaded_arrays(ds), expected)
    assert expected[0][0, :3, 0].tolist() == [2, 1, 255] and expected[1].max() == 1


def png_48bit(path, rgb16: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one), `rgb16` uint16 `[H, W, 3]`."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))  # filter byte 0 per row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16 bits, colour type 2 (RGB)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def test_folder_sixteen_bit_rgb_png_scales_to_eight_bits_in_channel_order(tmp_path):
    """Catches a 48-bit colour PNG read from its low bytes, clipped, or with its channels reordered. Pillow
    decodes such a file to 8 bits by keeping each value's high byte: within one level of value / 257."""
    rng = np.random.default_rng(2)
    arrays = [rng.integers(0, 65536, (4, 5, 3)).astype(np.uint16) for _ in range(2)]
    arrays[0][0, 0], arrays[0][0, 1] = (65535, 0, 32896), (0, 65535, 0)
    for k, array in enumerate(arrays):
        png_48bit(tmp_path / f"{k}.png", array)
    ds = data.load(tmp_path)
    assert ds.shape == (3, 4, 5)
    loaded = loaded_arrays(ds)
    for array in arrays:
        scaled = array / 257.0
        assert any(np.abs(image - scaled).max() <= 1.0 for image in loaded)
    first = next(image for image in loaded if np.abs(image - arrays[0] / 257.0).max() <= 1.0)
    assert first[0, 0].tolist() == [255, 0, 128] and first[0, 1].tolist() == [0, 255, 0]


def test_folder_palette_colour_images_load_as_their_palette_colours(tmp_path):
    """Catches palette (mode P) images read as their palette indices, or as grey, instead of the colours."""
    palette = [(200, 10, 30), (0, 128, 255), (17, 240, 99), (255, 255, 0)]
    indices = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [1, 1, 0, 2]], np.uint8)
    expected = np.array(palette, np.uint8)[indices]  # [3, 4, 3]
    for name in ("a.png", "b.gif"):
        image = Image.fromarray(indices, "P")
        image.putpalette([v for colour in palette for v in colour])
        image.save(tmp_path / name)
    with_alpha = Image.fromarray(indices, "P")
    with_alpha.putpalette([v for colour in palette for v in colour])
    with_alpha.save(tmp_path / "c.png", transparency=3)  # a transparent palette entry: its colour is kept
    assert Image.open(tmp_path / "a.png").mode == "P"
    ds = data.load(tmp_path)
    assert ds.shape == (3, 3, 4)
    assert same_images(loaded_arrays(ds), [expected, expected, expected])


@pytest.mark.parametrize(
    "fmt, suffix",
    [("PNG", ".png"), ("BMP", ".bmp"), ("GIF", ".gif"), ("TIFF", ".tif"), ("WEBP", ".webp"), ("JPEG", ".jpg")],
)
def test_folder_every_advertised_format_loads(tmp_path, fmt, suffix):
    # every format in a folder of one kind (a restricted decoder list once broke all but PNG and JPEG)
    for k in range(3):
        Image.fromarray(np.full((4, 5), 60 * k, np.uint8)).save(tmp_path / f"{k}{suffix}", fmt)
    ds = data.load(tmp_path)
    channels = 3 if fmt == "WEBP" else 1  # WebP has no grey mode: Pillow reads it back as RGB
    assert ds.shape == (channels, 4, 5) and len(ds.train) + len(ds.test) == 3


def test_folder_refuses_other_decoders(tmp_path):
    # a .png that is really an EPS must not reach Ghostscript (Pillow's EPS plugin runs it)
    save_png(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "b.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 4 4\n")
    with pytest.raises(DataError, match="b.png: unreadable image"):
        data.load(tmp_path)


@pytest.mark.parametrize("size", [0, -1, 10**9, (0, 5), (5, -5), (1, 10**8), (2.5, 3), "28", True, (1, 2, 3)])
def test_absurd_sizes(tmp_path, size):
    save_png(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    save_png(tmp_path / "b.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="size"):
        data.load(tmp_path, size=size)


MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "I;16", "F", "LAB", "HSV"]


FORMATS = ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"]


SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp"}


def encode(image: Image.Image, fmt: str) -> tuple[str, bytes]:
    """`(suffix, bytes)` of `image` saved as `fmt`, or as TIFF or PNG when `fmt` cannot store its mode."""
    for candidate in (fmt, "TIFF", "PNG"):
        buffer = io.BytesIO()
        try:
            image.save(buffer, candidate)
            return SUFFIX[candidate], buffer.getvalue()
        except (OSError, ValueError, KeyError, TypeError):
            continue
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG")
    return ".png", buffer.getvalue()


@st.composite
def pil_images(draw, size: tuple[int, int], sane: bool = False) -> Image.Image:
    """A `size` (W, H) image of any mode; `sane` keeps the values of deep modes in the range a file may hold
    (else float images get NaN, inf and negatives, 32-bit ones any integer)."""
    mode = draw(st.sampled_from(MODES))
    if mode == "F":
        elements = st.floats(0, 1, width=32) if sane else None
        return Image.fromarray(draw(hnp.arrays(np.float32, size[::-1], elements=elements)))
    if mode in ("I", "I;16"):
        dtype = np.int32 if mode == "I" else np.uint16
        elements = st.integers(0, 65535) if sane else None
        return Image.fromarray(draw(hnp.arrays(dtype, size[::-1], elements=elements)))
    rgb = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, 256, (*size[::-1], 3), dtype=np.uint8)
    if draw(st.booleans()):
        rgb[..., 1] = rgb[..., 2] = rgb[..., 0]  # grey pixels in a colour mode
    return Image.fromarray(rgb).convert(mode) if mode not in ("LAB", "HSV") else Image.new(mode, size)


@st.composite
def image_bytes(draw, size: tuple[int, int] | None = None) -> tuple[str, bytes]:
    """`(suffix, bytes)`: a small image of any mode in any format that can store it (`size` (W, H) most of
    the time, when given), or a hostile file."""
    kind = draw(st.sampled_from(["image"] * 12 + ["png-header", "garbage", "truncated"]))
    if kind == "png-header":
        side = st.integers(0, 8) | st.sampled_from([20000, 65535, 2**31 - 1, 2**32 - 1])
        return ".png", png_header(draw(side), draw(side), draw(st.sampled_from([1, 8, 16, 3])), draw(st.integers(0, 7)))
    if kind == "garbage":
        return draw(st.sampled_from(sorted(SUFFIX.values()))), draw(st.binary(max_size=200))
    if size is None or draw(st.integers(0, 4)) == 0:
        size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    suffix, raw = encode(draw(pil_images(size)), draw(st.sampled_from(FORMATS)))
    if kind == "truncated":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    return suffix, raw


SIZES = (
    st.none()
    | st.integers(-2, 40)
    | st.tuples(st.integers(-2, 40), st.integers(-2, 40))
    | st.sampled_from([10**9, (10**5, 10**5), (1, 10**7)])
)


@FUZZ
@given(
    images=st.tuples(st.integers(1, 6), st.integers(1, 6)).flatmap(
        lambda size: st.lists(
            st.tuples(st.sampled_from(["", "a", "b", "train", "test", ".hidden"]), image_bytes(size)), max_size=6
        )
    ),
    layout=st.sampled_from(["flat", "classes", "train-test"]),
    size=SIZES,
)
@example(images=[("", (".png", png_header(20000, 20000)))] * 2, layout="flat", size=None)  # a decompression bomb
@example(images=[("", (".png", png_header(10000, 10000)))], layout="flat", size=(8, 8))
@example(images=[("a", (".png", png_header(3, 3, 16, 0)))] * 3, layout="classes", size=None)
@example(images=[("", (".png", b"\x89PNG broken"))] * 2, layout="flat", size=10**9)
def test_fuzz_image_folders(scratch, images, layout, size):
    """Found by fuzzing: a property test (Hypothesis)."""
    with fresh_dir(scratch) as folder:
        for i, (sub, (suffix, raw)) in enumerate(images):
            where = folder
            if layout == "classes" and sub:
                where = folder / sub
            elif layout == "train-test":
                where = folder / ("test" if i % 3 == 2 else "train") / sub
            where.mkdir(parents=True, exist_ok=True)
            (where / f"{i}{suffix}").write_bytes(raw)
        outcome(data.load, folder, size=size)


GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "F"}


def expected_channels(raw: bytes) -> int:
    """1 when the stored image is grey (a grey mode, or a palette whose pixels are all grey), else 3."""
    with Image.open(io.BytesIO(raw)) as stored:
        if stored.mode in GREY_MODES:
            return 1
        if stored.mode in ("P", "PA"):
            rgb = np.asarray(stored.convert("RGB")).astype(int)
            return 1 if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all() else 3
        return 3


@FUZZ
@given(
    size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    data_=st.data(),
    resize=st.none() | st.tuples(st.integers(1, 9), st.integers(1, 9)),
)
def test_fuzz_valid_images_always_load(scratch, size, data_, resize):
    """Every image a user can save (any mode, any of the formats, values in range) loads: grey or RGB, its size;
    a single pixel is refused (`test_folder_single_pixel_image_refused`). Found by fuzzing: a property test
    (Hypothesis)."""
    if size == (1, 1):
        size = (1, 2)
    encoded = [
        encode(data_.draw(pil_images(size, sane=True)), data_.draw(st.sampled_from(FORMATS)))
        for _ in range(data_.draw(st.integers(2, 4)))
    ]
    with fresh_dir(scratch) as folder:
        for i, (suffix, raw) in enumerate(encoded):
            (folder / f"{i}{suffix}").write_bytes(raw)
        dataset = data.load(folder, size=resize)
    assert_valid(dataset)
    channels = 1 if all(expected_channels(raw) == 1 for _, raw in encoded) else 3
    assert dataset.shape == (channels, *(resize or size[::-1]))
    assert len(dataset.train) + len(dataset.test) == len(encoded)


def colour_folder(root, n=12, side=5, seed=0):
    """`n` random RGB PNGs in two class sub-folders."""
    rng = np.random.default_rng(seed)
    for k in range(n):
        save_png(root / ("a" if k % 2 else "b") / f"{k}.png", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    return root


def every_image(ds) -> torch.Tensor:
    return torch.cat([ds.train.images, ds.test.images])


def cache_files(cache, suffix):
    return sorted((cache / "folders").glob(f"*{suffix}"))


def test_folder_decoded_once_then_memory_mapped(tmp_path, monkeypatch):
    """The second load reads the cached array (no image decoded), mapped from the cache file, with the same
    images, labels and split as the first."""
    root, cache = colour_folder(tmp_path / "imgs"), tmp_path / "cache"
    first = data.load(root, cache_dir=cache)
    uncached = every_image(folder.load_folder(root, cache=False))
    assert len(cache_files(cache, ".npy")) == 1 and len(cache_files(cache, ".json")) == 1
    monkeypatch.setattr(folder, "_decode", lambda *a: pytest.fail("a cached folder was decoded again"))
    second = data.load(root, cache_dir=cache)
    assert torch.equal(every_image(first), every_image(second)) and second.classes == ["a", "b"]
    assert torch.equal(first.train.labels, second.train.labels) and torch.equal(first.test.labels, second.test.labels)
    maps = Path("/proc/self/maps")
    if maps.exists():
        assert cache_files(cache, ".npy")[0].name in maps.read_text()
    assert torch.equal(uncached, every_image(second))  # the cached set is the one an uncached load makes


def test_folder_changed_is_decoded_again(tmp_path, capsys):
    root, cache = colour_folder(tmp_path / "imgs"), tmp_path / "cache"
    before = data.load(root, cache_dir=cache)
    save_png(root / "a" / "new.png", np.zeros((5, 5, 3), np.uint8))
    after = data.load(root, cache_dir=cache)
    assert len(after.train) + len(after.test) == len(before.train) + len(before.test) + 1
    assert "changed since it was decoded" in capsys.readouterr().err
    assert len(cache_files(cache, ".npy")) == 1  # the old array was removed
    # an edit that keeps the size is seen through its modification time
    target = root / "b" / "0.png"
    save_png(target, np.full((5, 5, 3), 7, np.uint8))
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    assert (every_image(data.load(root, cache_dir=cache)) == 7).all(dim=(1, 2, 3)).sum() == 1
    # another --size is another entry
    assert data.load(root, size=(3, 3), cache_dir=cache).shape == (3, 3, 3)
    assert len(cache_files(cache, ".json")) == 2


@pytest.mark.parametrize(
    "damage",
    ["truncated array", "array header", "garbage json", "wrong shape in json"],
)
def test_folder_damaged_cache_is_rebuilt(tmp_path, capsys, damage):
    root, cache = colour_folder(tmp_path / "imgs"), tmp_path / "cache"
    expected = every_image(data.load(root, cache_dir=cache))
    array, meta = cache_files(cache, ".npy")[0], cache_files(cache, ".json")[0]
    if damage == "truncated array":
        array.write_bytes(array.read_bytes()[:-10])
    elif damage == "array header":
        array.write_bytes(b"\x93NUMPY garbage" + array.read_bytes()[14:])
    elif damage == "garbage json":
        meta.write_text("{not json")
    else:
        values = json.loads(meta.read_text())
        meta.write_text(json.dumps({**values, "shape": [5, 3, 5, 5]}))
    assert torch.equal(every_image(data.load(root, cache_dir=cache)), expected)
    err = capsys.readouterr().err
    assert "is damaged" in err and "decoding it again" in err and len(err.strip().splitlines()) == 1
    capsys.readouterr()
    assert torch.equal(every_image(data.load(root, cache_dir=cache)), expected)
    assert capsys.readouterr().err == ""  # rebuilt: the next load is a clean hit


def test_folder_workers_follow_the_free_cores(monkeypatch):
    """One thread per core other processes leave free; one for a single chunk of images."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(folder.time, "sleep", lambda s: None)
    assert folder._workers(folder._CHUNK) == 1
    samples = iter([folder.threads.Sample(0.0, 0.0, 0.0), folder.threads.Sample(1.0, 3.0, 1.0)])
    monkeypatch.setattr(folder.threads, "sample", lambda cores: next(samples))
    assert folder._workers(100 * folder._CHUNK) == 2  # others took 2 of the 4 cores


def test_folder_decoded_in_parallel_chunks(tmp_path, monkeypatch):
    """Chunks of the pool land at their own rows (small chunks force several tasks on several threads)."""
    monkeypatch.setattr(folder, "_CHUNK", 3)
    monkeypatch.setattr(folder, "_workers", lambda n: 2)  # however busy the machine is
    root = colour_folder(tmp_path / "imgs", n=20)
    parallel = folder.load_folder(root, cache=False)
    monkeypatch.setattr(folder, "_CHUNK", 1000)
    assert torch.equal(every_image(parallel), every_image(folder.load_folder(root, cache=False)))


def test_folder_truncated_png_single_pixel_and_empty_split(tmp_path):
    """The issue's bad folders (issue 22): each a one-line error that names the file and says what to do."""
    save_png(tmp_path / "t" / "a.png", np.zeros((8, 8), np.uint8))
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)).save(buffer, "PNG")
    (tmp_path / "t" / "b.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DataError, match="b.png: unreadable image"):
        data.load(tmp_path / "t")
    save_png(tmp_path / "p" / "a.png", np.zeros((8, 8), np.uint8))
    save_png(tmp_path / "p" / "b.png", np.zeros((1, 1), np.uint8))
    for size in (None, (8, 8)):
        with pytest.raises(DataError, match="b.png: is a single pixel"):
            data.load(tmp_path / "p", size=size)
    for k in range(3):
        save_png(tmp_path / "s" / "train" / f"{k}.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "s" / "test").mkdir()
    with pytest.raises(DataError, match="test: no image files found"):
        data.load(tmp_path / "s")


def test_folder_without_a_writable_cache_still_loads(tmp_path, monkeypatch, capsys):
    root, cache = colour_folder(tmp_path / "imgs"), tmp_path / "cache"
    monkeypatch.setattr(folder.folder_cache, "writable", lambda meta_path: False)
    loaded = data.load(root, cache_dir=cache)
    assert torch.equal(every_image(loaded), every_image(folder.load_folder(root, cache=False)))
    assert "is not writable; not cached" in capsys.readouterr().err and not cache_files(cache, ".npy")
