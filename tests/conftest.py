import os
import subprocess
from pathlib import Path

import pytest
import torch

from tests.helpers.processes import run_cli
from tests.helpers.world import Mirror

torch.set_num_threads(2)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items):
    """A test that runs the command line (the `cli` or `cli_process` fixture) is end to end: marked `e2e` here if its
    file did not say so, so that the mutation run (`-m "not e2e ..."`, pyproject's [tool.mutmut]) leaves it out."""
    for item in items:
        if {"cli", "cli_process"} & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """Keep downloads and feature classifiers the tests make out of the user's cache."""
    os.environ["VAELAB_DATA_DIR"] = str(tmp_path_factory.mktemp("vaelab-cache"))


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


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory):
    """`digits_npz(n_train, n_test)`: an .npz of the first real mnist-mini digits of each split (made once)."""
    import numpy as np

    from vaelab import data

    made = {}

    def make(n_train: int, n_test: int) -> Path:
        if (n_train, n_test) not in made:
            ds = data.load("mnist-mini")
            path = tmp_path_factory.mktemp("digits") / f"digits_{n_train}_{n_test}.npz"
            np.savez(
                path,
                train_images=ds.train.images[:n_train].numpy(),
                train_labels=ds.train.labels[:n_train].numpy(),
                test_images=ds.test.images[:n_test].numpy(),
                test_labels=ds.test.labels[:n_test].numpy(),
            )
            made[(n_train, n_test)] = path
        return made[(n_train, n_test)]

    return make


@pytest.fixture
def mirror(monkeypatch):
    """torch.distributed's collectives replaced, for one test, by those of a mirrored world of two processes."""
    return Mirror(2).install(monkeypatch)


@pytest.fixture
def no_figures(monkeypatch):
    """Skip what follows training (figures, report: about 0.9 s of a 1 s run; tested in their own files), so that
    runs of tiny networks take a second. Training, checkpoints, metrics and the epoch sample grids still run."""
    monkeypatch.setattr("vaelab.pipeline.finish_run", lambda *args, **kwargs: None)


@pytest.fixture(scope="session")
def tiny_run(digits_npz, tmp_path_factory):
    """A run of 64 digits, one epoch of an MLP with a hidden layer of 8: copy it before editing its files."""
    from vaelab.cli import main

    out = tmp_path_factory.mktemp("fuzzrun") / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(digits_npz(64, 16)),
                "--out",
                str(out),
                "--epochs",
                "1",
                "--quiet",
                "--latent-dim",
                "2",
                "--hidden",
                "8",
                "--batch-size",
                "32",
            ]
        )
        == 0
    )
    return out
