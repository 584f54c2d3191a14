"""Who used the machine's cores during a freshness run: the worker (its event-loop thread on its own: with the
GIL its Python runs on about one core), the embedded broker, the bench itself and the rest. It tells a saturated
worker from a saturated machine. Readings come from Linux's /proc; elsewhere they are unknown (None), never zero.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class CpuReading:
    at_s: float  # time.monotonic()
    machine_busy_s: float | None  # every CPU's non-idle time since boot
    broker_s: float | None  # the embedded broker's user + system time
    bench_s: float  # this process's (all its threads)
    worker_s: float | None = None  # the worker process (all its threads)
    worker_main_s: float | None = None  # the worker's event-loop thread alone (its consumer thread runs apart)


def _ticks_per_s() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


def machine_busy_s(stat_text: str, ticks_per_s: int) -> float | None:
    """Non-idle CPU seconds of all CPUs from /proc/stat's first line (idle and iowait are not busy)."""
    first = stat_text.split("\n", 1)[0].split()
    if not first or first[0] != "cpu":
        return None
    values = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(values) - values[3] - values[4]) / ticks_per_s


def process_s(stat_text: str, ticks_per_s: int) -> float:
    """A process's user + system CPU seconds (all threads) from its /proc/<pid>/stat."""
    fields = stat_text.rsplit(")", 1)[1].split()  # after "pid (comm)": the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / ticks_per_s  # utime, stime: fields 14 and 15 of the line


def _read_process_s(path: Path, ticks: int) -> float | None:
    try:
        return process_s(path.read_text(), ticks)
    except (OSError, IndexError, ValueError):
        return None


def read_cpu(broker_pid: int | None, worker_pid: int | None = None) -> CpuReading:
    ticks = _ticks_per_s()
    try:
        machine = machine_busy_s((_PROC / "stat").read_text(), ticks)
    except OSError:
        machine = None
    broker = None if broker_pid is None else _read_process_s(_PROC / str(broker_pid) / "stat", ticks)
    worker = main = None
    if worker_pid is not None:
        worker = _read_process_s(_PROC / str(worker_pid) / "stat", ticks)
        # A process's main thread has the process's id as its thread id.
        main = _read_process_s(_PROC / str(worker_pid) / "task" / str(worker_pid) / "stat", ticks)
    return CpuReading(time.monotonic(), machine, broker, time.process_time(), worker, main)


def cores_used(before: CpuReading, after: CpuReading) -> dict[str, float | None]:
    """Mean cores each used between two readings; `other` is the machine's busy time nobody above accounts for."""
    wall = after.at_s - before.at_s
    if wall <= 0:
        return {}

    def cores(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else max(b - a, 0.0) / wall

    used: dict[str, float | None] = {
        "machine_cores": float(os.cpu_count() or 1),
        "machine_busy_cores": cores(before.machine_busy_s, after.machine_busy_s),
        "worker_cores": cores(before.worker_s, after.worker_s),
        "worker_main_thread_cores": cores(before.worker_main_s, after.worker_main_s),
        "broker_cores": cores(before.broker_s, after.broker_s),
        "bench_cores": cores(before.bench_s, after.bench_s),
    }
    parts = [p for p in (used["worker_cores"], used["broker_cores"], used["bench_cores"]) if p is not None]
    busy = used["machine_busy_cores"]
    used["other_cores"] = None if busy is None or len(parts) < 3 else max(busy - sum(parts), 0.0)
    return used
