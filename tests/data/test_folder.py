"""Data: the embedded set, the IDX / npz / image-folder readers, and every bad input they must refuse."""

import gzip
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from vaelab import data
from vaelab.data.embedded import MNIST_MINI_PATH, MNIST_MINI_SHA256, content_sha256
from vaelab.errors import DataError


def write_idx(path, array, type_byte=0x08, gz=False):
    array = np.asarray(array)
    raw = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def mnist_like_dir(tmp_path, gz=False, n_train=30, n_test=10):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), gz=gz
        )
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n, dtype=np.uint8), gz=gz)
    return tmp_path


# --- the embedded set -------------------------------------------------------------------------------------


def test_mnist_mini_is_the_real_10000_digits():
    ds = data.load("mnist-mini")
    assert (len(ds.train), len(ds.test)) == (8000, 2000)
    assert ds.shape == (1, 28, 28) and ds.train.images.dtype == torch.uint8
    assert ds.num_classes == 10 and ds.classes == [str(d) for d in range(10)]
    counts = torch.bincount(torch.cat([ds.train.labels, ds.test.labels]), minlength=10).tolist()
    assert counts == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    # stratified: every class gives 20% (+-1) of its images to test
    test_counts = torch.bincount(ds.test.labels, minlength=10)
    assert torch.all((test_counts.float() - torch.tensor(counts) * 0.2).abs() <= 1)
    assert int(ds.train.images.max()) == 255 and int(ds.train.images.min()) == 0
    with np.load(MNIST_MINI_PATH) as f:
        assert content_sha256({k: f[k] for k in f.files}) == MNIST_MINI_SHA256


def test_mnist_mini_looks_like_digits():
    ds = data.load("mnist-mini")
    x = ds.train.images.float() / 255
    assert 0.10 < x.mean() < 0.16  # MNIST's mean intensity is about 0.13
    border = torch.cat([x[..., :2, :].flatten(), x[..., -2:, :].flatten()])
    assert border.mean() < 0.01  # digits are centred on a black background
    ones, zeros = x[ds.train.labels == 1].mean(), x[ds.train.labels == 0].mean()
    assert ones < zeros  # a "1" has far less ink than a "0"


# --- IDX --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory(tmp_path, gz):
    ds = data.load(mnist_like_dir(tmp_path, gz=gz))
    assert (len(ds.train), len(ds.test)) == (30, 10)
    assert ds.shape == (1, 28, 28) and ds.train.labels.dtype == torch.int64


def test_idx_explicit_paths_round_trip(tmp_path):
    images = np.arange(6 * 4 * 5, dtype=np.uint8).reshape(6, 4, 5)
    labels = np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8)
    ds = data.load_idx(
        write_idx(tmp_path / "a-idx3", images),
        write_idx(tmp_path / "a-idx1", labels),
        write_idx(tmp_path / "b-idx3", images[:2]),
        write_idx(tmp_path / "b-idx1", labels[:2]),
    )
    assert torch.equal(ds.train.images[:, 0], torch.from_numpy(images))
    assert ds.test.labels.tolist() == [0, 1]


def test_idx_float_values_are_scaled(tmp_path):
    path = write_idx(tmp_path / "x-idx3", np.full((5, 3, 3), 0.5, dtype=np.float32), type_byte=0x0D)
    ds = data.load(path)  # one file: split 80/20
    assert (len(ds.train), len(ds.test)) == (4, 1) and int(ds.train.images[0, 0, 0, 0]) == 128


def test_idx_bad_magic(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + b"\0" * 100)
    with pytest.raises(DataError, match="bad magic number"):
        data.load_idx(path)


def test_idx_truncated(tmp_path):
    directory = mnist_like_dir(tmp_path)
    path = directory / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        data.load(directory)
    assert "train-images-idx3-ubyte" in str(err.value)


def test_idx_label_count_mismatch(tmp_path):
    directory = mnist_like_dir(tmp_path)
    write_idx(directory / "t10k-labels-idx1-ubyte", np.zeros(9, dtype=np.uint8))
    with pytest.raises(DataError, match="9 labels for 10 images"):
        data.load(directory)


