"""The whole chain for one run: train -> figures -> (evaluation) -> report. The CLI and `compare` call this.

The data set is loaded once and the trained model stays in memory: figures, evaluation and the report get
the same `Run`.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

from vaelab import data, kinds, plots, tracking
from vaelab.config import TrainConfig
from vaelab.data import limits
from vaelab.data.limits import gib
from vaelab.device import World, resolve_device
from vaelab.errors import ConfigError, VaelabError
from vaelab.evaluate.iwae import BLOCK_FLOATS
from vaelab.kinds.memory import Footprint, StepSizes
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


# The share of the memory a run's tensors may take: the rest is the operating system's, torch's own (~0.5 GB) and the
# data set's. An IWAE at --k 10000 measured 23 GB on a 23.5 GiB machine: accepted without this, killed mid-step.
MEMORY_SHARE = 0.9


def machine_memory(device_name: str) -> tuple[int | None, str]:
    """The memory a run on `device_name` may use, and what a message calls it: the GPU's for CUDA, else this
    machine's (or its container's limit); None where the platform does not say."""
    device = resolve_device(device_name)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory, "this GPU"
    return limits.memory_bytes(), "this machine"


def step_sizes(config: TrainConfig, dataset: data.Dataset, world: World) -> StepSizes:
    """What one process's step and evaluation hold: its share of the batch (no more images than its shard has),
    a test batch, and `vaelab eval`'s decoded block."""
    batch = min(config.batch_size, len(dataset.train)) // world.size
    return StepSizes(max(1, batch), min(config.eval_batch_size, len(dataset.test)), BLOCK_FLOATS)


def check_memory(config: TrainConfig, kind: kinds.Kind, dataset: data.Dataset, world: World | None = None) -> None:
    """Refuse, before any work, a run whose step or evaluation cannot fit in memory: the kind's own networks built
    on the meta device, with what its step holds besides (`Kind.footprint`), against this machine's memory."""
    sizes = step_sizes(config, dataset, world or World.from_env())
    footprint = kind.footprint(config, dataset.shape, sizes)
    total, where = machine_memory(config.device)
    if total is not None and max(footprint.train_bytes, footprint.eval_bytes) > MEMORY_SHARE * total:
        raise ConfigError(refusal(footprint, config, kind, sizes, total, where))


def refusal(
    footprint: Footprint, config: TrainConfig, kind: kinds.Kind, sizes: StepSizes, total: int, where: str
) -> str:
    """The one line that refuses a run that cannot fit: what would need how much, and what to lower."""
    f, need = footprint, max(footprint.train_bytes, footprint.eval_bytes)
    room = f"{gib(total)}, {gib(int(MEMORY_SHARE * total))} of it for a run"
    if 2 * f.state_bytes >= need:  # the networks themselves, whatever the batch
        return (
            f"the networks would have {f.parameters:,} parameters ({gib(need)} to train), more than {where}'s "
            f"{gib(total)} allows ({gib(int(MEMORY_SHARE * total))} of it for a run); use smaller --hidden, --channels or --latent-dim"
        )
    if f.train_bytes >= f.eval_bytes:
        knobs, what = (*f.lower, "batch_size"), f"a training step of the {kind.title} would need about {gib(need)} "
        what += f"for a batch of {sizes.batch}"
    else:
        # the test split's batches, and `vaelab eval`'s decoded blocks (bounded by BLOCK_FLOATS, not by an option)
        knobs, what = (*f.lower, "eval_batch_size"), f"evaluating the {kind.title} would need about {gib(need)}"
    value = getattr(config.options, knobs[0], getattr(config, knobs[0], None))
    flags = [f"--{name.replace('_', '-')}" for name in knobs]
    return f"{flags[0]} {value}: {what} ({where} has {room}); lower {' or '.join(flags)}"


def preflight(config: TrainConfig, kind: kinds.Kind, dataset: data.Dataset, world: World | None = None) -> None:
    """Everything that can refuse a run once its data set is loaded, before anything is written: the kind reads or
    refuses the data (`Kind.prepare`: a conditional kind's labels and classes), then the memory check."""
    if kind.prepare:
        kind.prepare(config, dataset)
    check_memory(config, kind, dataset, world)


def check_runs(configs: dict[str, TrainConfig]) -> None:
    """Refuse a set of runs (a study's members, by name) before the first one trains: for each, its data set
    (loaded once per data set), the kind's reading of it (labels, classes) and the memory check, on a copy of its
    config. An error names the run and, where the message does not, its data."""
    loaded: dict[tuple, data.Dataset] = {}
    for name, config in configs.items():
        key = (config.data, tuple(config.size) if config.size else None)
        try:
            if key not in loaded:
                loaded[key] = load_dataset(config)
            preflight(copy.deepcopy(config), kinds.get(config.kind), loaded[key])
        except VaelabError as exc:
            where = "" if config.data in str(exc) else f" on {config.data}"
            raise type(exc)(f"{name}{where}: {exc}") from None


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
    preflight(config, kind, dataset)
    main = World.from_env().is_main
    if config.precision_note and not config.quiet and main:  # the run starts: say what it chose
        print(config.precision_note, file=sys.stderr)
    with tracking.start(log, run_dir, config, resume) as tracked:
        trained = train(config, kind, dataset, run_dir, resume, on_epoch=tracked.on_epoch(epoch_samples(config.seed)))
        if main:
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
