"""Device selection and the process's place in a (possibly distributed) run."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from vaelab.errors import ConfigError


def memory_bytes() -> int:
    """This machine's physical memory."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this platform: assume a large machine
        return 1 << 40


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA, then Apple's MPS, then the CPU; naming an absent device is an error."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but torch sees no CUDA GPU; use --device cpu (or auto)")
    if name == "mps" and not has_mps:
        raise ConfigError("device: mps was asked for but it is not available; use --device cpu (or auto)")
    return torch.device(name)


def bf16_units(name: str) -> str | None:
    """What on device `name` multiplies bfloat16 in hardware (for a message), or None where bf16 would be emulated:
    a CUDA GPU that supports it, or a CPU with AMX or AVX512-BF16 (on other CPUs oneDNN converts and loses time)."""
    try:
        device = resolve_device(name)
    except ConfigError:  # an absent device: the run is refused where it is used, with its own message
        return None
    if device.type == "cuda":
        return "this GPU supports bf16" if torch.cuda.is_bf16_supported() else None
    if device.type != "cpu":
        return None
    cpu = getattr(torch, "cpu", None)
    for probe, units in (("_is_amx_tile_supported", "AMX"), ("_is_avx512_bf16_supported", "AVX512-BF16")):
        if getattr(cpu, probe, lambda: False)():
            return f"this CPU has {units}"
    return None


@dataclass(frozen=True)
class World:
    """This process's rank among `size` processes (1 and 0 without torchrun). Only rank 0 writes files."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> World:
        return cls(
            int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
        )


def init_distributed(world: World, device_name: str) -> tuple[torch.device, bool]:
    """Join the process group that torchrun describes (NCCL on CUDA, gloo on CPU) and pick this process's device.

    Returns (device, whether this call started the group, so the caller should end it)."""
    device = resolve_device(device_name)
    if world.size == 1:
        return device, False
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if dist.is_initialized():
        return device, False
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device, True


def any_flag(flag: bool, world: World) -> bool:
    """True on every process when `flag` is true on any of them (a no-op on one process)."""
    if world.size == 1:
        return flag
    import torch.distributed as dist

    value = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value)
    return bool(value.item() > 0)


def sum_across(values: dict[str, torch.Tensor], world: World) -> dict[str, torch.Tensor]:
    """Sum each tensor over every process, in place (a no-op on one process); returns `values`."""
    if world.size > 1:
        import torch.distributed as dist

        for value in values.values():
            dist.all_reduce(value)
    return values
