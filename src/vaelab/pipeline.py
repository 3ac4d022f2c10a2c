"""The whole chain for one run: train -> figures -> (evaluation) -> report. The CLI and `compare` call this."""

from __future__ import annotations

from pathlib import Path

from vaelab.config import TrainConfig
from vaelab.device import World


def train_run(config: TrainConfig, resume: bool = False, evaluate: bool = False, iwae_k: int = 1000) -> Path:
    from vaelab import figures, report
    from vaelab.train import train

    run_dir = train(config, resume=resume)
    if World.from_env().is_main:
        figures.all_figures(run_dir)
        if evaluate:
            from vaelab.evaluate import evaluate_run

            evaluate_run(run_dir, iwae_k=iwae_k, device=config.device)
        report.run_report(run_dir)
    return run_dir
