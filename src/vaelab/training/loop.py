"""The training loop of every kind, written out top to bottom: epochs, batches from the one sharding helper,
the divergence check, timing, progress, metrics.jsonl, checkpoints, resume and data-parallel processes.

The loop is handed a kind (`kinds.Kind`) and drives its trainer (`kinds.base.Trainer`): one `forward` and
one `update` per batch, `test_terms` per epoch. Data-parallel: the batch order is drawn and sharded in
`data.batches`, epoch sums are summed across processes (`device.sum_across`), and only the main process
writes files and shows the progress bar. What else happens at the end of an epoch (the sample grid) is
the caller's `on_epoch` callback.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import vaelab
from vaelab import data, progress, threads
from vaelab.checkpoint import check_writable, load_training_state, remove_orphans, save_training_state, save_weights
from vaelab.config import TrainConfig
from vaelab.device import World, any_flag, init_distributed, sum_across
from vaelab.errors import ConfigError, DivergenceError, RunError
from vaelab.rundir import NO_STATE, RunDir
from vaelab.training.common import lr_factor

EpochCallback = Callable[[RunDir, int, torch.nn.Module], None]


@dataclass
class Trained:
    """What training leaves in memory: the run directory and its trained generative model (eval mode)."""

    run_dir: RunDir
    model: torch.nn.Module


def versions() -> dict[str, str]:
    return {
        "vaelab": vaelab.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def default_run_dir(config: TrainConfig, root: str = "runs") -> RunDir:
    """`runs/<data>-<arch>-z<latent>`, with -2, -3... appended when that name is taken."""
    base = f"{config.data.rstrip('/').split('/')[-1]}-{config.arch}-z{config.latent_dim}"
    candidate, k = RunDir(f"{root}/{base}"), 1
    while candidate.path.exists():
        k += 1
        candidate = RunDir(f"{root}/{base}-{k}")
    return candidate


def prepare_run_dir(config: TrainConfig, resume: bool) -> RunDir:
    """The run directory to train into, checked before any work: it must be writable, hold a run to resume
    (with `resume`) or none to overwrite (without)."""
    run_dir = RunDir(config.out) if config.out else default_run_dir(config)
    check_writable(run_dir.path)
    if resume and not run_dir.has_state():
        raise RunError(f"{config.out}: no training state to resume from ({NO_STATE})")
    if not resume and run_dir.has_state():
        raise RunError(f"{run_dir.path}: already holds a run; add --resume to continue it, or choose another --out")
    return run_dir


class NonFinite(Exception):
    """A loss term of a batch is not finite; `train` turns it into a diagnosis."""

    def __init__(self, terms: dict[str, torch.Tensor], step: int):
        self.terms, self.step = terms, step


def diagnose(
    bad: NonFinite, step: int, epoch: int, config: TrainConfig, lr_option: str, run_dir: RunDir
) -> DivergenceError:
    names = [name for name, value in bad.terms.items() if not torch.isfinite(value).all()] or ["loss"]
    last_good = epoch - 1
    kept = (
        f"the checkpoint of epoch {last_good} in {run_dir.path} is intact"
        if last_good
        else "no checkpoint was written yet"
    )
    lr = getattr(config.options, lr_option)
    hints = [f"a lower --{lr_option.replace('_', '-')} (now {lr:g})"]
    if not config.grad_clip:
        hints.append("gradient clipping (--grad-clip 1.0)")
    hints.append("checking that the data's values lie in [0, 1]")
    return DivergenceError(
        f"training diverged: the {names[0]} term became non-finite at step {step} (epoch {epoch}); "
        f"try {', '.join(hints)}; {kept}"
    )


def train(
    config: TrainConfig,
    kind,
    dataset: data.Dataset,
    run_dir: RunDir,
    resume: bool = False,
    world: World | None = None,
    on_epoch: EpochCallback | None = None,
) -> Trained:
    """Train `kind` on `dataset` into `run_dir` (from `prepare_run_dir`) as `config` says. With `resume`,
    `config` comes from `run.resume_config` and training continues from the checkpoint in `run_dir`."""
    world = world or World.from_env()
    if config.batch_size % world.size:
        raise ConfigError(
            f"batch_size: the global batch {config.batch_size} must divide evenly among {world.size} processes"
        )
    threads.govern(config.threads)
    device, own_group = init_distributed(world, config.device)
    try:
        trained = _train(config, kind, dataset, resume, world, run_dir, device, on_epoch)
        if own_group:
            import torch.distributed as dist

            dist.barrier()  # every process done with its collectives before any tears the group down
        return trained
    finally:
        if own_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train(
    config: TrainConfig,
    kind,
    dataset: data.Dataset,
    resume: bool,
    world: World,
    run_dir: RunDir,
    device: torch.device,
    on_epoch: EpochCallback | None,
) -> Trained:
    if kind.prepare:
        kind.prepare(config, dataset)  # e.g. a conditional kind reads the classes (before config.json is written)
    torch.manual_seed(config.seed)  # model initialisation: identical on every process
    trainer = kind.trainer(config, dataset.shape, device, world)
    order_gen = torch.Generator().manual_seed(config.seed)  # the epochs' batch order
    # reparameterization and binarization noise: a different stream on each process
    noise_gen = torch.Generator(device=device).manual_seed(config.seed + 1 + 7919 * world.rank)
    start_epoch = _restore(trainer, run_dir, order_gen, noise_gen, world, config) if resume else 0
    if world.is_main:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        remove_orphans(run_dir.path)  # what writes killed midway left behind
        if not resume:
            _start_files(run_dir, config, trainer, dataset)

    images = dataset.train.images.to(device) if device.type == "cuda" else dataset.train.images
    labels = dataset.train.labels
    n_train = len(dataset.train) // world.size * world.size
    steps_per_epoch = math.ceil(n_train // world.size / (config.batch_size // world.size))
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch + 1, config.epochs + 1):
        bar = progress.bar(
            n_train,
            f"epoch {epoch}/{config.epochs}",
            config.quiet or not world.is_main,
            "img",
            unit_scale=True,
            leave=True,
        )
        try:
            train_means, seconds = train_epoch(
                trainer, images, labels, config, epoch, order_gen, noise_gen, world, device, bar
            )
        except NonFinite as bad:
            bar.close()
            raise diagnose(bad, step + bad.step, epoch, config, kind.lr_option, run_dir) from None
        step += steps_per_epoch
        test_means = trainer.test_terms(dataset.test.images, dataset.test.labels, epoch)
        headline = next(iter(train_means))
        bar.set_postfix({headline: f"{train_means[headline]:.3f}", "test": f"{test_means[headline]:.3f}"})
        bar.close()
        rng = {"order": order_gen.get_state(), "noise": noise_gen.get_state(), **_other_noise_states(noise_gen, world)}
        if world.is_main:
            run_dir.append_metrics(
                {
                    "epoch": epoch,
                    "step": step,
                    "train": train_means,
                    "test": test_means,
                    **trainer.record(epoch),
                    "seconds": seconds,
                    "images_per_s": n_train / seconds,
                },
                after_epoch=start_epoch if resume and epoch == start_epoch + 1 else None,
            )
            if resume and epoch == start_epoch + 1:
                # only now, with a good epoch written, does a resumed run change its options: a run that diverges
                # again right away, or whose metrics.jsonl cannot be written, leaves config.json as it was
                run_dir.write_config({**run_dir.read_config(), "train": config.to_dict()})
            trainer.model.eval()
            if on_epoch:
                on_epoch(run_dir, epoch, trainer.model)
            save_weights(run_dir.model_path, {"": trainer.model})
            for name, module in trainer.extra_weights().items():
                save_weights(run_dir.weights_path(name), {"": module})
            save_training_state(
                run_dir.state_path, trainer.modules, trainer.optimizers, rng, {"epoch": epoch, "step": step}
            )
    for module in trainer.modules.values():
        _check_in_sync(module, world)
    trainer.model.eval()
    return Trained(run_dir, trainer.model)


def train_epoch(
    trainer,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    config: TrainConfig,
    epoch: int,
    order_gen: torch.Generator,
    noise_gen: torch.Generator,
    world: World,
    device: torch.device,
    bar=None,
) -> tuple[dict[str, float], float]:
    """One pass over `images` (uint8; this process's shard is drawn by `data.batches`); returns the exact means
    per image of every term over the epoch (reduced across processes) and the seconds it took.

    `config.batch_size` is the global batch: each of `world.size` processes takes its share of it."""
    local_batch = config.batch_size // world.size
    trainer.train_mode()
    n_images = images.shape[0] // world.size * world.size
    steps = math.ceil(n_images // world.size / local_batch)
    totals: dict[str, torch.Tensor] = {}
    # the learning rates as the options set them: scaled per step by --lr-schedule / --lr-warmup, and restored when
    # the epoch ends (or fails), so that the optimizers, and so the checkpoints, hold them unscaled between epochs
    rates = [(group, group["lr"]) for optimizer in trainer.optimizers.values() for group in optimizer.param_groups]
    started = time.perf_counter()
    try:
        for i, (x, y) in enumerate(
            data.batches(
                images,
                local_batch,
                labels=labels,
                shuffle=True,
                generator=order_gen,
                rank=world.rank,
                world_size=world.size,
                device=device,
                flip=noise_gen if config.flip else None,  # drawn from the run's noise: a resumed run flips the same
            )
        ):
            b, progress = x.shape[0], epoch - 1 + i / steps  # epochs done, fractions included
            threads.tick()
            factor = lr_factor(config.lr_schedule, config.lr_warmup, progress, config.epochs)
            for group, lr in rates:
                group["lr"] = lr * factor
            terms, pending = trainer.forward(x, y, progress, noise_gen)
            finite = torch.stack([v.detach().float() for v in terms.values()]).isfinite().all()
            if any_flag(not finite, world):  # collective, so that every process stops together
                raise NonFinite(terms, i + 1)
            terms.update(trainer.update(pending))
            weight = 1 if trainer.sums else b  # batch sums as they are, batch means times the batch
            for name, value in terms.items():
                totals[name] = totals.get(name, 0) + value.detach().double() * weight
            if bar is not None:
                bar.update(b * world.size)
                if i % 10 == 0:
                    shown = {
                        label: f"{terms[t].item() / (b if trainer.sums else 1):.3f}"
                        for label, t in trainer.shown.items()
                    }
                    bar.set_postfix(shown, refresh=False)
    finally:
        for group, lr in rates:
            group["lr"] = lr
    seconds = time.perf_counter() - started
    totals = sum_across({k: torch.as_tensor(v, dtype=torch.float64, device=device) for k, v in totals.items()}, world)
    return {name: float(value) / n_images for name, value in totals.items()}, seconds


def _restore(trainer, run_dir: RunDir, order_gen, noise_gen, world: World, config: TrainConfig) -> int:
    """Load the training state into the trainer and the generators; returns the epoch it was saved at."""
    saved = run_dir.read_config()["model"]
    if saved != trainer.model.config.to_dict():
        changed = sorted(k for k, v in trainer.model.config.to_dict().items() if saved.get(k) != v)
        raise RunError(
            f"{run_dir.config_path}: the model section does not match the run's options ({', '.join(changed)}); "
            "it was edited: restore it, or train a new run"
        )
    run_dir.read_metrics()  # a damaged metrics.jsonl refuses the resume now, not after an epoch of work
    rng, info = load_training_state(run_dir.state_path, trainer.modules, trainer.optimizers)
    epoch = info.get("epoch")
    if (
        not isinstance(epoch, int)
        or isinstance(epoch, bool)
        or not 0 < epoch <= 10**7
        or not {"order", "noise"} <= set(rng)
    ):
        raise RunError(f"{run_dir.state_path}: damaged (epoch {epoch!r}); train again without --resume")
    try:
        order_gen.set_state(rng["order"])
        noise_gen.set_state(rng.get(f"noise{world.rank}", rng["noise"]))
    except (RuntimeError, TypeError) as exc:
        raise RunError(
            f"{run_dir.state_path}: damaged random-generator states ({exc}); train again without --resume"
        ) from None
    trainer.set_lr(config)
    return epoch


def _start_files(run_dir: RunDir, config: TrainConfig, trainer, dataset: data.Dataset) -> None:
    run_dir.write_config(
        {
            "kind": config.kind,
            "model": trainer.model.config.to_dict(),
            "train": config.to_dict(),
            "data": _data_info(dataset),
            "versions": versions(),
        }
    )
    run_dir.start_metrics({"config": config.to_dict(), "versions": versions()})


def _check_in_sync(model: torch.nn.Module, world: World) -> None:
    """Every process must end with the same weights (DistributedDataParallel keeps them so); a cheap
    all-gather of a weight checksum guards against a silent desynchronisation."""
    if world.size == 1:
        return
    import torch.distributed as dist

    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().cpu()
    sums = [None] * world.size
    dist.all_gather_object(sums, float(checksum))
    if max(sums) - min(sums) > 1e-9 * max(1.0, abs(sums[0])):
        raise RuntimeError(
            f"processes ended with different weights (checksums {sums}): data-parallel training is out of sync"
        )


def _other_noise_states(noise_gen: torch.Generator, world: World) -> dict[str, torch.Tensor]:
    """Every process's noise-generator state, gathered on rank 0, so a resumed multi-process run continues
    each stream exactly (stored as noise1, noise2, ...; rank 0's is `noise`)."""
    if world.size == 1:
        return {}
    import torch.distributed as dist

    states = [None] * world.size
    dist.all_gather_object(states, noise_gen.get_state().cpu())
    return {f"noise{r}": state for r, state in enumerate(states) if r > 0}


def _data_info(dataset: data.Dataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "source": dataset.source,
        "shape": list(dataset.shape),
        "classes": dataset.classes,
        "n_train": len(dataset.train),
        "n_test": len(dataset.test),
    }
