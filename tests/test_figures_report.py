"""Figure commands, the run report and the comparison study, end to end through the command line."""

import base64
import json
import re
from html.parser import HTMLParser

import pytest
from PIL import Image


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


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])


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


@pytest.mark.parametrize(
    "args, name, size",
    [
        (["sample", "--n", "16"], "samples.png", None),
        (["reconstruct", "--n", "10"], "reconstructions.png", None),
        (
            ["interpolate", "--pair", "0", "5", "--pair", "1", "2", "--steps", "7", "--spherical"],
            "interpolation.png",
            None,
        ),
        (["manifold", "--n", "8", "--range", "-2", "2", "--dims", "0", "2"], "manifold.png", (700, 740)),
        (["latents"], "latents.png", (650, 550)),
    ],
)
def test_figure_commands_write_pngs(cli, trained_run, tmp_path, args, name, size):
    out = tmp_path / name
    result = cli(args[0], trained_run, *args[1:], "--out", out)
    assert result.returncode == 0, result.stderr
    fmt, (w, h) = png_size(out)
    assert fmt == "PNG"
    if size:
        assert (w, h) == size  # figsize x dpi 100
    if name == "interpolation.png":
        assert w > h  # 7 steps wide, 2 pairs high


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


def test_compare_runs_end_to_end_and_resumes(cli, tiny_npz, tmp_path):
    study = tmp_path / "study"
    args = ["compare", "--data", tiny_npz, "--archs", "mlp", "--latent-dims", "2,4", "--out", study, "--quiet",
            "--iwae-k", "5", "--seed", "1"]  # fmt: skip
    first = cli(*args, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    report = (study / "report.html").read_text()
    parser = Collector()
    parser.feed(report)
    assert len(parser.images) >= 5 and "mlp-z2" in report and "mlp-z4" in report
    assert "Latent dimension (mlp)" in report and "FD (classifier)" in report
    # interrupted study: a longer one picks up each member at epoch 1
    second = cli(*args, "--epochs", "2")
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("resumed from epoch 1") == 2
    for member in ("mlp-z2", "mlp-z4"):
        lines = (study / member / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines[1:]] == [1, 2]
    third = cli(*args, "--epochs", "2")
    assert third.stderr.count("complete") == 2
    assert re.search(r"<td>mlp-z4</td>", (study / "report.html").read_text())
