"""dSprites generated from its published specification (vaelab.data.dsprites, issue 23): the factors' counts and
values, the published order, known images, determinism, the seeded subsets and their errors, the cache."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from vaelab import data
from vaelab.data import dsprites
from vaelab.errors import DataError


def image(shape, scale, orientation, x, y) -> np.ndarray:
    """The whole set's image with these factor indices, as a bool `[64, 64]`."""
    return dsprites.render([np.ravel_multi_index((shape, scale, orientation, x, y), dsprites.FACTOR_SIZES)])[0, 0] > 0


def test_the_published_specification():
    assert dsprites.SIZE == 737_280 == 3 * 6 * 40 * 32 * 32
    assert dsprites.FACTOR_NAMES == ["shape", "scale", "orientation", "x", "y"]
    values = dsprites.factor_values()
    assert [len(v) for v in values] == dsprites.FACTOR_SIZES
    assert values[1][0] == 0.5 and values[1][-1] == 1.0 and np.allclose(np.diff(values[1]), 0.1)
    assert values[2][0] == 0.0 and math.isclose(values[2][-1], 2 * math.pi * 39 / 40)  # 2 pi itself excluded
    assert values[3] == values[4] and values[3][0] == 0.0 and values[3][-1] == 1.0 and len(values[3]) == 32
    # the published order: y varies fastest, then x, orientation, scale, shape
    assert dsprites.factors_of(np.array([0, 1, 32, 32 * 32, 40 * 32 * 32, SIZE - 1])).tolist() == [
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 1, 0],
        [0, 0, 1, 0, 0],
        [0, 1, 0, 0, 0],
        [2, 5, 39, 31, 31],
    ]


SIZE = dsprites.SIZE


def test_known_images():
    """A square at scale 1, upright, at x = y = 0: 21 x 21 pixels around pixel (16, 16); at x = y = 1 around (47, 47);
    binary; smaller at scale 0.5; a quarter turn leaves a square unchanged and a half turn an ellipse."""
    square = image(0, 5, 0, 0, 0)
    rows, cols = np.nonzero(square)
    assert square.sum() == 21 * 21 and (rows.min(), rows.max(), cols.min(), cols.max()) == (6, 26, 6, 26)
    rows, cols = np.nonzero(image(0, 5, 0, 31, 31))
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (37, 57, 37, 57)
    rows, cols = np.nonzero(image(0, 5, 0, 31, 0))  # x moves columns, y moves rows (y = 0 at the top)
    assert (rows.min(), cols.min()) == (6, 37)
    assert image(0, 0, 0, 10, 10).sum() == 11 * 11  # half-side 7.5 / sqrt(2) = 5.3: offsets -5..5
    assert (image(0, 3, 10, 5, 7) == image(0, 3, 0, 5, 7)).all()  # 10 of 40 orientations: a quarter turn
    assert (image(1, 3, 20, 5, 7) == image(1, 3, 0, 5, 7)).all()  # an ellipse: a half turn
    assert not (image(1, 3, 10, 5, 7) == image(1, 3, 0, 5, 7)).all()
    assert not (image(2, 3, 20, 5, 7) == image(2, 3, 0, 5, 7)).all()  # a heart has no such symmetry
    ellipse = image(1, 5, 0, 15, 15)
    rows, cols = np.nonzero(ellipse)
    assert cols.max() - cols.min() == 30 and rows.max() - rows.min() == 14  # semi-axes 15 and 7.5 px, lying flat
    heart = image(2, 5, 0, 15, 15)
    rows, _ = np.nonzero(heart)
    assert heart[rows.min() :, 31].any() and not heart[rows.min(), 31]  # the cleft between the lobes at the top
    assert set(np.unique(dsprites.render(np.arange(0, SIZE, 997)))) == {0, 255}


def test_every_sprite_stays_inside_the_image_and_differs():
    """At the edges (x, y = 0 or 1) no sprite is cut: each image at an edge has the pixels of the centred one."""
    masks = dsprites.sprite_masks()
    counts = masks.sum(axis=(-1, -2))
    assert (counts > 0).all()
    for x, y in [(0, 0), (31, 31), (0, 31)]:
        index = np.ravel_multi_index(
            (np.arange(3).repeat(240), np.tile(np.arange(6).repeat(40), 3), np.tile(np.arange(40), 18), x, y),
            dsprites.FACTOR_SIZES,
        )
        assert ((dsprites.render(index) > 0).sum(axis=(1, 2, 3)) == counts.reshape(-1)).all()
    # one-pixel steps: neighbouring positions differ
    assert not (image(2, 0, 3, 4, 4) == image(2, 0, 3, 5, 4)).all()


def test_subsets_are_seeded_and_split():
    a, b = data.load("dsprites:500"), data.load("dsprites:500")
    assert len(a.train) == 450 and len(a.test) == 50
    assert a.factor_names == dsprites.FACTOR_NAMES and a.factor_sizes == [3, 6, 40, 32, 32]
    assert a.classes == ["square", "ellipse", "heart"] and (a.train.labels == a.train.factors[:, 0]).all()
    for split in ("train", "test"):
        assert (getattr(a, split).images == getattr(b, split).images).all()
        assert (getattr(a, split).factors == getattr(b, split).factors).all()
    # each subset image is the whole set's image with its factors
    for k in range(0, 50, 7):
        f = a.test.factors[k].tolist()
        assert (a.test.images[k, 0].numpy() > 0).tolist() == image(*f).tolist()
    index = np.ravel_multi_index(a.train.factors.numpy().T, dsprites.FACTOR_SIZES)
    assert len(np.unique(index)) == 450
    assert len(set(a.test.labels[:10].tolist())) > 1  # the first test images (the figures' own) mix the shapes
    small = data.load("dsprites:2")
    assert len(small.train) == 1 and len(small.test) == 1
    assert data.load("dsprites:1_000").name == "dsprites:1_000" and len(data.load("dsprites:1_000").test) == 100


@pytest.mark.parametrize(
    "name, message",
    [
        ("dsprites:0", "a subset needs between 2 .* and 737,280"),
        ("dsprites:1", "a subset needs between 2"),
        ("dsprites:737281", "dSprites has 737,280 images"),
        ("dsprites:-5", "a subset needs between 2"),
        ("dsprites:ten", "give dsprites:N with N a whole number"),
        ("dsprites:", "give dsprites:N"),
    ],
)
def test_bad_subset_sizes(name, message):
    with pytest.raises(DataError, match=message) as err:
        data.load(name)
    assert "\n" not in str(err.value)


def test_bad_subset_size_on_the_command_line(cli):
    done = cli("data", "info", "dsprites:0")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "737,280" in done.stderr
    assert "Traceback" not in done.stderr


def test_data_info_shows_the_factors(cli):
    done = cli("data", "info", "dsprites:100")
    assert done.returncode == 0
    assert "factors: 5" in done.stdout and "orientation: 40  [0 .. 6.126]" in done.stdout
    assert "scale: 6  [0.5 .. 1]" in done.stdout and "square:" in done.stdout
    assert "factors: none" in cli("data", "info", "mnist-mini").stdout
    assert "dsprites:N" in cli("data", "list").stdout


def test_a_set_too_large_for_memory_is_refused_before_any_work(monkeypatch):
    from vaelab.data import limits

    monkeypatch.setattr(limits, "memory_bytes", lambda: 100 * 2**20)
    monkeypatch.setattr(dsprites, "render", lambda *a: pytest.fail("rendered"))
    with pytest.raises(DataError, match=r"dsprites:20000: its images would take 156 MiB in memory but this machine"):
        data.load("dsprites:20000")


def test_size_is_refused():
    with pytest.raises(DataError, match="--size resizes the images of an image folder"):
        data.load("dsprites:10", size=(32, 32))


@pytest.mark.slow
def test_the_whole_set_is_built_once_and_cached(tmp_path):
    """The whole set's cache: built with a progress bar, equal to the rendered images, reused, rebuilt if damaged."""
    packed = dsprites.cached_images(tmp_path, quiet=True)
    path = tmp_path / "dsprites" / dsprites.CACHE_FILE
    assert packed.shape == (SIZE, 512) and path.stat().st_size < 380 * 2**20
    pick = np.random.default_rng(0).choice(SIZE, 300, replace=False)
    assert (dsprites.unpack(packed[np.sort(pick)]) == dsprites.render(np.sort(pick))).all()
    stamp = path.stat().st_mtime_ns
    del packed
    assert dsprites.cached_images(tmp_path, quiet=True).shape == (SIZE, 512)
    assert path.stat().st_mtime_ns == stamp  # read back, not rebuilt
    np.save(path, np.zeros((3, 4), np.uint8))
    assert dsprites.cached_images(tmp_path, quiet=True).shape == (SIZE, 512)
    assert not [p for p in os.listdir(path.parent) if p.endswith(".part")]
