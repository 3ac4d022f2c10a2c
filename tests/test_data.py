"""Data: the embedded set, the IDX / npz / image-folder readers, and every bad input they must refuse."""

import gzip
import struct

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
