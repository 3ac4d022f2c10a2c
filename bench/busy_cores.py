"""Benchmark: the same work on an idle machine and beside 1 and 2 busy processes (each spinning on a core).

In one invocation, for each condition (idle, 1 busy, 2 busy) every contender runs in turn as its own process, so the
ratios busy/idle compare runs that saw the same machine:
- `vaelab train` (default MLP, and conv) with vaelab's thread choice (the default: one thread per free core,
  re-measured every second) and with torch's fixed default count (`VAELAB_THREADS=fixed`: vaelab before);
- `vaelab eval` of the trained MLP run (IWAE k=1000 on the test split), both ways;
- `vaelab compare` (a small study: mlp, z 2 and 10, 2 epochs, no eval), both ways;
- a plain PyTorch loop training the same MLP network for the same epochs, with torch's default count, and with
  OpenMP's passive wait policy (`OMP_WAIT_POLICY=PASSIVE`, the other usual remedy).

    python bench/busy_cores.py [--repeats 1] [--only train-mlp,plain] [--json FILE]

Each row gives seconds idle, with 1 and 2 busy processes, and the ratios to idle. Losing one of two cores
costs at most 2x; the busy processes here also compete for the remaining core with 2 busy.
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

EPOCHS = 5


def plain_loop(epochs: int, seed: int = 0) -> None:
    """The same network as `vaelab train`'s default, trained by a loop written the usual way."""
    import torch
    import torch.nn.functional as F

    from vaelab import data, kinds
    from vaelab.kinds.base import networks
    from vaelab.models import VAE

    dataset = data.load("mnist-mini")
    config = kinds.make_config({"quiet": True})
    torch.manual_seed(seed)
    model = VAE(networks(config, dataset.shape))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.options.lr)
    images = dataset.train.images
    for _ in range(epochs):
        for index in torch.randperm(images.shape[0]).split(config.batch_size):
            x = images[index].float().div(255)
            out = model(x)
            recon = F.binary_cross_entropy_with_logits(out.output, x, reduction="sum")
            mu, logvar = out.posterior.mean, out.posterior.logvar
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            optimizer.zero_grad()
            ((recon + kl) / x.shape[0]).backward()
            optimizer.step()


def contenders(work: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    vaelab = [sys.executable, "-m", "vaelab"]
    fixed = {"VAELAB_THREADS": "fixed"}
    train = [*vaelab, "train", "--epochs", str(EPOCHS), "--quiet"]
    evaluate = [*vaelab, "eval", str(work / "eval-run"), "--quiet", "--iwae-k", "1000"]
    study = [*vaelab, "compare", "--archs", "mlp", "--latent-dims", "2,10", "--epochs", "2", "--no-eval", "--quiet"]
    plain = [sys.executable, __file__, "--plain"]
    return {
        "train-mlp": ([*train, "--out", str(work / "mlp")], {}),
        "train-mlp fixed": ([*train, "--out", str(work / "mlp")], fixed),
        "train-conv": ([*train, "--arch", "conv", "--out", str(work / "conv")], {}),
        "train-conv fixed": ([*train, "--arch", "conv", "--out", str(work / "conv")], fixed),
        "eval": (evaluate, {}),
        "eval fixed": (evaluate, fixed),
        "compare": ([*study, "--out", str(work / "study")], {}),
        "compare fixed": ([*study, "--out", str(work / "study")], fixed),
        "plain": (plain, {}),
        "plain passive": (plain, {"OMP_WAIT_POLICY": "PASSIVE"}),
    }


def timed(command: list[str], env: dict[str, str], work: Path) -> float:
    for stale in ("mlp", "conv", "study"):  # each run starts from nothing
        subprocess.run(["rm", "-rf", str(work / stale)], check=True)
    start = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


def spinners(n: int) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(0.5)
    return procs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="runs per contender and condition (median)")
    parser.add_argument("--only", default="", help="comma-separated contenders (default all)")
    parser.add_argument("--busy", default="0,1,2", help="numbers of busy processes to run beside (default 0,1,2)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_loop(EPOCHS)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "VAELAB_PROGRESS": "0"}
        subprocess.run(  # the run that eval measures
            [sys.executable, "-m", "vaelab", "train", "--epochs", "1", "--quiet", "--out", str(work / "eval-run")],
            env=env,
            check=True,
        )
        runs = contenders(work)
        chosen = [name for name in runs if not args.only or name in args.only.split(",")]
        results: dict[str, dict[str, float]] = {name: {} for name in chosen}
        conditions = [int(n) for n in args.busy.split(",")]
        for busy in conditions:
            procs = spinners(busy)
            try:
                for name in chosen:
                    command, extra = runs[name]
                    results[name][str(busy)] = statistics.median(
                        timed(command, extra, work) for _ in range(args.repeats)
                    )
                    print(f"{busy} busy  {name:18s} {results[name][str(busy)]:7.1f} s", file=sys.stderr)
            finally:
                for proc in procs:
                    proc.kill()
                    proc.wait()
    print(f"\n{'contender':18s}" + "".join(f" {f'{n} busy s':>9s}" for n in conditions), end="")
    print("".join(f" {f'{n} busy x':>9s}" for n in conditions if n and 0 in conditions))
    for name, row in results.items():
        cells = "".join(f" {row[str(n)]:9.1f}" for n in conditions)
        ratios = "".join(f" {row[str(n)] / row['0']:8.2f}x" for n in conditions if n and 0 in conditions)
        print(f"{name:18s}{cells}{ratios}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "when": datetime.datetime.now().isoformat(timespec="seconds"),
                    "machine": platform.platform(),
                    "cores": os.cpu_count(),
                    "repeats": args.repeats,
                    "seconds": results,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
