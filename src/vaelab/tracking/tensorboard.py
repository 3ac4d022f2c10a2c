"""TensorBoard: event files written by torch's `SummaryWriter` (which needs the `tensorboard` package).

A run writes to RUN/tensorboard/; a comparison study's members to STUDY/tensorboard/<member>/, so that
`tensorboard --logdir STUDY/tensorboard` shows them side by side; `--log-uri DIR` puts them under DIR instead
(DIR/<run> or DIR/<study>/<member>). The options go to the HParams dashboard, each linked to the test terms.
A resumed run writes to the same folder from the epoch it resumes at (`purge_step`: events of later epochs from
before the resume, which metrics.jsonl has dropped too, are hidden).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vaelab.tracking.base import Destination, Tracker

FOLDER = "tensorboard"


def log_dir(destination: Destination) -> Path:
    """Where the run's events go (see the module's doc)."""
    if destination.study is not None:
        study = Path(destination.study)
        root = Path(destination.uri) / study.name if destination.uri else study / FOLDER
        return root / destination.name
    return Path(destination.uri) / destination.name if destination.uri else destination.run_dir / FOLDER


class Session:
    def __init__(self, folder: Path, first_epoch: int):
        from torch.utils.tensorboard import SummaryWriter

        self.folder = folder
        self.writer = SummaryWriter(str(folder), purge_step=first_epoch if first_epoch > 1 else None)
        self.options: dict[str, Any] | None = None

    def hyper_parameters(self, values: dict[str, Any], resumed: bool) -> None:
        self.options = values  # written with the first scalars, whose test terms the dashboard shows beside them

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.options is not None:
            from torch.utils.tensorboard.summary import hparams

            tests = {name: value for name, value in values.items() if name.startswith("test/")}
            # written into this run's own events (SummaryWriter.add_hparams would start a sub-run of its own)
            for summary in hparams(self.options, tests or values):
                self.writer.file_writer.add_summary(summary)
            self.options = None
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def image(self, name: str, path: Path, step: int) -> None:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        self.writer.add_image(name, pixels, step, dataformats="HWC")

    def file(self, path: Path) -> None:
        """TensorBoard keeps no files; the report stays in the run directory."""

    def flush(self) -> None:
        self.writer.flush()

    def close(self, finished: bool) -> None:
        self.writer.close()


def open_session(destination: Destination, saved: dict[str, Any] | None) -> tuple[Session, dict[str, Any]]:
    folder = Path(saved["log_dir"]) if saved and isinstance(saved.get("log_dir"), str) else log_dir(destination)
    return Session(folder, destination.first_epoch), {"log_dir": str(folder.absolute())}


TRACKER = Tracker(
    name="tensorboard",
    help="TensorBoard event files (RUN/tensorboard/, or under --log-uri DIR)",
    extra="tensorboard",
    modules=("tensorboard", "torch.utils.tensorboard"),
    open=open_session,
)
