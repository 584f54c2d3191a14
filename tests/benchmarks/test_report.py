"""The benchmark's measurement math and output (pure functions; no broker, no timing)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamrec.benchmarks.freshness import batch_phases, event_ids_of, worker_cpu
from streamrec.benchmarks.infra import CONSUMED
from streamrec.benchmarks.plots import plot_cores
from streamrec.benchmarks.report import (
    Sample,
    censored_percentiles,
    changes,
    cores_cell,
    lag_trend,
    live_rate,
    parse_prometheus,
    rate_from_samples,
    rate_from_start,
    ratio,
    render_markdown,
    summarize_stacks,
    write_results,
)
from streamrec.benchmarks.state import choose_mode


def samples(*pairs: tuple[float, float]) -> list[Sample]:
    return [Sample(t, v) for t, v in pairs]


def test_rate_excludes_start_up_and_stops_at_the_total() -> None:
    # 10 s of start-up at 0, then 100/s until 1,000, then idle samples that must not dilute the rate.
    series = samples((0, 0), (10, 0), (11, 100), (12, 200), (20, 1_000), (30, 1_000))
    rate = rate_from_samples(series, total=1_000)
    assert rate.per_s == pytest.approx(100.0)
    assert rate.reached_total and rate.events == 900 and rate.window_s == 9


def test_rate_from_start_keeps_the_first_batch_in_the_window() -> None:
    # Start-up until 10 s; records handled from 10-11 s on; lists cover 600 events at 16 s, all 1,000 at 20 s.
    started = samples((0, 0), (10, 0), (11, 50), (16, 600), (20, 1_000))
    covered = samples((0, 0), (10, 0), (11, 0), (16, 600), (20, 1_000), (25, 1_000))
    rate = rate_from_start(started, covered, total=1_000)
    assert rate.per_s == pytest.approx(100.0)  # 1,000 events over 10-20 s, not 400 over 16-20 s
    assert rate.reached_total and rate.window_s == 10
    assert rate_from_samples(covered, total=1_000).per_s == pytest.approx(100.0)  # (400 / 4 s): the first batch lost
    one_batch = samples((0, 0), (10, 0), (30, 1_000))  # everything in one step: the old window is empty
    assert rate_from_samples(one_batch, total=1_000).per_s is None
    assert rate_from_start(started, one_batch, total=1_000).per_s == pytest.approx(1_000 / 20)


def test_rate_from_start_needs_a_start_and_the_total() -> None:
    assert rate_from_start([], samples((0, 0), (1, 10)), total=10).per_s is None
    assert rate_from_start(samples((0, 0), (1, 0)), samples((0, 0), (1, 10)), total=10).per_s is None
    assert rate_from_start(samples((0, 0), (1, 5)), samples((0, 0), (1, 5)), total=10).per_s is None


def test_rate_without_total_uses_the_last_sample() -> None:
    rate = rate_from_samples(samples((0, 5), (1, 5), (2, 25), (4, 65)))
    assert rate.per_s == pytest.approx(20.0) and not rate.reached_total


@pytest.mark.parametrize("series", [[], samples((0, 0)), samples((0, 3), (1, 3), (2, 3)), samples((0, 0), (1, 10))])
def test_rate_needs_two_samples_with_progress(series: list[Sample]) -> None:
    assert rate_from_samples(series, total=100).per_s is None


def test_ratio() -> None:
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(None, 4.0) is None and ratio(1.0, None) is None and ratio(1.0, 0.0) is None


def test_percentiles_nearest_rank() -> None:
    latencies = [i / 100 for i in range(1, 101)]  # 0.01 .. 1.00
    assert censored_percentiles(latencies, 100) == {"p50": 0.5, "p95": 0.95, "p99": 0.99}
    assert censored_percentiles([0.2], 1) == {"p50": 0.2, "p95": 0.2, "p99": 0.2}


def test_missing_lists_count_as_infinitely_late() -> None:
    latencies = [0.1] * 97  # 3 of 100 lists never arrived
    result = censored_percentiles(latencies, 100)
    assert result["p50"] == 0.1 and result["p95"] == 0.1 and result["p99"] is None
    assert censored_percentiles([], 10) == {"p50": None, "p95": None, "p99": None}
    assert censored_percentiles([], 0)["p50"] is None
    with pytest.raises(ValueError):
        censored_percentiles([0.1, 0.2], 1)


def test_lag_sawtooth_of_commits_is_not_growth() -> None:
    # Committed offsets move every ~3 s: lag saw-tooths between 0 and 10k at 5k/s, but does not grow.
    series = samples(*((t, (t % 3) * 5_000.0) for t in range(60)))
    trend = lag_trend(series, offered_per_s=5_000)
    assert not trend.grew and abs(trend.slope_per_s) < 250 and trend.peak == 10_000


def test_a_stall_late_in_the_run_is_not_growth() -> None:
    # 21 events/s, lag near 0, commits stalled for 15 s near the end, then caught up (as measured once).
    values = [1.0] * 40 + [21.0 * k for k in range(1, 16)] + [4.0] * 5
    trend = lag_trend(samples(*enumerate(values)), offered_per_s=21)
    assert trend.slope_per_s > 0.05 * 21  # the slope alone would call this growth
    assert not trend.grew and trend.floor_start == 1 and trend.floor_end == 4


def test_lag_that_grows_with_the_backlog() -> None:
    series = samples(*((t, t * 3_000.0) for t in range(60)))  # 5k offered, 2k processed
    trend = lag_trend(series, offered_per_s=5_000)
    assert trend.grew and trend.slope_per_s == pytest.approx(3_000.0)
    assert trend.first == 0 and trend.last == 177_000
    assert not lag_trend([], 5_000).grew
    assert not lag_trend(samples((0, 5.0)), 5_000).grew


METRICS = """\
# HELP streamrec_events_consumed_total Input records consumed
# TYPE streamrec_events_consumed_total counter
streamrec_events_consumed_total{topic="ratings"} 120.0
streamrec_events_consumed_total{topic="plays"} 30.0
streamrec_events_consumed_created{topic="plays"} 1.7e+09
streamrec_catalog_items 1682.0
streamrec_ranking_seconds_bucket{le="+Inf"} 5.0
streamrec_events_rejected_total{reason="not \\"json\\"",topic="ratings"} 2.0
"""


def test_parse_prometheus() -> None:
    parsed = parse_prometheus(METRICS)
    assert parsed["streamrec_events_consumed_total"] == [({"topic": "ratings"}, 120.0), ({"topic": "plays"}, 30.0)]
    assert parsed["streamrec_catalog_items"] == [({}, 1682.0)]
    assert parsed["streamrec_ranking_seconds_bucket"] == [({"le": "+Inf"}, 5.0)]
    assert parsed["streamrec_events_rejected_total"][0][0] == {"reason": 'not "json"', "topic": "ratings"}


def test_metric_sum_filters_labels() -> None:
    from streamrec.benchmarks.infra import metric_sum

    parsed = parse_prometheus(METRICS)
    assert metric_sum(parsed, "streamrec_events_consumed_total") == 150.0
    assert metric_sum(parsed, "streamrec_events_consumed_total", topic="plays") == 30.0
    assert metric_sum(parsed, "streamrec_events_consumed_total", topic="searches") is None
    assert metric_sum(parsed, "nope") is None and metric_sum(None, "x") is None


def test_summarize_py_spy_stacks() -> None:
    collapsed = "\n".join(
        [
            "process 1:python;main (app.py:10);rank (rec.py:20);argsort (numpy.py:5) 6",
            "process 1:python;main (app.py:10);rank (rec.py:22) 2",
            "process 1:python;main (app.py:11);send (kafka.py:3) 2",
            "thread (idle);select (selectors.py:1) 50",
            "garbage line",
        ]
    )
    summary = summarize_stacks(collapsed, top=3)
    assert summary["samples"] == 10
    assert summary["self"][0] == {"frame": "argsort (numpy.py)", "share": 0.6}
    total = {row["frame"]: row["share"] for row in summary["total"]}
    assert total["main (app.py)"] == 1.0 and total["rank (rec.py)"] == 0.8
    assert summarize_stacks("")["samples"] == 0


def test_event_ids_of_reads_the_ids_without_parsing_the_list() -> None:
    payload = orjson.dumps(
        {
            "user_id": "u1",
            "generated_at": 1,
            "model_version": "m",
            "trigger_event_id": "bench-0-9",
            "event_ids": ["bench-0-7", "bench-0-8", "bench-0-9"],
            "items": [{"item_id": "i1", "rank": 1, "score": 0.5, "reasons": [{"kind": "genre", "text": "[x]"}]}],
        }
    )
    assert event_ids_of(payload) == ["bench-0-7", "bench-0-8", "bench-0-9"]
    assert event_ids_of(b'{"trigger_event_id":null,"event_ids":[],"items":[]}') == []
    assert event_ids_of(None) == [] and event_ids_of(b"") == []


def test_event_ids_of_an_id_with_a_bracket_and_of_an_older_list() -> None:
    assert event_ids_of(orjson.dumps({"event_ids": ["a]b", "c"], "items": []})) == ["a]b", "c"]
    assert event_ids_of(orjson.dumps({"trigger_event_id": "e-1", "items": []})) == ["e-1"]


def test_state_mode_choice() -> None:
    assert choose_mode("events", 100_000, 2, None, 900) == "events"
    assert choose_mode("auto", 100_000, 2, None, 900) == "changelog"
    assert choose_mode("auto", 100_000, 2, 1_000.0, 900) == "events"  # 200k events in 200 s
    assert choose_mode("auto", 100_000, 2, 100.0, 900) == "changelog"  # would take 2,000 s


def results() -> dict[str, Any]:
    return {
        "meta": {"started_at": "2026-01-01T00:00:00+00:00", "events": 200_000, "partitions": 4, "freshness_rate": 5000},
        "scenarios": [
            {
                "catalog": "ml-100k",
                "catalog_items": 1682,
                "catalog_source": "movielens",
                "raw": {"status": "ok", "events_per_s": 100_000.0},
                "raw_sgd": {"status": "ok", "events_per_s": 20_000.0},
                "faust_null": {"status": "ok", "events_per_s": 5_000.0},
                "batching_null": {"status": "ok", "events_per_s": 25_000.0},
                "pipeline": {
                    "status": "time-capped",
                    "events_per_s": 500.0,
                    "reason": "stopped after 120 s",
                    "events_per_list": 2.5,
                    "lists_published": 24_000.0,
                    "mean_batch_events": 6_000.0,
                    "cores": {"machine_cores": 2.0, "worker_cores": 0.97, "worker_main_thread_cores": 0.9},
                },
                "ratios": {
                    "pipeline_vs_raw": 0.005,
                    "pipeline_vs_raw_sgd": 0.025,
                    "pipeline_vs_faust_null": 0.1,
                    "pipeline_vs_batching_null": 0.02,
                },
                "freshness": {
                    "status": "ok",
                    "latency_s": {"p50": 0.05, "p95": 1.5, "p99": None},
                    "delivered_share": 0.98,
                    "lag_grew": True,
                },
                "freshness_sustainable": {
                    "status": "ok",
                    "latency_s": {"p50": 0.02, "p95": 0.04, "p99": 0.09},
                    "delivered_share": 1.0,
                    "offered_per_s": 250.0,
                    "lag_grew": False,
                },
                "state": {
                    "status": "ok",
                    "profile_bytes": {"median": 420.0, "p95": 1500.0},
                    "rocksdb_bytes_per_user": 900.0,
                    "rebuild": {"status": "ok", "seconds": 42.0, "users": 100_000},
                },
            },
            {
                "catalog": "synthetic-100k",
                "catalog_items": 100_000,
                "catalog_source": "synthetic",
                "raw": {"status": "ok", "events_per_s": 90_000.0},
                "pipeline": {"status": "skipped", "reason": "dense co-occurrence would need 64 GiB"},
                "freshness": {"status": "skipped", "reason": "dense co-occurrence would need 64 GiB"},
            },
        ],
        "ann": {
            "items": 100_000,
            "queries": 500,
            "rows": [
                {
                    "dim": 64,
                    "index": "usearch HNSW",
                    "params": "ef=64",
                    "recall": {"20": 0.97, "100": 0.91},
                    "us_per_query": 80.0,
                    "speedup": 25.0,
                    "build_s": 12.0,
                }
            ],
        },
    }


def test_markdown_summary() -> None:
    text = render_markdown(results())
    assert (
        "| streamrec worker, full pipeline (events covered by published lists/s) | 500 (time-capped) | skipped |"
        in text
    )
    assert (
        "| events per published list (one list per user per batch) | 2.5 (24,000 lists, batches of 6,000) | skipped |"
        in text
    )
    assert "| pipeline / Faust null agent | 0.1 | – |" in text
    assert (
        "| streamrec's batching consumer in Faust, null handler: the worker's ceiling (ev/s) | 25,000 | not run |"
        in text
    )
    assert "| pipeline / batching null handler | 0.02 | – |" in text
    assert (
        "| cores used meanwhile: worker (its event loop) / broker / bench / other | 0.97 (0.90) / – / – / – of 2 | – |"
        in text
    )
    assert "50 ms / 1.50 s / n/a (98.0% delivered; –/s achieved)" in text
    sustainable = "20 ms / 40 ms / 90 ms (100.0% delivered) at 250/s, lag steady | not run |"
    assert (
        f"| freshness p50 / p95 / p99 at 70% of the rate the worker covered live above (rate) | {sustainable}" in text
    )
    assert "| profile bytes/user (to_bytes, median / p95) | 420 / 1,500 | not run |" in text
    assert "| profiles table rebuild from its changelog | 42.00 s for 100,000 users | not run |" in text
    assert "- synthetic-100k pipeline: skipped — dense co-occurrence would need 64 GiB" in text
    assert "| 64 | usearch HNSW | ef=64 | 0.970 | 0.910 | 80 | 25.0× | 12.0 |" in text


def test_markdown_of_a_worker_timed_rate_and_a_worker_that_failed_to_stop() -> None:
    data = results()
    scenario = data["scenarios"][0]
    scenario["pipeline"] = {"status": "ok", "events_per_s": 2_400.0, "rate_basis": "worker"}
    scenario["freshness"] = {**scenario["freshness"], "status": "exit code 1"}
    scenario["freshness_sustainable"] = {"status": "exit code 1"}  # failed before measuring
    text = render_markdown(data)
    assert "| 2,400 (worker-timed: one batch) |" in text
    assert "50 ms / 1.50 s / n/a (98.0% delivered; –/s achieved; worker exit code 1 at stop) |" in text
    assert "| consumer lag grew during that run | True |" in text
    assert "| freshness p50 / p95 / p99 at 70% of the rate the worker covered live above (rate) | exit code 1 |" in text


def test_changes_keeps_the_steps_of_a_counter() -> None:
    samples = [Sample(10.0, 0), Sample(10.5, 0), Sample(11.0, 5), Sample(11.5, 5), Sample(12.0, 5)]
    assert changes(samples) == [[0.0, 0], [1.0, 5], [2.0, 5]]
    assert changes([]) == []


def test_markdown_of_an_empty_run() -> None:
    assert render_markdown({}).startswith("# streamrec benchmark")


def test_write_results(tmp_path: Path) -> None:
    json_path, md_path = write_results(results(), tmp_path / "bench")
    assert orjson.loads(json_path.read_bytes())["scenarios"][0]["catalog"] == "ml-100k"
    assert md_path.read_text().startswith("# streamrec benchmark")
    assert not math.isnan(orjson.loads(json_path.read_bytes())["ann"]["rows"][0]["speedup"])
    # the plots the results have data for, linked from the markdown
    assert (tmp_path / "bench" / "throughput.png").stat().st_size > 10_000
    assert (tmp_path / "bench" / "freshness.png").stat().st_size > 10_000
    assert "![throughput](throughput.png)" in md_path.read_text()


def _swept(rate: float, p99: float | None, *, lag_grew: bool = False) -> dict[str, Any]:
    return {
        "rate": rate,
        "duration_s": 20.0,
        "offered_per_s": rate * 0.99,
        "latency_s": {"p50": 0.01, "p95": 0.02, "p99": p99},
        "latency_quantiles_s": {f"p{q}": q / 1000 for q in range(1, 100)},
        "delivered_share": 1.0,
        "lag_grew": lag_grew,
        "events_per_list": 1.1,
        "worker_cpu_us_per_event": 312.4,
    }


def test_the_sweep_names_the_fastest_rate_that_meets_the_freshness_target() -> None:
    data = results()
    ml = data["scenarios"][0]
    # 2,000/s meets p99 but its lag grew; 4,000/s misses; a failed run has no latency
    ml["freshness_sweep"] = [
        _swept(4000, 0.5),
        _swept(250, 0.03),
        _swept(2000, 0.08, lag_grew=True),
        _swept(1000, 0.1),
        {"rate": 8000, "status": "exit code 1"},
    ]
    data["scenarios"][1]["freshness_sweep"] = [_swept(500, 0.2), _swept(250, None)]
    text = render_markdown(data)
    row = "| highest swept rate with freshness p99 <= 100 ms, lag steady |"
    assert f"{row} 1,000/s (p99 100 ms; swept 250, 1,000, 2,000, 4,000) | none of 250, 500/s |" in text
    assert "## Freshness by offered rate, ml-100k (20 s a rate)" in text
    assert "| 2,000 | 1,980 | 10 ms / 20 ms / 80 ms | 100.0% | grew | 1.10 | 312 µs | – |" in text
    assert "| 250 | 248 | 10 ms / 20 ms / n/a | 100.0% | steady | 1.10 | 312 µs | – |" in text
    assert render_markdown({**data, "scenarios": [results()["scenarios"][0]]}).count("Freshness by offered rate") == 0


def test_the_sweep_shows_where_a_batchs_time_goes_where_the_worker_reported_it() -> None:
    data = results()
    phased = {
        **_swept(1000, 0.05),
        "events_per_batch": 13.84,
        "batch_phase_ms": {"learn": 1.768, "item_log": 1.451, "publish": 3.525, "commit": None},
    }
    data["scenarios"][0]["freshness_sweep"] = [_swept(250, 0.03), phased]
    text = render_markdown(data)
    assert "| offered ev/s | events a batch | learn | item log | publish | commit |" in text
    assert "| 1,000 | 13.8 | 1.77 | 1.45 | 3.52 | – |" in text
    assert "| 250 | " not in text.split("events a batch")[1]  # a run without the metric gets no row
    data["scenarios"][0]["freshness_sweep"] = [_swept(250, 0.03)]
    assert "events a batch" not in render_markdown(data)


def test_the_sweep_shows_who_used_the_cores_and_plots_it(tmp_path: Path) -> None:
    data = results()
    run = _swept(3000, 1.5, lag_grew=True)
    run["cores"] = {
        "machine_cores": 2.0,
        "machine_busy_cores": 1.97,
        "worker_cores": 0.98,
        "worker_main_thread_cores": 0.86,
        "broker_cores": 0.81,
        "bench_cores": 0.16,
        "other_cores": 0.02,
    }
    external = _swept(1000, 0.05)
    external["cores"] = {**run["cores"], "broker_cores": None, "other_cores": None}  # a broker elsewhere
    data["scenarios"][0]["freshness_sweep"] = [external, run]
    text = render_markdown(data)
    row = "| 3,000 | 2,970 | 10 ms / 20 ms / 1.50 s | 100.0% | grew | 1.10 | 312 µs |"
    assert f"{row} 0.98 (0.86) / 0.81 / 0.16 / 0.02 of 2 |" in text
    assert "| 0.98 (0.86) / – / 0.16 / – of 2 |" in text
    assert cores_cell(None) == "–"
    assert plot_cores(data["scenarios"], tmp_path / "cores.png")
    assert (tmp_path / "cores.png").stat().st_size > 10_000
    assert not plot_cores([results()["scenarios"][1]], tmp_path / "none.png")  # no run with cores: no plot
    assert not (tmp_path / "none.png").exists()


def test_the_live_rate_is_what_was_covered_until_the_last_event_was() -> None:
    # 200 warm-up events, then 10,000 more covered by 4.0 s; the samples after that only repeat the count.
    samples = [[0.0, 200.0], [1.0, 2_000.0], [2.5, 6_000.0], [4.0, 10_200.0], [5.0, 10_200.0], [7.0, 10_200.0]]
    assert live_rate(samples) == pytest.approx(10_000 / 4.0)
    assert live_rate([[0.0, 200.0], [3.0, 200.0]]) is None  # nothing covered: no rate
    assert live_rate([[0.0, 200.0]]) is None
    assert live_rate([]) is None


def test_the_worker_s_cpu_per_event_is_the_cpu_time_between_two_readings_over_the_events_consumed() -> None:
    def reading(cpu: float, consumed: dict[str, float]) -> dict[str, list[tuple[dict[str, str], float]]]:
        return {
            "process_cpu_seconds_total": [({}, cpu)],
            CONSUMED: [({"topic": topic}, count) for topic, count in consumed.items()],
        }

    before = reading(10.0, {"ratings": 100.0, "plays": 50.0})
    after = reading(13.0, {"ratings": 10_100.0, "plays": 5_050.0, "searches": 0.0})
    assert worker_cpu(before, after) == {"worker_cpu_s": 3.0, "worker_cpu_us_per_event": pytest.approx(200.0)}
    assert worker_cpu(None, after)["worker_cpu_us_per_event"] is None  # no first reading: unknown, not zero
    assert worker_cpu(after, after)["worker_cpu_us_per_event"] is None  # no event in between


def test_a_batchs_phases_are_the_phase_times_between_two_readings_over_the_batches_handled() -> None:
    def reading(
        batches: float, seconds: dict[str, float], consumed: float
    ) -> dict[str, list[tuple[dict[str, str], float]]]:
        return {
            "streamrec_batch_phase_seconds_count": [({"phase": phase}, batches) for phase in seconds],
            "streamrec_batch_phase_seconds_sum": [({"phase": phase}, s) for phase, s in seconds.items()],
            CONSUMED: [({"topic": "plays"}, consumed)],
        }

    phases = {"learn": 1.0, "item_log": 2.0, "publish": 3.0, "commit": 4.0}
    before = reading(10.0, phases, 100.0)
    after = reading(110.0, {phase: s + 0.1 * n for n, (phase, s) in enumerate(phases.items(), 1)}, 1_500.0)
    found = batch_phases(before, after)
    assert (found["batches"], found["events_per_batch"]) == (100.0, 14.0)
    assert found["batch_phase_ms"] == pytest.approx({"learn": 1.0, "item_log": 2.0, "publish": 3.0, "commit": 4.0})
    assert batch_phases(None, after)["batch_phase_ms"] is None  # no first reading: unknown
    assert batch_phases(after, after)["batch_phase_ms"] is None  # no batch in between
