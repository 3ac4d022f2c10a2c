"""The whole chain for one run: train -> figures -> (evaluation) -> report. The CLI and `compare` call this.

The data set is loaded once and the trained model stays in memory: figures, evaluation and the report get
the same `Run`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vaelab import kinds, plots, tracking
from vaelab.config import TrainConfig
from vaelab.device import World, memory_bytes
from vaelab.errors import ConfigError
from vaelab.kinds.base import networks
from vaelab.models import VAE, parameter_count
from vaelab.noise import N_FIXED, fixed_generator
from vaelab.run import Run, load_dataset
from vaelab.rundir import RunDir


def epoch_samples(seed: int):
    """The per-epoch callback that draws the run's fixed noise into samples/epoch_NNN.png."""

    def draw(run_dir: RunDir, epoch: int, model: torch.nn.Module) -> None:
        z = model.sample_prior(N_FIXED, fixed_generator(seed))  # the model's own prior and latent dimension
        path = run_dir.epoch_samples_path(epoch)
        path.parent.mkdir(exist_ok=True)
        plots.save_grid(path, model.sample(len(z), z=z), nrow=8)

    return draw


def check_size(config: TrainConfig, shape: tuple[int, int, int]) -> None:
    """Refuse, before any work, networks that cannot fit: built on the meta device (no memory), counted, and
    set against this machine's memory (weights, gradients and two Adam moments, twice for adversarial kinds)."""
    n = parameter_count(lambda: VAE(networks(config, shape)))
    need = n * 4 * 4 * 2
    if need > memory_bytes():
        raise ConfigError(
            f"the networks would have {n:,} parameters ({need / 2**30:.1f} GiB to train), more than this "
            f"machine's {memory_bytes() / 2**30:.1f} GiB; use smaller --hidden, --channels or --latent-dim"
        )


def train_run(
    config: TrainConfig,
    resume: bool = False,
    evaluate: bool = False,
    iwae_k: int = 1000,
    fit_samplers: tuple[str, ...] = (),
    log: tracking.Log | None = None,
) -> Path:
    """Train (or resume) the run `config` describes, then everything after training (`finish_run`); with `log`,
    mirrored to a tracker (TensorBoard, MLflow) as it goes."""
    from vaelab.training.loop import prepare_run_dir, train

    kind = kinds.get(config.kind)
    run_dir = prepare_run_dir(config, resume)
    dataset = load_dataset(config)
    check_size(config, dataset.shape)
    with tracking.start(log, run_dir, config, resume) as tracked:
        trained = train(config, kind, dataset, run_dir, resume, on_epoch=tracked.on_epoch(epoch_samples(config.seed)))
        if World.from_env().is_main:
            device = next(trained.model.parameters()).device
            run = Run.open(run_dir.path, device, model=trained.model, dataset=dataset)
            finish_run(run, evaluate, iwae_k, config.device, config.quiet, fit_samplers)
            tracked.finish(run)
    return run_dir.path


def finish_run(
    run: Run,
    evaluate: bool = False,
    iwae_k: int = 1000,
    device: str = "auto",
    quiet: bool = True,
    fit_samplers: tuple[str, ...] = (),
) -> None:
    """Everything after training: every figure, the samplers to fit (for kinds with an encoder), the evaluation if
    asked (which measures the fitted samplers too), then the report."""
    from vaelab import figures, report, samplers

    figures.all_figures(run, quiet)
    for name in fit_samplers if run.kind.encoder else ():
        samplers.fit_run(run, name)
    if evaluate:
        from vaelab.evaluate import evaluate_run

        # a run trained with --precision bf16 is evaluated with a bf16 decoder too (the result records it)
        evaluate_run(run, iwae_k=iwae_k, device=device, precision=run.config.precision, quiet=quiet)
    report.run_report(run)
