"""Load check of `vaelab explore`: N concurrent clients decoding for a bounded time against the local server.

    python bench/explore_load.py [--clients 8] [--seconds 10] [--format raw|png] [--runs RUN ...]

Starts `vaelab explore` (127.0.0.1) for the given runs (default: an MLP run trained here for one epoch on
mnist-mini); each client keeps one connection and asks for decodes at random latent points of a run (clients
take the runs in turn), back to back, for `--seconds`. Prints requests/s, p50 / p95 / p99 latency and the
errors (any answer but 200, or a failed connection; zero expected).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explore_latency import Server, decode_request, machine, percentiles, train_runs  # noqa: E402


def client(port: int, run: dict, fmt: str, stop: float, seed: int, out: dict) -> None:
    rng = np.random.default_rng(seed)
    times, errors = [], []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < stop:
        z = rng.standard_normal(run["latent_dim"]).tolist()
        start = time.perf_counter()
        try:
            status, _ = decode_request(connection, run["id"], z, fmt)
        except (OSError, http.client.HTTPException) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            continue
        times.append(time.perf_counter() - start)
        if status != 200:
            errors.append(f"HTTP {status}")
    connection.close()
    out[seed] = (times, errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--format", choices=("raw", "png"), default="raw")
    parser.add_argument("--runs", nargs="+", type=Path, help="run directories (default: train an MLP and a conv run)")
    args = parser.parse_args()
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 300:
        raise SystemExit("--clients: 1..256; --seconds: (0, 300]")

    with tempfile.TemporaryDirectory() as folder:
        runs = args.runs or train_runs(Path(folder))
        server = Server(runs)
        try:
            infos = server.runs()
            results: dict = {}
            started = time.monotonic()
            stop = started + args.seconds
            threads = [
                threading.Thread(
                    target=client, args=(server.port, infos[k % len(infos)], args.format, stop, k, results)
                )
                for k in range(args.clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(args.seconds + 60)
            elapsed = time.monotonic() - started
            alive = server.process.poll() is None
        finally:
            server.close()

    times = [t for ts, _ in results.values() for t in ts]
    errors = [e for _, es in results.values() for e in es]
    names = ", ".join(f"{i['name']} ({i['arch']}, z={i['latent_dim']})" for i in infos)
    print(f"vaelab explore load check: {machine()}")
    print(f"{args.clients} clients x {args.seconds:g} s of {args.format} decodes against {names}")
    if not times:
        raise SystemExit(f"no request succeeded; errors: {errors[:5]}")
    p = percentiles(times)
    print(f"requests: {p['n']} in {elapsed:.1f} s = {p['n'] / elapsed:.0f} requests/s")
    print(f"latency ms: p50 {p['p50']:.2f}, p95 {p['p95']:.2f}, p99 {p['p99']:.2f}, mean {p['mean']:.2f}")
    print(f"errors: {len(errors)}" + (f" (first: {errors[:3]})" if errors else "") + f"; server still running: {alive}")
    if errors or not alive:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
