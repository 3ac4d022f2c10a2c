"""Touching the paths a user gives (vaelab.data.files): a folder for a file or the reverse, devices and pipes,
permissions, odd names; each a one-line error that names the path."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.helpers.files import save_png, write_idx
from tests.helpers.fuzz import FUZZ, fresh_dir, outcome
from vaelab import data
from vaelab.errors import DataError


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


PATH_PARTS = st.text(st.characters(blacklist_characters="/\x00"), min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..")
)


@FUZZ
@given(
    entries=st.lists(
        st.tuples(PATH_PARTS, st.sampled_from(["file", "folder", "link-self", "link-out", "fifo"])), max_size=4
    ),
    query=st.lists(PATH_PARTS | st.just("\x00"), max_size=3),
    content=st.binary(max_size=64),
)
@example(entries=[("\ud800", "fifo")], query=[], content=b"")  # a name no file system can hold (found by the fuzz)
@example(entries=[("x", "link-self")], query=["y"], content=b"")  # below a loop of links
@example(entries=[("x", "fifo")], query=[], content=b"")
def test_fuzz_arbitrary_paths(scratch, entries, query, content):
    """Found by fuzzing: a property test (Hypothesis)."""
    with fresh_dir(scratch) as folder:
        made = []
        for name, kind in entries:
            target = folder / name
            if name in made:
                continue  # writing to a FIFO made under the same name would block the test itself
            try:
                if kind == "file":
                    target.write_bytes(content)
                elif kind == "folder":
                    target.mkdir()
                elif kind == "link-self":
                    target.symlink_to(target)  # a loop of links
                elif kind == "link-out":
                    target.symlink_to("/dev/zero")
                else:
                    os.mkfifo(target)
            except (OSError, ValueError):  # a lone surrogate cannot be encoded as a file name
                continue
            made.append(name)
        # a path into what was made (or below it), or the folder itself, read as an image folder
        parts = [made[0]] + query if made and query[:1] != ["\x00"] else query
        outcome(data.load, str(folder.joinpath(*parts)) if parts else str(folder))
        outcome(data.load, folder, size=(4, 4))
