"""Benchmark: the course's study (`vaelab compare` at its defaults), the first release against today, in one invocation.

The first release is the code that landed on 2026-11-21 (commit FIRST_RELEASE), checked out into a temporary git
worktree and run from its own `src/`; today is this checkout. Each runs as its own process from a fresh data cache
(so each trains its own feature classifier, as a new user's first study does), in turns (first, today, first,
today... for `--repeats`), so that both see the same machine. Reported: each run's wall time, the ratio, and every
member's test -ELBO and IWAE NLL (nats) with today's difference to the first release: the answers must stay within
1 nat (issue 26).

    python bench/study_time.py [--repeats 1] [--first COMMIT] [--json FILE] [-- extra compare options]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_RELEASE = "83ba8382b1ec710346dbe4d50ae4232d13c6f4ae"  # the first landing (2026-11-21)
ROOT = Path(__file__).resolve().parents[1]


def worktree(commit: str, where: Path) -> Path:
    """A detached checkout of `commit` at `where` (removed by the caller's temporary directory)."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(where), commit],
        check=True,
        capture_output=True,
    )
    return where


def study(src: Path, out: Path, cache: Path, extra: list[str]) -> float:
    """Seconds for one `vaelab compare` run from `src`, from an empty cache."""
    env = {**os.environ, "PYTHONPATH": str(src), "VAELAB_DATA_DIR": str(cache)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "vaelab", "compare", "--out", str(out), "--quiet", *extra],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def numbers(out: Path) -> dict[str, tuple[float, float]]:
    """Each member's (test -ELBO, IWAE NLL) from its eval.json, in the layout of either version."""
    found = {}
    for path in sorted(out.glob("*/eval.json")):
        flat = dict(flatten(json.loads(path.read_text())))
        elbo = next(v for k, v in flat.items() if k.endswith(("neg_elbo", "elbo.loss", "test_loss", "elbo")))
        nll = next(v for k, v in flat.items() if k.endswith(("nll", "iwae_nll", "nll_nats")))
        found[path.parent.name] = (abs(float(elbo)), float(nll))  # -ELBO in nats, whichever sign the file keeps
    return found


def flatten(value, prefix=""):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield prefix, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--first", default=FIRST_RELEASE, help="the first release's commit")
    parser.add_argument("--json", help="also write the measurements here")
    parser.add_argument("extra", nargs="*", help="options for today's `vaelab compare` (after --)")
    args = parser.parse_args()
    print(
        f"the default study, first release ({args.first[:7]}) against today; {platform.machine()}, "
        f"{os.cpu_count()} cores, {datetime.datetime.now():%Y-%m-%d %H:%M}",
        flush=True,
    )
    seconds: dict[str, list[float]] = {"first release": [], "today": []}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        first = worktree(args.first, tmp / "first")
        try:
            for repeat in range(args.repeats):
                for name, src, extra in (("first release", first / "src", []), ("today", ROOT / "src", args.extra)):
                    out = tmp / f"{name.replace(' ', '-')}-{repeat}"
                    seconds[name].append(study(src, out, tmp / f"cache-{name.replace(' ', '-')}-{repeat}", extra))
                    results[name] = numbers(out)
                    print(f"  {name}: {seconds[name][-1]:.1f} s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(first)], capture_output=True)
    old, new = statistics.median(seconds["first release"]), statistics.median(seconds["today"])
    print(f"\nwall time: first release {old:.1f} s, today {new:.1f} s: {new / old:.2f} of the first release's time")
    print(f"{'member':<10} {'-ELBO first':>12} {'today':>8} {'diff':>7} {'NLL first':>10} {'today':>8} {'diff':>7}")
    for member, (elbo, nll) in results["first release"].items():
        if member not in results["today"]:
            print(f"{member:<10} (not in today's study)")
            continue
        e, n = results["today"][member]
        print(f"{member:<10} {elbo:12.2f} {e:8.2f} {e - elbo:+7.2f} {nll:10.2f} {n:8.2f} {n - nll:+7.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": seconds, "members": results}, indent=2))


if __name__ == "__main__":
    main()
