"""The figure commands (`vaelab sample | reconstruct | interpolate | manifold | latents`) and the figures and report
that training writes, end to end: each option changes what is drawn, and bad input is refused."""

import base64

import numpy as np
import pytest
from PIL import Image

from tests.helpers.html import Collector

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tiny_npz(digits_npz):
    return digits_npz(400, 100)


@pytest.fixture(scope="module")
def trained_run(tiny_npz, tmp_path_factory):
    from vaelab.cli import main

    out = tmp_path_factory.mktemp("runs") / "z3"
    assert (
        main(["train", "--data", str(tiny_npz), "--out", str(out), "--epochs", "2", "--latent-dim", "3", "--quiet"])
        == 0
    )
    return out


def png_size(path):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.format, image.size


def test_training_writes_every_figure_and_the_report(trained_run):
    for name in ("reconstructions", "samples", "curves", "interpolation", "manifold", "latents", "kl_per_dim"):
        fmt, (w, h) = png_size(trained_run / f"{name}.png")
        assert fmt == "PNG" and w > 200 and h > 100, name
    parser = Collector()
    parser.feed((trained_run / "report.html").read_text())
    assert len(parser.images) == 7 and parser.tags[0] == "html"
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def tile_grid(path) -> tuple[int, int]:
    """(rows, columns) of the image tiles a figure shows: the tiles are dark digits on a black background, the
    grid's padding between them white. Rows (and columns) of the figure that cross the tiles are found first,
    then the dark runs along them; runs much shorter than a tile (a title, the axes' frame) are not counted."""
    with Image.open(path) as image:
        dark = np.asarray(image.convert("L")) < 128

    def runs(flags) -> int:
        lengths, n = [], 0
        for flag in [*flags, False]:
            if flag:
                n += 1
            elif n:
                lengths.append(n)
                n = 0
        return sum(length >= 0.5 * max(lengths) for length in lengths)

    across_rows, across_cols = dark.sum(1) > 0.3 * dark.sum(1).max(), dark.sum(0) > 0.3 * dark.sum(0).max()
    row_profile, col_profile = dark[:, across_cols].sum(1), dark[across_rows].sum(0)
    return runs(row_profile > 0.2 * row_profile.max()), runs(col_profile > 0.2 * col_profile.max())


@pytest.mark.parametrize(
    "args, name, tiles",
    [
        (["sample", "--n", "16"], "samples.png", (2, 8)),  # 8 per row
        (["sample", "--n", "40"], "samples.png", (5, 8)),
        (["reconstruct", "--n", "10"], "reconstructions.png", (2, 10)),  # originals above reconstructions
        (["reconstruct", "--n", "20"], "reconstructions.png", (4, 10)),
        (
            ["interpolate", "--pair", "0", "5", "--pair", "1", "2", "--steps", "7", "--spherical"],
            "interpolation.png",
            (2, 7),
        ),
        (["interpolate", "--pair", "3", "4", "--steps", "12"], "interpolation.png", (1, 12)),
    ],
)
def test_figure_commands_draw_as_many_images_as_asked(cli, trained_run, tmp_path, args, name, tiles):
    """Catches --n, --steps or --pair being ignored (a PNG of the default grid is still a PNG): the figure
    must show the asked number of images, rows by columns."""
    out = tmp_path / name
    result = cli(args[0], trained_run, *args[1:], "--out", out)
    assert result.returncode == 0, result.stderr
    assert png_size(out)[0] == "PNG" and str(out) in result.stdout
    assert tile_grid(out) == tiles


def test_manifold_and_latents_follow_their_options(cli, trained_run, tmp_path):
    """Catches --n, --range or --dims of the manifold being ignored: each changes the decoded grid drawn."""
    drawn = {}
    for key, extra in {
        "default": [],
        "n": ["--n", "8"],
        "range": ["--range", "-3", "3"],
        "dims": ["--dims", "0", "2"],
    }.items():
        out = tmp_path / f"manifold-{key}.png"
        result = cli("manifold", trained_run, *extra, "--out", out)
        assert result.returncode == 0, result.stderr
        assert png_size(out) == ("PNG", (700, 740))  # figsize x dpi 100
        with Image.open(out) as image:
            drawn[key] = np.asarray(image.convert("L"))
    for key in ("n", "range", "dims"):
        assert (drawn[key] != drawn["default"]).mean() > 0.01, key
    result = cli("latents", trained_run, "--out", tmp_path / "latents.png")
    assert result.returncode == 0 and png_size(tmp_path / "latents.png") == ("PNG", (650, 550))
    assert png_size(tmp_path / "kl_per_dim.png")[0] == "PNG"


def test_manifold_of_a_latent_2_model_uses_its_plane(cli, tiny_npz, tmp_path):
    out = tmp_path / "z2"
    assert (
        cli("train", "--data", tiny_npz, "--out", out, "--epochs", "1", "--latent-dim", "2", "--quiet").returncode == 0
    )
    assert (out / "manifold.png").exists()
    bad = cli("manifold", out, "--range", "1", "-1")
    assert bad.returncode == 2 and "LO must be below HI" in bad.stderr


def test_figure_commands_refuse_bad_input(cli, trained_run, tmp_path):
    for args, message in [
        (["sample", tmp_path / "missing"], "no such run directory"),
        (["interpolate", trained_run, "--pair", "0", "5000"], "indices must lie"),
        (["manifold", trained_run, "--dims", "0", "7"], "two different dimensions"),
        (["sample", trained_run, "--n", "0"], "n: must lie"),
    ]:
        result = cli(*args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
