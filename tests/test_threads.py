"""torch's thread count follows the free cores (`vaelab.threads`), measured from a /proc/stat the tests write."""

from __future__ import annotations

import os

import pytest
import torch

from vaelab import threads
from vaelab.threads import Governor, Sample, free_threads, others_load, sample


@pytest.fixture(autouse=True)
def restore_threads(monkeypatch):
    """Each test leaves torch's count and vaelab's policy as it found them."""
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_governor", None)
    monkeypatch.setattr(threads, "_default", None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("VAELAB_THREADS", raising=False)
    yield
    torch.set_num_threads(before)


def stat_text(per_cpu: list[tuple[int, int, int]]) -> str:
    """A /proc/stat with one `cpuN` line per (user, idle, steal) in clock ticks."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"]
    for i, (user, idle, steal) in enumerate(per_cpu):
        lines.append(f"cpu{i} {user} 0 0 {idle} 0 0 0 {steal} 0 0")
    return "\n".join(lines + ["intr 1 2 3", "ctxt 4"]) + "\n"


class Clocks:
    """A wall clock and this process's CPU time that a test advances by hand."""

    def __init__(self):
        self.wall = 100.0
        self.own = 5.0

    def advance(self, seconds: float, own: float) -> None:
        self.wall += seconds
        self.own += own


@pytest.mark.parametrize(
    ("others", "cores", "most", "expected"),
    [
        (0.0, 2, 2, 2),  # idle: torch's default
        (0.3, 2, 2, 2),  # a little background work takes no core
        (0.4, 2, 2, 1),  # at BUSY of a core it counts as taken
        (0.67, 2, 2, 1),  # one spinning process beside two of our threads
        (1.0, 2, 2, 1),
        (2.0, 2, 2, 1),  # never fewer than one thread
        (1.0, 8, 8, 7),
        (2.5, 8, 8, 5),
        (0.0, 8, 4, 4),  # never more than torch's default
        (5.0, 8, 4, 3),
    ],
)
def test_one_thread_per_core_others_leave_free(others, cores, most, expected):
    assert free_threads(others, cores, most) == expected


def test_others_load_is_all_busy_time_minus_ours_per_second():
    before, after = Sample(at=10.0, busy=100.0, own=3.0), Sample(at=12.0, busy=103.0, own=4.0)
    assert others_load(before, after) == pytest.approx(1.0)  # 3 s busy in 2 s, 1 of them ours: one core's worth
    assert others_load(after, after) == 0.0
    # our own time measured a little above the machine's busy time (clock granularity): no negative load
    assert others_load(before, Sample(at=11.0, busy=100.5, own=3.6)) == 0.0


def test_sample_reads_only_this_process_cores_and_counts_steal(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(stat_text([(100, 50, 0), (200, 50, 10), (999, 0, 0)]))
    clocks = Clocks()
    got = sample({0, 1}, str(stat), lambda: clocks.wall, lambda: clocks.own)
    hz = os.sysconf("SC_CLK_TCK")
    assert got == Sample(at=100.0, busy=(100 + 200 + 10) / hz, own=5.0)  # cpu2 is not ours; steal is not free
    assert sample({7}, str(stat)) is None  # none of our cores listed
    assert sample({0}, str(tmp_path / "missing")) is None


def test_governor_gives_a_busy_core_back_and_takes_it_again(tmp_path):
    hz = os.sysconf("SC_CLK_TCK")
    stat = tmp_path / "stat"
    clocks = Clocks()
    busy = [0, 0]

    def write() -> None:
        stat.write_text(stat_text([(busy[0], 10_000, 0), (busy[1], 10_000, 0)]))

    write()
    torch.set_num_threads(2)
    governor = Governor(2, {0, 1}, str(stat), lambda: clocks.wall, lambda: clocks.own)
    assert governor.tick() == 2  # not yet measured long enough

    # 0.2 s with both cores busy, of which we used 0.2 s of CPU: another process held a core
    busy[0] += int(0.2 * hz)
    busy[1] += int(0.2 * hz)
    clocks.advance(0.2, own=0.2)
    write()
    assert governor.tick() == 1
    assert torch.get_num_threads() == 1
    assert governor.others == pytest.approx(1.0)

    # within the next second nothing is re-measured, whatever happens
    clocks.advance(0.5, own=0.5)
    assert governor.tick() == 1

    # the other process is gone: only our time shows, and the core is taken back
    busy[0] += int(1.5 * hz)
    clocks.advance(1.0, own=1.5)
    write()
    assert governor.tick() == 2
    assert torch.get_num_threads() == 2
    assert governor.changes == 2


def test_governor_without_proc_stat_keeps_the_count(tmp_path):
    governor = Governor(2, {0, 1}, str(tmp_path / "missing"))
    assert not governor.active
    assert governor.tick() == 2


def test_threads_option_fixes_the_count_and_zero_adapts():
    threads.govern(1)
    assert torch.get_num_threads() == 1
    assert threads._governor is None
    assert threads.tick() == 1
    threads.govern(0)  # back to torch's count from before vaelab changed it, then adapting
    assert torch.get_num_threads() == threads._default
    assert threads._governor is not None


def test_evaluation_after_training_keeps_the_training_count():
    threads.govern(1)
    threads.govern(None)
    assert torch.get_num_threads() == 1 and threads._governor is None
    threads._default = None
    threads.govern(None)  # nothing chose yet: adapt
    assert threads._governor is not None


@pytest.mark.parametrize(("name", "value"), [("OMP_NUM_THREADS", "1"), ("VAELAB_THREADS", "fixed")])
def test_a_count_fixed_in_the_environment_is_respected(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    torch.set_num_threads(2)
    threads.govern(0)
    assert threads._governor is None
    assert torch.get_num_threads() == 2
