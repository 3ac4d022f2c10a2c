"""Round trip of one decode in `vaelab explore`: request, decode, image back, over HTTP on 127.0.0.1.

    python bench/explore_latency.py [--seconds 5] [--runs MLP_RUN CONV_RUN]

Starts `vaelab explore` for an MLP and a conv run (trained here for one epoch on mnist-mini unless --runs names
them) and, from one keep-alive connection like the page's, asks for decodes at random latent points for
`--seconds` per model, alternating PNG and raw answers so both formats see the same machine load. Prints
p50 / p95 / p99 per model and format against the 30 ms target, the decode alone (the model in this process,
through the explorer's adapter) for comparison, and which format is faster.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
TARGET_P95_MS = 30.0


def train_runs(folder: Path) -> list[Path]:
    """The default MLP and conv VAEs (latent dimension 10), one epoch each on mnist-mini."""
    runs = []
    for arch in ("mlp", "conv"):
        out = folder / f"{arch}-z10"
        command = [
            sys.executable,
            "-m",
            "vaelab",
            "train",
            "--arch",
            arch,
            "--epochs",
            "1",
            "--quiet",
            "--out",
            str(out),
        ]
        print(f"training a {arch} run for the benchmark ({out})", file=sys.stderr)
        subprocess.run(command, check=True, env=ENV, stdout=subprocess.DEVNULL, timeout=600)
        runs.append(out)
    return runs


class Server:
    """`vaelab explore RUN... --no-browser` as a child process (127.0.0.1, a free port)."""

    def __init__(self, runs: list[Path], timeout: float = 120):
        command = [sys.executable, "-m", "vaelab", "explore", *map(str, runs), "--no-browser", "--quiet"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=ENV)
        deadline = time.monotonic() + timeout
        while True:
            line = self.process.stdout.readline()
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
            if match:
                self.port = int(match.group(1))
                return
            if (not line and self.process.poll() is not None) or time.monotonic() > deadline:
                self.close()
                raise SystemExit("vaelab explore did not start")

    def runs(self) -> list[dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", "/api/runs")
        return json.loads(connection.getresponse().read())["runs"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def decode_request(connection: http.client.HTTPConnection, run: int, z: list[float], fmt: str) -> tuple[int, int]:
    """(status, body length) of one decode on a kept-alive connection."""
    body = json.dumps({"z": z})
    connection.request("POST", f"/api/runs/{run}/decode?format={fmt}", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, len(response.read())


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1e3
    return {
        "n": len(ms),
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
        "mean": float(ms.mean()),
    }


def machine() -> str:
    import torch

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} (the server decodes with 1 thread), load average {load}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per model (default 5)")
    parser.add_argument("--runs", nargs="+", type=Path, help="run directories (default: train an MLP and a conv run)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 0 < args.seconds <= 300:
        raise SystemExit("--seconds: must lie in (0, 300]")

    with tempfile.TemporaryDirectory() as folder:
        runs = args.runs or train_runs(Path(folder))
        sys.path.insert(0, str(ROOT / "src"))
        from vaelab.explorer.session import Session, serve_with_one_thread

        server = Server(runs)
        try:
            infos = server.runs()
            rng = np.random.default_rng(args.seed)
            rows = []
            for info in infos:
                d = info["latent_dim"]
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                times = {"raw": [], "png": []}
                sizes = {}
                for k in range(40):  # warm-up: connection, allocator, first calls
                    decode_request(connection, info["id"], rng.standard_normal(d).tolist(), ("raw", "png")[k % 2])
                stop = time.monotonic() + args.seconds
                k = 0
                while time.monotonic() < stop:
                    fmt = ("raw", "png")[k % 2]
                    z = rng.standard_normal(d).tolist()
                    start = time.perf_counter()
                    status, size = decode_request(connection, info["id"], z, fmt)
                    times[fmt].append(time.perf_counter() - start)
                    if status != 200:
                        raise SystemExit(f"decode answered {status}")
                    sizes[fmt] = size
                    k += 1
                connection.close()
                session = Session(runs[info["id"]])  # the decode alone, through the same adapter, in this process
                serve_with_one_thread()  # as the server does
                alone = []
                for _ in range(200):
                    z = rng.standard_normal((1, d)).astype(np.float32)
                    start = time.perf_counter()
                    session.decode(z)
                    alone.append(time.perf_counter() - start)
                for fmt in ("raw", "png"):
                    rows.append((info["name"], info["arch"], fmt, sizes[fmt], percentiles(times[fmt])))
                rows.append((info["name"], info["arch"], "decode alone", 0, percentiles(alone)))
        finally:
            server.close()

    print(f"vaelab explore, one-decode round trip over HTTP (127.0.0.1, keep-alive): {machine()}")
    print(f"{'run':<16} {'arch':<5} {'answer':<13} {'bytes':>6} {'n':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    for name, arch, fmt, size, p in rows:
        print(
            f"{name:<16} {arch:<5} {fmt:<13} {size or '':>6} {p['n']:>6} {p['p50']:>7.2f} {p['p95']:>7.2f} {p['p99']:>7.2f}"
        )
    for arch in dict.fromkeys(r[1] for r in rows):
        p95 = {fmt: p["p95"] for _, a, fmt, _, p in rows if a == arch and fmt in ("raw", "png")}
        best = min(p95, key=p95.get)
        verdict = "meets" if p95[best] < TARGET_P95_MS else "MISSES"
        print(
            f"{arch}: {best} is faster at p95 ({p95[best]:.2f} ms vs {max(p95.values()):.2f} ms); "
            f"{verdict} the {TARGET_P95_MS:.0f} ms target"
        )


if __name__ == "__main__":
    main()
