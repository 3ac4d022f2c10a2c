"""The training loop: batches, optimizer steps, per-epoch evaluation, metrics.jsonl, checkpoints, resume.

`_train` runs the epochs of any model through a small trainer object (`VAETrainer` here; the GAN and
VAE-GAN trainers in `adversarial`) that owns the networks, their optimizers, one epoch and the test
terms; the VAE's epoch (`train_epoch`) is written out top to bottom. Data-parallel: the batch order is
drawn and sharded in `data.batches`, epoch sums are summed across processes (`device.sum_across`), and only the main process
writes files, draws figures and shows the progress bar.
"""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import vaelab
from vaelab import data, plots
from vaelab.checkpoint import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    STATE_FILE,
    load_training_state,
    read_json,
    save_training_state,
    save_weights,
    write_json,
)
from vaelab.config import TrainConfig, config_from_dict
from vaelab.device import World, any_flag, init_distributed, sum_across
from vaelab.errors import ConfigError, DivergenceError, RunError
from vaelab.evaluate.elbo import split_terms
from vaelab.losses import batch_sums, binarize, kl_weight
from vaelab.models import VAE, DiagonalGaussian, VAEConfig

EVAL_SEED_OFFSET = 10_000  # test-time noise and binarization use their own seeded generator
SAMPLE_SEED_OFFSET = 20_000  # the fixed N(0, I) batch behind every sample grid of a run
N_FIXED = 64


def model_config(config: TrainConfig, shape: tuple[int, int, int]) -> VAEConfig:
    return VAEConfig(
        shape=shape, arch=config.arch, latent_dim=config.latent_dim, hidden=config.hidden and tuple(config.hidden),
        channels=tuple(config.channels), activation=config.activation, likelihood=config.recon,
        sigma=config.sigma, learn_sigma=config.learn_sigma,
    )  # fmt: skip


