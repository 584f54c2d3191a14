"""Reading who used the cores: /proc parsing and the arithmetic (pure), and real readings of this machine."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from streamrec.benchmarks.cpu import CpuReading, cores_used, machine_busy_s, process_s, read_cpu

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_machine_busy_time_leaves_out_idle_and_iowait() -> None:
    stat = "cpu  100 5 50 1000 40 3 2 10 0 0\ncpu0 50 2 25 500 20 1 1 5 0 0\n"
    assert machine_busy_s(stat, 100) == pytest.approx((100 + 5 + 50 + 3 + 2 + 10) / 100)
    assert machine_busy_s("intr 1 2 3\n", 100) is None


def test_process_time_is_user_plus_system_even_with_a_name_holding_spaces_and_parens() -> None:
    fields = ["S"] + ["0"] * 10 + ["250", "50"] + ["0"] * 30  # state, then fields 4..13, utime, stime, ...
    assert process_s(f"42 (noida db (x)) {' '.join(fields)}", 100) == pytest.approx(3.0)


def test_cores_used_over_the_window_and_the_rest_of_the_machine() -> None:
    before = CpuReading(at_s=10.0, machine_busy_s=100.0, broker_s=20.0, bench_s=5.0, worker_s=4.0, worker_main_s=3.0)
    after = CpuReading(at_s=20.0, machine_busy_s=119.0, broker_s=28.0, bench_s=7.0, worker_s=12.0, worker_main_s=10.0)
    used = cores_used(before, after)
    assert used["worker_main_thread_cores"] == pytest.approx(0.7)
    assert used["machine_busy_cores"] == pytest.approx(1.9)
    assert used["worker_cores"] == pytest.approx(0.8)
    assert used["broker_cores"] == pytest.approx(0.8)
    assert used["bench_cores"] == pytest.approx(0.2)
    assert used["other_cores"] == pytest.approx(0.1)
    assert used["machine_cores"] == float(os.cpu_count() or 1)


def test_an_unknown_reading_is_unknown_not_zero() -> None:
    before = CpuReading(at_s=0.0, machine_busy_s=None, broker_s=None, bench_s=1.0)
    after = CpuReading(at_s=1.0, machine_busy_s=None, broker_s=None, bench_s=1.5)
    used = cores_used(before, after)
    assert used["worker_cores"] is None and used["broker_cores"] is None and used["other_cores"] is None
    assert used["worker_main_thread_cores"] is None
    assert used["bench_cores"] == pytest.approx(0.5)
    assert cores_used(after, after) == {}  # no time between the readings


@linux_only
def test_real_readings_move_when_this_process_burns_cpu() -> None:
    me = os.getpid()  # this process stands in for the broker and the worker
    idle = threading.Thread(target=time.sleep, args=(1.0,))  # a thread that uses no CPU
    idle.start()
    before = read_cpu(me, me)
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burnt on the main thread
        pass
    after = read_cpu(me, me)
    idle.join()
    used = cores_used(before, after)
    assert used["worker_cores"] is not None and used["worker_cores"] >= 0.25 / (after.at_s - before.at_s)
    assert after.bench_s - before.bench_s >= 0.3
    assert before.broker_s is not None and after.broker_s is not None
    assert after.broker_s - before.broker_s >= 0.25  # /proc counts in clock ticks
    assert before.worker_main_s is not None and after.worker_main_s is not None
    assert after.worker_main_s - before.worker_main_s >= 0.25  # the main thread's own time
    assert used["machine_busy_cores"] is not None and used["machine_busy_cores"] > 0.5
    assert read_cpu(2**22 + 12_345).broker_s is None  # no such process: unknown
