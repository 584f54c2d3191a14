"""The exactly_once measurement's bookkeeping (pure functions; no broker, no timing)."""

from __future__ import annotations

from typing import Any

import pytest

from streamrec.benchmarks.transactions import MODES, as_records, drain_rate, run_order, summarize
from streamrec.models.events import Play, Rating


def test_the_modes_alternate_and_each_round_starts_with_the_other() -> None:
    assert run_order(3) == [MODES[0], MODES[1], MODES[1], MODES[0], MODES[0], MODES[1]]


def test_events_go_to_their_topic_keyed_by_user() -> None:
    records = as_records([Play("p1", "u1", "i1", 600.0, 1_000), Rating("r1", "u2", "i1", 4.0, 2_000)])
    assert [(r.topic, r.key, r.event_id) for r in records] == [("plays", "u1", "p1"), ("ratings", "u2", "r1")]


def run(mode: str, per_s: float, window_s: float, commit_s: float | None, status: str = "ok") -> dict[str, Any]:
    events = per_s * window_s
    return {
        "mode": mode,
        "status": status,
        "events_per_s": per_s,
        "window_events": events,
        "window_s": window_s,
        "committed_after_last_list_s": commit_s,
    }


def test_the_drain_rate_counts_the_time_until_the_offsets_are_committed() -> None:
    assert drain_rate(run(MODES[0], 1_000.0, 10.0, 2.5)) == pytest.approx(10_000 / 12.5)
    assert drain_rate(run(MODES[0], 1_000.0, 10.0, None)) is None  # never committed within the wait


def test_the_summary_takes_medians_per_mode_and_leaves_failed_runs_out() -> None:
    runs = [
        run(MODES[0], 1_000.0, 10.0, 2.0),
        run(MODES[1], 800.0, 10.0, 2.0),
        run(MODES[1], 600.0, 10.0, 2.0),
        run(MODES[0], 1_200.0, 10.0, 2.0),
        run(MODES[0], 5.0, 10.0, 2.0, status="failed"),
        run("warm-up", 1.0, 10.0, 2.0),
    ]
    summary = summarize(runs)
    assert summary[MODES[0]]["runs"] == 2
    assert summary[MODES[0]]["median_events_per_s"] == pytest.approx(1_100.0)
    assert summary[MODES[1]]["median_events_per_s"] == pytest.approx(700.0)
    assert summary["ratio_events_per_s"] == pytest.approx(700.0 / 1_100.0)
