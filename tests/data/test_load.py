"""Loading a data set by name or path (vaelab.data.load): valid arrays of every layout load exactly, each hostile
file (tests/helpers/files.py's HOSTILE) is a one-line error, an unknown name is named.

The property tests of the data readers (here and in test_idx, test_npz, test_folder, test_dataset, test_files):
whatever a file holds, `vaelab.data` answers with a valid `Dataset` or a `VaelabError` whose message is one line,
never another exception. Their budget is small in CI (derandomized); for a long manual run:
    VAELAB_FUZZ=thorough python -m pytest -q tests/data --hypothesis-show-statistics
Every failure found is kept as an `@example` of the test that found it, or as a case of HOSTILE."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.helpers.files import HOSTILE, IDX_TYPES, write_typed_idx
from tests.helpers.fuzz import FUZZ, assert_valid, fresh_dir
from vaelab import data
from vaelab.errors import DataError, VaelabError


@FUZZ
@given(
    n=st.tuples(st.integers(1, 4), st.integers(1, 3)),
    hw=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    type_code=st.sampled_from(sorted(IDX_TYPES)),
    gz=st.booleans(),
    layout=st.sampled_from(["own", "keras", "idx"]),
    data_=st.data(),
)
def test_fuzz_valid_arrays_load_exactly(scratch, n, hw, type_code, gz, layout, data_):
    """Valid arrays in, the same pixels and labels out: IDX of each type (plain or gzipped), npz of each layout.
    Found by fuzzing: a property test (Hypothesis)."""
    dtype = np.dtype(IDX_TYPES[type_code]).newbyteorder("=")
    in_range = st.floats(0, 1, width=dtype.itemsize * 8) if dtype.kind == "f" else st.integers(0, 127)
    splits = [data_.draw(hnp.arrays(dtype, (count, *hw), elements=in_range)) for count in n]
    labels = [data_.draw(hnp.arrays(np.uint8, count, elements=st.integers(0, 9))) for count in n]
    expected = [np.rint(x * 255) if dtype.kind == "f" else x for x in splits]
    with fresh_dir(scratch) as folder:
        if layout == "idx":
            for prefix, images, y in zip(("train", "t10k"), splits, labels):
                write_typed_idx(folder / f"{prefix}-images-idx3-ubyte", images, type_code)
                write_typed_idx(folder / f"{prefix}-labels-idx1-ubyte", y)
                if gz:
                    for path in folder.glob(f"{prefix}-*"):
                        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
                        path.unlink()
            dataset = data.load(folder)
        else:
            keys = ("train_images", "train_labels", "test_images", "test_labels")
            keys = keys if layout == "own" else ("x_train", "y_train", "x_test", "y_test")
            arrays = dict(zip(keys, (splits[0], labels[0], splits[1], labels[1])))
            (np.savez_compressed if gz else np.savez)(folder / "x.npz", **arrays)
            dataset = data.load(folder / "x.npz")
    assert_valid(dataset)
    for split, images, y in zip((dataset.train, dataset.test), expected, labels):
        assert np.array_equal(split.images[:, 0].numpy(), images) and split.labels.tolist() == y.tolist()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_inputs_give_one_line_errors(tmp_path, case):
    """Found by fuzzing: a property test (Hypothesis)."""
    build, phrase = HOSTILE[case]
    path = build(tmp_path / "case.npz" if case == "a folder named .npz" else tmp_path / "case")
    with pytest.raises(VaelabError) as err:
        data.load(path)
    assert phrase in str(err.value) and str(err.value).isprintable()


def test_unknown_name_or_missing_path():
    with pytest.raises(DataError, match="not a data set name"):
        data.load("no-such-set")
