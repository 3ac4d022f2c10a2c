"""An image folder at scale: 50,000 64x64 RGB PNGs, first load (decode + cache) against cached loads.

    python bench/folder_load.py [--n 50000] [--folder /tmp/vaelab-bench-folder] [--keep]

Generates the folder once (in parallel; kept for later runs), then times each load in a fresh subprocess and reads
that process's peak resident memory (VmHWM) and its resident memory before loading, so the numbers are one load
each, not what an earlier load left behind:
- first load, one decoding thread (the reference);
- first load, the thread pool (`vaelab.data.folder`), into a fresh cache;
- cached load (the array memory-mapped), then the same followed by one full training epoch's pass over the train
  split in shuffled batches (`data.batches`), which touches every page.
The ratios compare runs of this one invocation. The cached load must not hold two copies: its peak should stay
near one array (50,000 x 3 x 64 x 64 bytes = 614 MB) above the interpreter's baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 64

PROBE = r"""
import json, sys, time
from vaelab.data import folder

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
root, cache, workers, touch = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
if workers:
    folder._workers = lambda n: workers
import torch
from vaelab import data
before = status("VmRSS")
started = time.perf_counter()
ds = data.load(root, cache_dir=cache, quiet=True)
seconds = time.perf_counter() - started
total = 0
if touch:
    g = torch.Generator().manual_seed(0)
    for x, _ in data.batches(ds.train.images, 128, shuffle=True, generator=g):
        total += x.shape[0]
print(json.dumps({"seconds": seconds, "rss_before": before, "peak": status("VmHWM"), "images": len(ds.train) + len(ds.test),
                  "array_bytes": (len(ds.train) + len(ds.test)) * ds.train.images[0].numel(), "touched": total}))
"""


def _write(args: tuple[Path, int, int]) -> None:
    folder, start, stop = args
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        blocks = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)  # blocky colour images: they compress like photos
        image = np.repeat(np.repeat(blocks, SIDE // 8, 0), SIDE // 8, 1)
        image = (image.astype(np.int16) + rng.integers(-12, 13, image.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{i:06d}.png")


def generate(folder: Path, n: int) -> None:
    if folder.is_dir() and len(list(folder.glob("*.png"))) == n:
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    chunks = [(folder, s, min(n, s + 1000)) for s in range(0, n, 1000)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(_write, chunks))


def probe(root: Path, cache: Path, workers: int, touch: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(root), str(cache), str(workers), "1" if touch else "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "vaelab-bench-folder"))
    parser.add_argument("--keep", action="store_true", help="keep the generated folder (default: removed at the end)")
    args = parser.parse_args()
    root = Path(args.folder)
    generate(root, args.n)
    mib = 2**20
    with tempfile.TemporaryDirectory() as scratch:
        runs = {
            "first load, 1 thread": probe(root, Path(scratch) / "c1", 1, False),
            "first load, thread pool": probe(root, Path(scratch) / "c2", 0, False),
            "cached load": probe(root, Path(scratch) / "c2", 0, False),
            "cached load + one shuffled pass": probe(root, Path(scratch) / "c2", 0, True),
        }
    array = runs["cached load"]["array_bytes"]
    print(
        f"{args.n} PNGs of 3x{SIDE}x{SIDE} in {root}; the uint8 array is {array / mib:.0f} MiB; cores: {os.cpu_count()}"
    )
    print(f"{'load':34} {'seconds':>8} {'RSS before':>11} {'peak RSS':>9} {'peak - before':>14}")
    for name, r in runs.items():
        print(
            f"{name:34} {r['seconds']:8.2f} {r['rss_before'] / mib:9.0f}Mi {r['peak'] / mib:7.0f}Mi "
            f"{(r['peak'] - r['rss_before']) / mib:12.0f}Mi"
        )
    one, pool, cached = (runs[k]["seconds"] for k in ("first load, 1 thread", "first load, thread pool", "cached load"))
    touched = runs["cached load + one shuffled pass"]
    print(f"thread pool speed-up on the first load: {one / pool:.2f}x; cached load is {pool / cached:.0f}x faster")
    print(
        f"cached load + a full pass holds {(touched['peak'] - touched['rss_before']) / array:.2f} arrays above baseline"
    )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
