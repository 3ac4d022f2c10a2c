"""`vaelab data info | list`: what a data set holds, and every bad input a one-line error (exit 2)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.files import HOSTILE, _folder, _png

pytestmark = pytest.mark.e2e


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


def test_cli_data_info_label_of_10_to_the_12(cli, tmp_path):
    # `data info` tried to allocate 8 TB in torch.bincount for this file
    np.savez(tmp_path / "big.npz", images=np.zeros((4, 2, 2), np.uint8), labels=np.array([0, 1, 1, 10**12]))
    result = cli("data", "info", tmp_path / "big.npz")
    assert result.returncode == 2 and "label < 10000" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_cli_data_info_on_hostile_inputs(cli, tmp_path, case):
    """Found by fuzzing: a property test (Hypothesis)."""
    build, _ = HOSTILE[case]
    result = cli("data", "info", build(tmp_path / "case"))
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith("vaelab: error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_cli_data_info_hostile_in_a_real_process(cli_process, tmp_path):
    """The same through a real `python -m vaelab` (warnings, interpreter shutdown): one line, exit 2.
    Found by fuzzing: a property test (Hypothesis)."""
    for case in ("png bomb 20000^2", "idx dims past memory"):
        result = cli_process("data", "info", HOSTILE[case][0](tmp_path / case.replace(" ", "_")))
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("size", [["0", "0"], ["-3", "5"], ["1000000000", "1000000000"], ["1", "100000000"]])
def test_cli_data_info_absurd_size(cli, tmp_path, size):
    """Found by fuzzing: a property test (Hypothesis)."""
    folder = _folder(("a.png", _png(np.zeros((2, 2), np.uint8))), ("b.png", _png(np.ones((2, 2), np.uint8))))
    result = cli("data", "info", folder(tmp_path / "f"), "--size", *size)
    assert result.returncode == 2 and "size" in result.stderr and result.stderr.count("\n") == 1


def _truncated_png() -> bytes:
    whole = _png(np.arange(64, dtype=np.uint8).reshape(8, 8))
    return whole[: len(whole) // 2]


# Issue 22's bad folders: each refused in one line (exit 2) by `data info`, as by `train --data`.
BAD_FOLDERS = {
    "mixed sizes without --size": (
        (("a.png", _png(np.zeros((8, 8), np.uint8))), ("b.png", _png(np.zeros((9, 8), np.uint8)))),
        "give a size",
    ),
    "truncated PNG": (
        (("a.png", _png(np.zeros((8, 8), np.uint8))), ("b.png", _truncated_png())),
        "b.png: unreadable image",
    ),
    "1-pixel image": (
        (("a.png", _png(np.zeros((8, 8), np.uint8))), ("b.png", _png(np.zeros((1, 1), np.uint8)))),
        "b.png: is a single pixel",
    ),
    "0 images in the test split": (
        (("train/a.png", _png(np.zeros((8, 8), np.uint8))), ("test/notes.txt", b"no images here")),
        "test: no image files found",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FOLDERS))
def test_cli_bad_image_folders_are_one_line(cli, tmp_path, case):
    entries, phrase = BAD_FOLDERS[case]
    root = _folder(*entries)(tmp_path / "f")
    for args in (["data", "info", root], ["train", "--data", root, "--out", tmp_path / "run", "--quiet"]):
        result = cli(*args)
        assert result.returncode == 2 and phrase in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()