def fixed_noise(seed: int, latent_dim: int, n: int = N_FIXED) -> torch.Tensor:
    """The run's fixed batch of N(0, I) latents, so that sample grids are comparable across epochs and runs."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed + SAMPLE_SEED_OFFSET))


def versions() -> dict[str, str]:
    return {
        "vaelab": vaelab.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def default_run_dir(config: TrainConfig, root: Path = Path("runs")) -> Path:
    """`runs/<data>-<arch>-z<latent>`, with -2, -3... appended when that name is taken."""
    base = f"{Path(config.data).name}-{config.arch}-z{config.latent_dim}"
    candidate, k = root / base, 1
    while candidate.exists():
        k += 1
        candidate = root / f"{base}-{k}"
    return candidate


def fused_adam(module: torch.nn.Module, lr: float, betas) -> torch.optim.Optimizer:
    """Adam, fused into one kernel where this torch build has it (about 10x less time per step on a CPU
    than the per-parameter loop for the default MLP); the same update either way."""
    params, betas = list(module.parameters()), tuple(betas)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    return fused_adam(model, config.lr, config.adam_betas)


class NonFinite(Exception):
    """Raised inside an epoch when a loss term is not finite; `train` turns it into a diagnosis."""

    def __init__(self, sums: dict[str, torch.Tensor], step: int):
        self.sums, self.step = sums, step


def _diagnose(sums: dict[str, torch.Tensor], step: int, epoch: int, config: TrainConfig, run_dir: Path, last_good: int):
    bad = [name for name, value in sums.items() if not torch.isfinite(value).all()] or ["loss"]
    kept = (
        f"the checkpoint of epoch {last_good} in {run_dir} is intact" if last_good else "no checkpoint was written yet"
    )
    lr = config.lr if config.model == "vae" else config.adversarial_lr
    hints = [f"a lower --{'lr' if config.model == 'vae' else 'gan-lr'} (now {lr:g})"]
    if not config.grad_clip:
        hints.append("gradient clipping (--grad-clip 1.0)")
    hints.append("checking that the data's values lie in [0, 1]")
    return DivergenceError(
        f"training diverged: the {bad[0]} term became non-finite at step {step} (epoch {epoch}); "
        f"try {', '.join(hints)}; {kept}"
    )


def train_epoch(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    config: TrainConfig,
    epoch: int,
    order_gen: torch.Generator,
    noise_gen: torch.Generator,
    world: World,
    device: torch.device,
    bar=None,
    net: torch.nn.Module | None = None,
) -> tuple[dict[str, float], float]:
    """One pass over `images` (uint8, this process's shard drawn by `data.batches`); returns the exact means
    per image of every term over the epoch (reduced across processes) and the seconds it took.

    `config.batch_size` is the global batch: each of `world.size` processes takes its share of it. `net` is
    what the forward pass goes through (a DistributedDataParallel wrapper of `model`, or `model` itself)."""
    net = model if net is None else net
    local_batch = config.batch_size // world.size
    model.train()
    n_images = images.shape[0] // world.size * world.size
    steps = math.ceil(n_images // world.size / local_batch)
    totals: dict[str, torch.Tensor] = {}
    started = time.perf_counter()
    for i, (x, _) in enumerate(data.batches(images, local_batch, shuffle=True, generator=order_gen,
                                             rank=world.rank, world_size=world.size, device=device)):  # fmt: skip
        beta = kl_weight(config.beta, epoch - 1 + i / steps, config.warmup_epochs)
        if config.binarize:
            x = binarize(x, noise_gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            out = net(x, noise_gen)
        posterior = DiagonalGaussian(out.posterior.mean.float(), out.posterior.logvar.float())  # losses in fp32
        sums = batch_sums(model.likelihood, out.output.float(), x, posterior, model.log_sigma)
        loss_sum = sums["recon"] + beta * sums["kl"]
        if any_flag(not torch.isfinite(loss_sum), world):  # collective, so that every process stops together
            raise NonFinite(sums, i + 1)
        optimizer.zero_grad(set_to_none=True)
        (loss_sum / x.shape[0]).backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        for name, value in {"loss": loss_sum, **sums}.items():
            totals[name] = totals.get(name, 0) + value.detach().double()
        if bar is not None:
            bar.update(x.shape[0] * world.size)
            if i % 10 == 0:
                bar.set_postfix(loss=f"{loss_sum.item() / x.shape[0]:.2f}", refresh=False)
    seconds = time.perf_counter() - started
    totals = sum_across({k: torch.as_tensor(v, dtype=torch.float64, device=device) for k, v in totals.items()}, world)
    return {name: float(value) / n_images for name, value in totals.items()}, seconds


# What may change when a run is resumed; every other option must match the saved run.
RESUMABLE = ("epochs", "lr", "grad_clip", "quiet", "device", "threads", "eval_batch_size", "precision", "compile")


def resume_config(run_dir: str | Path, overrides: dict[str, Any]) -> TrainConfig:
    """The saved config of `run_dir` with the allowed `overrides` applied (a lower lr after a divergence, say)."""
    run_dir = Path(run_dir)
    if not (run_dir / STATE_FILE).exists():
        raise RunError(f"{run_dir}: no training state to resume from ({STATE_FILE} is missing)")
    saved = read_json(run_dir / CONFIG_FILE)["train"]
    wanted = config_from_dict({**saved, **overrides}).to_dict()
    for name in overrides:
        name = name.replace("-", "_")
        if name not in RESUMABLE and name != "out" and wanted[name] != saved[name]:
            raise ConfigError(f"{name}: cannot change on --resume (the run was trained with {saved[name]!r})")
    return config_from_dict({**saved, **{k: wanted[k] for k in RESUMABLE}, "out": str(run_dir)})


def prepare_run_dir(config: TrainConfig, resume: bool) -> Path:
    if resume:
        if not config.out or not (Path(config.out) / STATE_FILE).exists():
            raise RunError(f"{config.out}: no training state to resume from; give the run with --out")
        return Path(config.out)
    run_dir = Path(config.out) if config.out else default_run_dir(config)
    if (run_dir / STATE_FILE).exists():
        raise RunError(f"{run_dir}: already holds a run; add --resume to continue it, or choose another --out")
    return run_dir


def train(config: TrainConfig, resume: bool = False, world: World | None = None) -> Path:
    """Train a VAE as `config` says; return the run directory. With `resume`, `config` comes from
    `resume_config` and training continues from the checkpoint in `config.out`."""
    world = world or World.from_env()
    if config.batch_size % world.size:
        raise ConfigError(
            f"batch_size: the global batch {config.batch_size} must divide evenly among {world.size} processes"
        )
    run_dir = prepare_run_dir(config, resume)
    if config.threads:
        torch.set_num_threads(config.threads)
    device, own_group = init_distributed(world, config.device)
    try:
        return _train(config, resume, world, run_dir, device)
    finally:
        if own_group:
            import torch.distributed as dist

            dist.destroy_process_group()


class VAETrainer:
    """What `_train` needs to know of a VAE: its modules and optimizers, one epoch, the test terms."""

    def __init__(self, config: TrainConfig, shape: tuple[int, int, int], device: torch.device, world: World):
        self.config, self.device, self.world = config, device, world
        self.model = VAE(model_config(config, shape)).to(device)  # the generative model: model.safetensors
        self.modules = {"vae": self.model}
        self.optimizers = {"adam": make_optimizer(self.model, config)}
        self.net = _wrap(self.model, config, device, world)

    def set_lr(self, config: TrainConfig) -> None:
        for group in self.optimizers["adam"].param_groups:
            group["lr"] = config.lr

    def train_epoch(self, images, epoch, order_gen, noise_gen, bar) -> tuple[dict[str, float], float]:
        return train_epoch(self.model, self.optimizers["adam"], images, self.config, epoch, order_gen, noise_gen,
                           self.world, self.device, bar, self.net)  # fmt: skip

    def test_terms(self, images: torch.Tensor, epoch: int) -> dict[str, float]:
        return split_terms(self.model, images, beta=kl_weight(self.config.beta, epoch, self.config.warmup_epochs),
                           binarize=self.config.binarize, seed=self.config.seed + EVAL_SEED_OFFSET,
                           batch_size=self.config.eval_batch_size, device=self.device, world=self.world)  # fmt: skip

    def record(self, epoch: int) -> dict[str, Any]:
        return {"beta": kl_weight(self.config.beta, epoch, self.config.warmup_epochs),
                "lr": self.optimizers["adam"].param_groups[0]["lr"]}  # fmt: skip

    def extra_weights(self) -> dict[str, torch.nn.Module]:
        return {}


def _wrap(module: torch.nn.Module, config: TrainConfig, device: torch.device, world: World) -> torch.nn.Module:
    """DistributedDataParallel across processes (gradients averaged: the global batch's mean gradient),
    then torch.compile if asked."""
    net = module
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(net) if config.compile else net


def make_trainer(config: TrainConfig, shape, device: torch.device, world: World):
    if config.model == "vae":
        return VAETrainer(config, shape, device, world)
    from vaelab.adversarial import TRAINERS

    return TRAINERS[config.model](config, shape, device, world)


def _train(config: TrainConfig, resume: bool, world: World, run_dir: Path, device: torch.device) -> Path:
    torch.manual_seed(config.seed)  # model initialisation: identical on every process
    dataset = data.load(config.data, size=tuple(config.size) if config.size else None)
    trainer = make_trainer(config, dataset.shape, device, world)
    order_gen = torch.Generator().manual_seed(config.seed)  # the epochs' batch order
    # reparameterization and binarization noise: a different stream on each process
    noise_gen = torch.Generator(device=device).manual_seed(config.seed + 1 + 7919 * world.rank)
    noise = fixed_noise(config.seed, trainer.model.latent_dim)  # --init-from may bring its own latent dimension

    start_epoch = 0
    if resume:
        rng, info = load_training_state(run_dir / STATE_FILE, trainer.modules, trainer.optimizers)
        order_gen.set_state(rng["order"])
        noise_gen.set_state(rng.get(f"noise{world.rank}", rng["noise"]))
        start_epoch = info["epoch"]
        trainer.set_lr(config)
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "samples").mkdir(exist_ok=True)
        if resume:
            _truncate_metrics(run_dir / METRICS_FILE, start_epoch)
            meta = read_json(run_dir / CONFIG_FILE)
            write_json(run_dir / CONFIG_FILE, {**meta, "train": config.to_dict()})
        else:
            meta = {"kind": config.model, "model": trainer.model.config.to_dict(), "train": config.to_dict(),
                    "data": _data_info(dataset), "versions": versions()}  # fmt: skip
            write_json(run_dir / CONFIG_FILE, meta)
            (run_dir / METRICS_FILE).write_text(json.dumps({"config": config.to_dict(), "versions": versions()}) + "\n")

    train_images = dataset.train.images.to(device) if device.type == "cuda" else dataset.train.images
    n_train = len(dataset.train) // world.size * world.size
    steps_per_epoch = math.ceil(n_train // world.size / (config.batch_size // world.size))
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch + 1, config.epochs + 1):
        bar = tqdm(total=n_train, unit="img", unit_scale=True, desc=f"epoch {epoch}/{config.epochs}",
                   disable=config.quiet or not world.is_main, leave=True, dynamic_ncols=True)  # fmt: skip
        try:
            train_means, seconds = trainer.train_epoch(train_images, epoch, order_gen, noise_gen, bar)
        except NonFinite as bad:
            bar.close()
            raise _diagnose(bad.sums, step + bad.step, epoch, config, run_dir, epoch - 1) from None
        step += steps_per_epoch
        test_means = trainer.test_terms(dataset.test.images, epoch)
        headline = "loss" if "loss" in train_means else next(iter(train_means))
        bar.set_postfix({headline: f"{train_means[headline]:.3f}", "test": f"{test_means[headline]:.3f}"})
        bar.close()
        rng = {"order": order_gen.get_state(), "noise": noise_gen.get_state(), **_other_noise_states(noise_gen, world)}
        if world.is_main:
            record = {"epoch": epoch, "step": step, "train": train_means, "test": test_means, **trainer.record(epoch),
                      "seconds": seconds, "images_per_s": n_train / seconds}  # fmt: skip
            with open(run_dir / METRICS_FILE, "a") as f:
                f.write(json.dumps(record) + "\n")
            trainer.model.eval()
            plots.save_grid(
                run_dir / "samples" / f"epoch_{epoch:03d}.png", trainer.model.sample(len(noise), z=noise), nrow=8
            )
            save_weights(run_dir / MODEL_FILE, {"": trainer.model})
            for name, module in trainer.extra_weights().items():
                save_weights(run_dir / f"{name}.safetensors", {"": module})
            save_training_state(
                run_dir / STATE_FILE, trainer.modules, trainer.optimizers, rng, {"epoch": epoch, "step": step}
            )
    for module in trainer.modules.values():
        _check_in_sync(module, world)
    return run_dir


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
    return {"name": dataset.name, "source": dataset.source, "shape": list(dataset.shape), "classes": dataset.classes,
            "n_train": len(dataset.train), "n_test": len(dataset.test)}  # fmt: skip


def _truncate_metrics(path: Path, epoch: int) -> None:
    """Drop metrics lines written after the checkpoint we resume from (a kill between the two writes)."""
    lines = path.read_text().splitlines()
    kept = [line for line in lines if "epoch" not in json.loads(line) or json.loads(line)["epoch"] <= epoch]
    path.write_text("".join(line + "\n" for line in kept))
