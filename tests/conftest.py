import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Keep downloads and feature classifiers the tests make out of the user's cache."""
    os.environ["VAELAB_DATA_DIR"] = str(tmp_path_factory.mktemp("vaelab-cache"))


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m vaelab ARGS` as a user would; returns the finished process (text output)."""
    src = str(Path(__file__).resolve().parents[1] / "src")  # this checkout's code, whatever is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "vaelab", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture
def cli(capfd):
    """Run the real `vaelab` command-line entry in this process (fast: torch is imported once).

    Returns an object with `returncode`, `stdout` and `stderr`, like `run_cli` (which starts a real process)."""
    from vaelab.cli import main

    def run(*args: str) -> subprocess.CompletedProcess:
        capfd.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


@pytest.fixture
def cli_process():
    return run_cli