def test_idx_directory_missing_file(tmp_path):
    directory = mnist_like_dir(tmp_path)
    (directory / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels"):
        data.load(directory)


def test_idx_corrupt_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(DataError, match="cannot read or decompress"):
        data.load_idx(path)


# --- npz --------------------------------------------------------------------------------------------------


def test_npz_layouts(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)
    y = np.arange(20) % 4
    np.savez(tmp_path / "own.npz", train_images=x[:15], train_labels=y[:15], test_images=x[15:], test_labels=y[15:])
    np.savez(
        tmp_path / "keras.npz",
        x_train=x[:15, :, :, None] / 255.0,
        y_train=y[:15],
        x_test=x[15:, :, :, None] / 255.0,
        y_test=y[15:],
    )
    np.savez(tmp_path / "pool.npz", images=np.repeat(x[:, None], 3, axis=1), labels=y)
    own, keras, pool = (data.load(tmp_path / f"{n}.npz") for n in ("own", "keras", "pool"))
    assert torch.equal(own.train.images, keras.train.images)  # float [0, 1] round-trips to the same uint8
    assert own.shape == (1, 8, 8) and pool.shape == (3, 8, 8)
    assert (len(pool.train), len(pool.test)) == (16, 4)
    assert sorted(pool.test.labels.tolist()) == [0, 1, 2, 3]  # stratified


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": np.full((4, 5, 5), 1.5)}, "must lie in \\[0, 1\\]"),
        ({"images": np.full((4, 5, 5), 300)}, "must lie in \\[0, 255\\]"),
        ({"images": np.zeros((4, 5, 5), np.uint8), "labels": np.zeros(3, int)}, "3 labels for 4 images"),
        ({"pixels": np.zeros((4, 5, 5), np.uint8)}, "found keys \\['pixels'\\]"),
        ({"images": np.zeros((4, 5), np.uint8)}, "images must be"),
        ({"images": np.full((4, 5, 5), np.nan)}, "NaN"),
    ],
)
def test_npz_bad_input(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        data.load(tmp_path / "bad.npz")


def test_npz_corrupt_file(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        data.load(tmp_path / "bad.npz")


# --- image folders ----------------------------------------------------------------------------------------


def save_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


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


def test_unknown_name_or_missing_path():
    with pytest.raises(DataError, match="not a data set name"):
        data.load("no-such-set")


# --- batching ---------------------------------------------------------------------------------------------


def test_batches_cover_the_epoch_and_shard_disjointly():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    seen = []
    for rank in range(2):
        gen = torch.Generator().manual_seed(3)
        seen.append(
            torch.cat(
                [x.flatten() for x, _ in data.batches(images, 3, shuffle=True, generator=gen, rank=rank, world_size=2)]
            )
        )
    assert set((seen[0] * 255).round().int().tolist()).isdisjoint((seen[1] * 255).round().int().tolist())
    assert len(seen[0]) == len(seen[1]) == 5
    whole = torch.cat([x for x, _ in data.batches(images, 4)])
    assert whole.dtype == torch.float32 and torch.allclose(whole.flatten() * 255, torch.arange(10.0))


# --- command line -----------------------------------------------------------------------------------------


def test_cli_data_info_and_list(cli):
    info = cli("data", "info", "mnist-mini")
    assert info.returncode == 0, info.stderr
    assert "8000 images" in info.stdout and "2000 images" in info.stdout and "(1, 28, 28)" in info.stdout
    assert "1:902" in info.stdout  # the label histogram of the training split
    listing = cli("data", "list")
    assert listing.returncode == 0 and all(n in listing.stdout for n in ("mnist-mini", "mnist", "fashion-mnist"))


def test_cli_data_bad_input_is_one_line(cli, tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"junk")
    for args in (
        ["data", "info", tmp_path / "missing"],
        ["data", "info", tmp_path / "bad.npz"],
        ["data", "frobnicate"],
    ):
        result = cli(*args)
        assert result.returncode == 2, args
        assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr


# --- values that pass the type check but not reality (issue 14) ------------------------------------------


def idx_header(type_byte, shape):
    return bytes([0, 0, type_byte, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


@pytest.mark.parametrize(
    "raw, message",
    [
        # 65536^4 wrapped to 0 in numpy's int64 product: "cannot reshape array of size 0" before
        (idx_header(8, (65536, 65536, 65536, 65536)), "neither 1 \\(grey\\) nor 3 \\(RGB\\) channels"),
        (idx_header(8, (65536, 1, 65536, 65536)), "pixels per image"),
        (idx_header(8, (2**32 - 1, 28, 28)) + bytes(100), "truncated or corrupt"),
        (idx_header(8, (5,)) + bytes(5), "3 or 4 dimensions"),
        (idx_header(8, (0, 28, 28)), "holds no images"),
        (idx_header(8, (2, 0, 3)), "empty"),
        (bytes([0, 0, 8, 0]), "truncated IDX header"),
        (bytes([0, 0, 0x0A, 3]) + bytes(12), "bad magic number"),  # 0x0a is no IDX type
        (idx_header(8, (2, 1, 1)) + bytes(3), "holds 3"),  # one byte too many
        (idx_header(0x0D, (2, 1, 1)) + struct.pack(">2f", float("inf"), 0.5), "NaN or infinite"),
        (idx_header(0x0B, (2, 1, 1)) + struct.pack(">2h", 300, 0), "\\[0, 255\\]"),
    ],
)
def test_idx_header_checked_against_reality(tmp_path, raw, message):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=message) as err:
        data.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_idx_gzip_claims_checked_before_decompressing(tmp_path):
    bomb = tmp_path / "x-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(idx_header(8, (10**6, 28, 28))))  # 784 MB claimed by a 40-byte file
    with pytest.raises(DataError, match="more than a \\d+-byte gzip file can hold"):
        data.load(bomb)
    short = tmp_path / "y-idx3-ubyte.gz"
    short.write_bytes(gzip.compress(idx_header(8, (4, 2, 2)) + bytes(10)))
    with pytest.raises(DataError, match="holds 10; the file is truncated or corrupt"):
        data.load(short)
    long = tmp_path / "z-idx3-ubyte.gz"
    long.write_bytes(gzip.compress(idx_header(8, (4, 2, 2)) + bytes(17)))
    with pytest.raises(DataError, match="more data than its IDX header declares"):
        data.load(long)
    cut = tmp_path / "w-idx3-ubyte.gz"
    cut.write_bytes(gzip.compress(idx_header(8, (4, 2, 2)) + bytes(16))[:-6])  # CRC and length lost
    with pytest.raises(DataError, match="cannot read or decompress"):
        data.load(cut)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 1, 2, 10**9], ">i4"), "labels range over \\[0, 1000000000\\]"),
        (np.array([0, -1, 2, 1], ">i4"), "labels range over \\[-1, 2\\]"),
        (np.array([0, 1.5, 2, 1], ">f4"), "whole numbers"),
    ],
)
def test_idx_labels_are_class_indices(tmp_path, labels, message):
    directory = mnist_like_dir(tmp_path, n_train=4)
    type_byte = 0x0D if labels.dtype.kind == "f" else 0x0C
    (directory / "train-labels-idx1-ubyte").write_bytes(idx_header(type_byte, labels.shape) + labels.tobytes())
    with pytest.raises(DataError, match=message):
        data.load(directory)


