"""The worker's metrics registry."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from streamrec.streams.worker.observability import Metrics


def _cpu_seconds(metrics: Metrics) -> float:
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    return families["process_cpu_seconds"].samples[0].value


def test_metrics_show_the_process_cpu_time_and_two_registries_coexist() -> None:
    first, second = Metrics(), Metrics()  # several apps in one process: no duplicated timeseries
    before = _cpu_seconds(first)
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # burn CPU: the counter must move
        pass
    assert _cpu_seconds(second) >= before + 0.2
    assert b"process_resident_memory_bytes" in first.render()
