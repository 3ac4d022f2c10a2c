"""How many CPU threads torch uses: the cores that no other process is using, re-measured while work runs.

Why: torch's CPU kernels split each operation over one OpenMP thread per core and wait at a barrier for the
slowest. When another process holds one of two cores (a browser tab, a build, a second training), the thread
that shares its core runs at half speed or less and the others spin at the barrier waiting for it: a 5-epoch
training measured 7-9x slower with one busy core, where one thread would have lost at most the busy core's share.
So while work runs, `tick` measures, at most once per `INTERVAL` seconds, how much CPU time the rest of the
machine took (all CPU time on this process's cores minus this process's own) and gives torch one thread per core
left free. An idle machine keeps torch's default; a core freed again is taken back at the next measurement.

Linux only (it reads /proc/stat); elsewhere, or when the user fixed the count (`--threads N`, `OMP_NUM_THREADS`),
the count is left as asked.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch

INTERVAL = 1.0  # seconds between measurements: a measurement costs ~50 us, a wrong count costs up to 9x
FIRST = 0.1  # seconds of measurement before the first decision (the data loading usually covers it)
BUSY = 0.4  # a core counts as taken when other processes used at least this fraction of one


@dataclass(frozen=True)
class Sample:
    """CPU seconds at one moment: `busy` on this process's cores (every process), `own` this process's."""

    at: float
    busy: float
    own: float


def _cores() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return set(range(os.cpu_count() or 1))


def sample(cores: set[int], stat: str = "/proc/stat", clock=time.monotonic, own=time.process_time) -> Sample | None:
    """CPU time so far on `cores` and of this process, or None where /proc/stat cannot be read."""
    try:
        with open(stat, encoding="ascii") as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = 0
    seen = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit() or int(name[3:]) not in cores:
            continue
        # user nice system idle iowait irq softirq steal ...: steal is time the host gave to another guest
        fields = [int(v) for v in rest.split()]
        busy += sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0) - sum(fields[8:10])
        seen += 1
    if not seen:
        return None
    return Sample(clock(), busy / ticks, own())


def others_load(before: Sample, after: Sample) -> float:
    """Cores' worth of CPU time other processes used between two samples: (all busy time - ours) / elapsed."""
    elapsed = after.at - before.at
    if elapsed <= 0:
        return 0.0
    return max(0.0, (after.busy - before.busy) - (after.own - before.own)) / elapsed


def free_threads(others: float, cores: int, most: int) -> int:
    """Threads to use when other processes take `others` cores' worth: one per core they leave free, 1 to `most`.

    A core is taken when they used at least `BUSY` of one (a spinning process sharing a core with two of our
    threads measures about 0.67)."""
    taken = math.floor(others) + (others % 1 >= BUSY)
    return max(1, min(most, cores - taken))


class Governor:
    """Adapts torch's intra-op thread count to the free cores; `tick()` between batches of work."""

    def __init__(
        self, most: int, cores: set[int], stat: str = "/proc/stat", clock=time.monotonic, own=time.process_time
    ):
        self.most = most
        self.cores = cores
        self.measure = lambda: sample(cores, stat, clock, own)
        self.clock = clock
        self.last = self.measure()  # None where /proc/stat cannot be read: the count stays `most`
        self.threads = most
        self.decided = False  # the first decision comes after FIRST seconds, later ones every INTERVAL
        self.changes = 0
        self.others = 0.0  # the last measurement of other processes' load, in cores

    @property
    def active(self) -> bool:
        return self.last is not None

    def tick(self) -> int:
        """Re-measure when due, set torch's thread count if it changed; returns the count in use."""
        if self.last is None:
            return self.threads
        if self.clock() - self.last.at < (INTERVAL if self.decided else FIRST):
            return self.threads
        now = self.measure()
        if now is None:
            return self.threads
        self.decided = True
        self.others = others_load(self.last, now)
        wanted = free_threads(self.others, len(self.cores), self.most)
        self.last = now
        if wanted != self.threads:
            torch.set_num_threads(wanted)
            self.threads = wanted
            self.changes += 1
        return self.threads


_governor: Governor | None = None
_default: int | None = None  # torch's count before vaelab first changed it


def govern(requested: int | None = 0) -> None:
    """Fix torch's thread count (`requested` > 0, as `--threads` asks), let `tick` adapt it to the free cores (0),
    or keep what an earlier call in this process chose (None: the evaluation after a training keeps its count).

    A count fixed by OMP_NUM_THREADS in the environment is respected like `--threads`."""
    global _governor, _default
    if requested is None and _default is not None:
        return
    if _default is None:
        _default = torch.get_num_threads()
    if requested:
        torch.set_num_threads(requested)
        _governor = None
        return
    if os.environ.get("OMP_NUM_THREADS") or os.environ.get("VAELAB_THREADS") == "fixed":
        _governor = None
        return
    torch.set_num_threads(_default)
    _governor = Governor(_default, _cores())


def tick() -> int:
    """Between batches of work: re-pick the thread count if `govern` lets it adapt. Cheap when not due."""
    if _governor is None:
        return torch.get_num_threads()
    return _governor.tick()