def test_memory_is_checked_before_allocating(tmp_path, monkeypatch):
    from vaelab.data import limits

    write_idx(tmp_path / "x-idx3", np.zeros((4, 8, 8), np.uint8))
    np.savez(tmp_path / "x.npz", images=np.zeros((4, 8, 8), np.uint8))
    save_png(tmp_path / "f" / "a.png", np.zeros((8, 8), np.uint8))
    save_png(tmp_path / "f" / "b.png", np.zeros((8, 8), np.uint8))
    monkeypatch.setattr(limits, "memory_bytes", lambda: 100)  # a machine with 100 bytes of memory
    for path in (tmp_path / "x-idx3", tmp_path / "x.npz", tmp_path / "f"):
        with pytest.raises(DataError, match="in memory but this machine has"):
            data.load(path)


def write_npz_member(path, key, header: dict, payload: bytes):
    import io
    import zipfile

    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{key}.npy", member.getvalue() + payload)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"images": np.array([["ab"] * 4] * 3)}, "holds <U2 values; store plain numbers"),  # _UFuncNoLoopError before
        ({"images": np.zeros((3, 2, 2), np.complex128)}, "complex128"),
        ({"images": np.zeros((3, 2, 2), "M8[s]")}, "datetime64"),
        ({"images": np.zeros((3, 2, 2), [("r", "u1"), ("g", "u1")])}, "store plain numbers"),
        ({"images": np.array([np.zeros(2), "x"], dtype=object)}, "never loads"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.array([0, 1, 10**12])}, "label < 10000"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.array([0, 1, 2], np.uint64) - 1}, "label < 10000"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.array([0.0, 1, np.nan])}, "whole numbers"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.array([True, False, True])}, "dtype bool"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.array(["a", "b", "c"])}, "holds <U1 values"),
        ({"images": np.zeros((3, 2, 2), np.uint8), "labels": np.eye(3)}, "look one-hot"),
        ({"images": np.zeros((3, 2, 2, 4), np.uint8)}, "neither 1 \\(grey\\) nor 3"),
        ({"images": np.zeros((3, 0, 5), np.uint8)}, "empty"),
        ({"images": np.zeros(3, np.uint8)}, "images must be"),
        ({"images": np.float32(0.5)}, "images must be"),
        ({"images": np.full((3, 2, 2), -np.inf)}, "NaN or infinite"),
        ({"images": np.full((3, 2, 2), -1, np.int8)}, "\\[0, 255\\]"),
        ({"images": np.zeros((1, 2, 2), np.uint8)}, "at least 2 images"),
        ({"x_train": np.zeros((3, 2, 2), np.uint8), "x_test": np.zeros((3, 4, 4), np.uint8)}, "test images are"),
        ({"x_train": np.zeros((3, 2, 2)), "x_test": np.zeros((0, 2, 2)), "y_train": np.zeros(3), "y_test": []}, "no"),
        ({"x_train": np.zeros((3, 2, 2)), "x_test": np.zeros((2, 2, 2)), "y_train": np.zeros(3)}, "only one of"),
    ],
)
def test_npz_values_checked(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as err:
        data.load(tmp_path / "bad.npz")
    assert "bad.npz" in str(err.value) and "\n" not in str(err.value)


def test_npz_float_labels_that_are_whole_numbers_are_accepted(tmp_path):
    np.savez(tmp_path / "k.npz", images=np.zeros((5, 2, 2), np.uint8), labels=np.array([0.0, 1, 2, 1, 0]))
    ds = data.load(tmp_path / "k.npz")
    assert ds.train.labels.dtype == torch.int64 and ds.num_classes == 3


def test_npz_headers_checked_before_reading(tmp_path):
    # a header claiming 16 TB of pixels in a 100-byte member: refused before numpy allocates it
    write_npz_member(
        tmp_path / "a.npz", "images", {"descr": "|u1", "fortran_order": False, "shape": (10**6, 8192, 8192)}, bytes(100)
    )
    with pytest.raises(DataError, match="pixels per image"):
        data.load(tmp_path / "a.npz")
    write_npz_member(
        tmp_path / "b.npz", "images", {"descr": "<f8", "fortran_order": False, "shape": (10**5, 28, 28)}, bytes(100)
    )
    with pytest.raises(DataError, match="the archive holds 100; the file is truncated or corrupt"):
        data.load(tmp_path / "b.npz")
    write_npz_member(
        tmp_path / "c.npz", "images", {"descr": "|O", "fortran_order": False, "shape": (2, 2, 2)}, b"\x80\x04N."
    )
    with pytest.raises(DataError, match="never loads"):  # a pickle: never unpickled
        data.load(tmp_path / "c.npz")


def test_npz_members_that_are_not_arrays_are_ignored(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as archive:
        archive.writestr("images", b"\0" * 64)  # numpy.load would return these raw bytes as "images"
    with pytest.raises(DataError, match="found keys \\[\\]"):
        data.load(tmp_path / "raw.npz")
    (tmp_path / "a.npy").write_bytes(b"")
    np.save(tmp_path / "a.npy", np.zeros((3, 2, 2), np.uint8))
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")  # an .npy under an .npz name
    with pytest.raises(DataError, match="not a readable .npz file"):
        data.load(tmp_path / "a.npz")


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


def test_labels_validated_in_the_dataset_constructor():
    images = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    split = lambda labels: data.Split(images, torch.tensor(labels))
    with pytest.raises(DataError, match="label < 10000"):
        data.Dataset("x", split([0, 1, 10**12]), split([0, 1, 2]))  # data info's 8 TB bincount, train's silence
    with pytest.raises(DataError, match="label < 10000"):
        data.Dataset("x", split([0, 1, 2]), split([0, -4, 2]))
    with pytest.raises(DataError, match="label 2 has no class name"):
        data.Dataset("x", split([0, 1, 2]), split([0, 1, 1]), classes=["a", "b"])
    with pytest.raises(DataError, match="int64 tensor"):
        data.Dataset("x", data.Split(images, torch.tensor([0.0, 1.0, 2.0])), split([0, 1, 2]))
    with pytest.raises(DataError, match="class names are given but the images have no labels"):
        data.Dataset("x", data.Split(images), data.Split(images), classes=["a"])
    with pytest.raises(DataError, match="uint8 tensor"):
        data.Dataset("x", data.Split(images.float()), data.Split(images))
    with pytest.raises(DataError, match="holds no images"):
        data.Dataset("x", data.Split(images), data.Split(images[:0]))
    assert data.Dataset("x", split([0, 1, 2]), split([2, 2, 2]), classes=["a", "b", "c"]).num_classes == 3
    with pytest.raises(DataError) as err:  # found by the fuzz suite: a class name with a control character
        data.Dataset("x\n", split([0, 1, 2]), split([0, 1, 1]), classes=["\x1f", "b"])
    assert str(err.value) == "x\\n: label 2 has no class name (only 2 classes: \\x1f, b)"


def test_class_count_is_bounded(tmp_path, monkeypatch):
    from vaelab.data import dataset

    monkeypatch.setattr(dataset, "MAX_CLASSES", 3)
    for name in "abcd":
        for k in range(2):
            save_png(tmp_path / name / f"{k}.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="labels range over \\[0, 3\\]; they must be class indices 0 <= label < 3"):
        data.load(tmp_path)


def test_stratified_split_is_unchanged():
    # the indices the split drew before it was rewritten (one sort instead of one scan per class)
    from vaelab.data.dataset import stratified_split

    train, test = stratified_split(np.array([2, 0, 1, 1, 0, 2, 2, 1, 0, 0, 2, 1, 1]), 0.2, 7)
    assert train.tolist() == [11, 9, 10, 3, 5, 4, 7, 12, 8, 0] and test.tolist() == [6, 1, 2]


# --- paths: folders for files, files for folders, devices, permissions, odd names ---------------------------


def test_paths_of_the_wrong_kind(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    (tmp_path / "train-images-idx3-ubyte").mkdir()
    with pytest.raises(DataError, match="is a folder, not a file"):
        data.load_npz(tmp_path / "dir.npz")
    with pytest.raises(DataError, match="is a folder, not a file"):
        data.load_idx(tmp_path / "train-images-idx3-ubyte")
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        data.load_folder(tmp_path / "file")
    with pytest.raises(DataError, match="is a file, not a folder"):
        data.load_idx_directory(tmp_path / "file")
    with pytest.raises(DataError, match="no data set given"):
        data.load("  ")


def test_devices_and_pipes_are_not_read(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe-idx3-ubyte")  # opening it would block forever
    (tmp_path / "zero.npz").symlink_to("/dev/zero")  # reading it would never end
    for path in (tmp_path / "pipe-idx3-ubyte", tmp_path / "zero.npz", "/dev/null"):
        with pytest.raises(DataError, match="is not a regular file"):
            data.load(path)


def test_permission_errors_name_the_path(tmp_path, monkeypatch):
    import builtins
    import os

    # tests run as root here, where chmod does not stop a read: make open and scandir refuse instead
    write_idx(tmp_path / "x-idx3", np.zeros((4, 2, 2), np.uint8))
    np.savez(tmp_path / "x.npz", images=np.zeros((4, 2, 2), np.uint8))
    save_png(tmp_path / "f" / "a.png", np.zeros((2, 2), np.uint8))
    save_png(tmp_path / "f" / "b.png", np.zeros((2, 2), np.uint8))
    real_open, real_scandir = builtins.open, os.scandir

    def refuse(path, *args, **kwargs):
        if str(tmp_path) in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refuse)
    for path in (tmp_path / "x-idx3", tmp_path / "x.npz", tmp_path / "f"):
        with pytest.raises(DataError, match="permission denied") as err:
            data.load(path)
        assert str(path) in str(err.value)
    monkeypatch.setattr(builtins, "open", real_open)
    monkeypatch.setattr(os, "scandir", lambda path: refuse(path) if str(tmp_path) in str(path) else real_scandir(path))
    with pytest.raises(DataError, match="f: cannot list the folder \\(permission denied"):
        data.load(tmp_path / "f")


@pytest.mark.skipif(
    not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0, reason="root reads all"
)
def test_unreadable_file_for_real(tmp_path):
    path = write_idx(tmp_path / "x-idx3", np.zeros((4, 2, 2), np.uint8))
    path.chmod(0)
    with pytest.raises(DataError, match="permission denied"):
        data.load(path)


def test_odd_file_names_stay_on_one_line(tmp_path):
    folder = tmp_path / "a\nb"
    save_png(folder / "x\r.png", np.zeros((2, 2), np.uint8))
    (folder / "y\x1b[31m.png").write_bytes(b"junk")
    with pytest.raises(DataError) as err:
        data.load(folder)
    assert "a\\nb" in str(err.value) and "\\x1b" in str(err.value) and str(err.value).isprintable()


def test_cli_data_info_label_of_10_to_the_12(cli, tmp_path):
    # `data info` tried to allocate 8 TB in torch.bincount for this file
    np.savez(tmp_path / "big.npz", images=np.zeros((4, 2, 2), np.uint8), labels=np.array([0, 1, 1, 10**12]))
    result = cli("data", "info", tmp_path / "big.npz")
    assert result.returncode == 2 and "label < 10000" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_download_cache_that_cannot_be_used(tmp_path):
    (tmp_path / "a-file").write_bytes(b"x")
    with pytest.raises(DataError, match="cannot create the download cache"):
        data.load("mnist", cache_dir=tmp_path / "a-file")  # fails before any download is tried
    (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").mkdir(parents=True)
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: is a folder, not a file"):
        data.load("mnist", cache_dir=tmp_path / "cache")


def test_npz_zip_directory_that_lies_about_sizes(tmp_path):
    import zipfile

    path = tmp_path / "lies.npz"
    write_npz_member(path, "images", {"descr": "|u1", "fortran_order": False, "shape": (4000, 1000, 1000)}, bytes(64))
    raw = bytearray(path.read_bytes())
    entry = raw.index(b"PK\x01\x02")  # the central directory's record of the member
    raw[entry + 20 : entry + 28] = struct.pack("<II", 0xFFFFFFF0, 0xFFFFFFF0)  # claims 4 GB, compressed and not
    path.write_bytes(bytes(raw))
    assert zipfile.ZipFile(path).infolist()[0].file_size == 0xFFFFFFF0
    with pytest.raises(DataError, match="the file is truncated or corrupt"):  # refused before numpy allocates 4 GB
        data.load(path)
