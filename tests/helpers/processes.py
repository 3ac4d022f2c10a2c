"""Starting vaelab as a user would, on this checkout's code: `python -m vaelab` and `torchrun`."""

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")  # this checkout's code, whatever is installed


def environment() -> dict[str, str]:
    return {
        "PYTHONPATH": SRC,
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
        "OMP_NUM_THREADS": "1",
        "VAELAB_DATA_DIR": os.environ["VAELAB_DATA_DIR"],
    }


def torchrun(*args, nproc=2, timeout=300, module="vaelab"):
    """`torchrun --standalone --nproc-per-node N -m vaelab ARGS` (or a script, with module=None)."""
    target = ["-m", module] if module else []
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        *target,
        *map(str, args),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment())


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m vaelab ARGS` as a user would; returns the finished process (text output)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}  # this checkout
    return subprocess.run(
        [sys.executable, "-m", "vaelab", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )
