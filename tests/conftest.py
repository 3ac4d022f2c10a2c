import subprocess
import sys

import pytest
import torch

torch.set_num_threads(2)


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m vaelab ARGS` as a user would; returns the finished process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "vaelab", *map(str, args)], capture_output=True, text=True, timeout=timeout
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
