"""What the report and the plots both read from a run's results: the targets the worker is held to, the
processes whose cores are counted, the phases a batch's time is split into, and the sweep's measured runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamrec.streams.worker.observability import BATCH_PHASES as BATCH_PHASES  # the worker's, reported here

FRESHNESS_TARGET_S = 0.1  # the freshness target: p99 <= 100 ms with no growth of lag
THROUGHPUT_TARGETS = {"ml-100k": 50_000.0, "synthetic-100k": 10_000.0}  # the pipeline's target, events/s per worker
CORE_USERS = ("worker", "broker", "bench", "other")  # who used the cores during a freshness run, in plotting order


def sweep_points(scenario: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The sweep's measured runs (a latency and an achieved rate), by offered rate."""
    runs = scenario.get("freshness_sweep") or []
    done = [r for r in runs if isinstance(r, Mapping) and "latency_s" in r and r.get("offered_per_s")]
    return sorted(done, key=lambda r: float(r["rate"]))


def meets_freshness_target(run: Mapping[str, Any]) -> bool:
    p99 = (run.get("latency_s") or {}).get("p99")
    return p99 is not None and p99 <= FRESHNESS_TARGET_S and not run.get("lag_grew")
