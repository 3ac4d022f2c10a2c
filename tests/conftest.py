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
def cli():
    return run_cli
