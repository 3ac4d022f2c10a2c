"""The whole chain for one run: train -> figures -> (evaluation) -> report. The CLI and `compare` call this."""

from __future__ import annotations

from pathlib import Path

from vaelab.config import TrainConfig
from vaelab.device import World


def train_run(config: TrainConfig, resume: bool = False, evaluate: bool = False, iwae_k: int = 1000) -> Path:
    from vaelab.train import train

    run_dir = train(config, resume=resume)
    if World.from_env().is_main:
        finish_run(run_dir, evaluate, iwae_k, config.device)
    return run_dir


def finish_run(run_dir: Path, evaluate: bool = False, iwae_k: int = 1000, device: str = "auto") -> None:
    """Everything after training: every figure, the evaluation if asked, then the report."""
    from vaelab import figures, report

    figures.all_figures(run_dir)
    if evaluate:
        from vaelab.evaluate import evaluate_run

        evaluate_run(run_dir, iwae_k=iwae_k, device=device)
    report.run_report(run_dir)
