"""What a sane data set looks like (vaelab.data.limits): sizes checked against this machine's memory before
anything is allocated."""

import numpy as np
import pytest

from tests.helpers.files import save_png, write_idx
from vaelab import data
from vaelab.errors import DataError


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
