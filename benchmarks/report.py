"""The measurement math and the output: rates from sampled counters, censored latency percentiles, lag trend,
ratios, Prometheus text parsing, py-spy stack summaries, and the JSON + markdown results.

Everything here is pure (no I/O except `write_results`), so it is unit-tested (tests/benchmarks/test_report.py).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streamrec.benchmarks.plots import write_plots
from streamrec.benchmarks.results import (
    BATCH_PHASES,
    CORE_USERS,
    FRESHNESS_TARGET_S,
    meets_freshness_target,
    sweep_points,
)

PERCENTILES = (50, 95, 99)


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # monotonic seconds
    value: float


# -- rates -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    per_s: float | None  # None when there were fewer than two samples with progress
    events: float  # counted within the window
    window_s: float
    reached_total: bool


def rate_from_samples(samples: Sequence[Sample], total: float | None = None) -> Rate:
    """Throughput of a monotonic counter sampled over time, measured from the outside.

    The window starts at the first sample showing progress over the first sample (start-up, group join and
    catalog loading are excluded) and ends at the first sample at or above `total` (else the last sample).
    """
    if len(samples) < 2:
        return Rate(None, 0.0, 0.0, False)
    baseline = samples[0].value
    start = next((i for i, sample in enumerate(samples) if sample.value > baseline), None)
    if start is None:
        return Rate(None, 0.0, 0.0, False)
    end = len(samples) - 1
    reached = False
    if total is not None:
        done = next((i for i in range(start, len(samples)) if samples[i].value >= total), None)
        if done is not None:
            end, reached = done, True
    events = samples[end].value - samples[start].value
    window = samples[end].t - samples[start].t
    if end <= start or window <= 0:
        return Rate(None, events, window, reached)
    return Rate(events / window, events, window, reached)


def rate_from_start(started: Sequence[Sample], covered: Sequence[Sample], total: float) -> Rate:
    """Throughput of a stage whose output counter (`covered`) moves in large steps (one per batch): `total` over
    the time from the last `started` sample before processing began (the input counter still at its first value)
    to the first `covered` sample at or above `total`. Unlike `rate_from_samples` it keeps the first step (a
    whole batch) in the window, and counts at most one sampling interval more than the processing took."""
    if not started or not covered:
        return Rate(None, 0.0, 0.0, False)
    baseline = started[0].value
    first = next((i for i, sample in enumerate(started) if sample.value > baseline), None)
    done = next((sample for sample in covered if sample.value >= total), None)
    if first is None or done is None:
        return Rate(None, 0.0, 0.0, False)
    begin = started[max(first - 1, 0)].t
    window = done.t - begin
    events = done.value - covered[0].value
    if window <= 0:
        return Rate(None, events, window, True)
    return Rate(events / window, events, window, True)


def live_rate(covered_samples: Sequence[Sequence[float]]) -> float | None:
    """Events a worker covered per second on a live stream: from a freshness run's `covered_samples` ([[seconds,
    events covered]], from the start of sending), the events covered after the first sample over the time until
    the count reached its final value (None when it never moved). When the worker fell behind, this is what it
    sustains on a live stream (small batches, about one list per event), unlike its rate on a backlog."""
    if len(covered_samples) < 2:
        return None
    start_t, start = covered_samples[0]
    final = covered_samples[-1][1]
    end_t = next(t for t, value in covered_samples if value >= final)
    if final <= start or end_t <= start_t:
        return None
    return (final - start) / (end_t - start_t)


def changes(samples: Sequence[Sample]) -> list[list[float]]:
    """[[seconds since the first sample, value]] for the first and last samples and every change, for the JSON
    (a counter that moves once per batch shows the batches' cadence)."""
    if not samples:
        return []
    t0 = samples[0].t
    last = len(samples) - 1
    kept = [s for i, s in enumerate(samples) if i in (0, last) or s.value != samples[i - 1].value]
    return [[round(s.t - t0, 2), s.value] for s in kept]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


# -- latency ---------------------------------------------------------------------------------------------------


def censored_percentiles(
    latencies_s: Iterable[float], n_offered: int, percentiles: Sequence[int] = PERCENTILES
) -> dict[str, float | None]:
    """Nearest-rank percentiles over all `n_offered` events, where an event without a measured latency (its
    list never arrived) counts as infinitely late: a percentile that falls among those is None, not a
    flattering number computed from the lists that did arrive."""
    values = sorted(latencies_s)
    if len(values) > n_offered:
        raise ValueError(f"{len(values)} latencies for {n_offered} offered events")
    out: dict[str, float | None] = {}
    for p in percentiles:
        if n_offered == 0:
            out[f"p{p}"] = None
            continue
        rank = max(math.ceil(p / 100 * n_offered), 1)  # 1-based nearest rank
        out[f"p{p}"] = values[rank - 1] if rank <= len(values) else None
    return out


# -- consumer lag ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LagTrend:
    slope_per_s: float  # least-squares growth of the lag, events per second (reported, not the verdict)
    first: float
    last: float
    peak: float
    floor_start: float  # lowest lag in the first quarter of the run
    floor_end: float  # lowest lag in the trailing window
    grew: bool


def lag_trend(
    samples: Sequence[Sample], offered_per_s: float, threshold_share: float = 0.05, trailing_s: float = 5.0
) -> LagTrend:
    """Did the consumer fall behind? Lag sampled from committed offsets saw-tooths with the commit interval
    (2.8 s in Faust) and spikes while commits stall, so the verdict compares floors: the lowest lag in the
    last `trailing_s` (at least three samples, so it spans a commit) against the lowest in the first quarter.
    A worker that keeps up returns to a low lag after every commit; one that falls behind does not. It grew
    if the floor rose by more than `threshold_share` of everything offered over the run."""
    if not samples:
        return LagTrend(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)
    values = [s.value for s in samples]
    t0 = samples[0].t
    ts = [s.t - t0 for s in samples]
    slope = 0.0
    if len(samples) >= 2:
        mean_t = sum(ts) / len(ts)
        mean_v = sum(values) / len(values)
        var_t = sum((t - mean_t) ** 2 for t in ts)
        if var_t > 0:
            slope = sum((t - mean_t) * (v - mean_v) for t, v in zip(ts, values, strict=True)) / var_t
    floor_start = min(values[: max(len(values) // 4, 1)])
    trailing = [v for t, v in zip(ts, values, strict=True) if t >= ts[-1] - trailing_s]
    floor_end = min(trailing if len(trailing) >= 3 else values[-3:])
    span = ts[-1]
    grew = span > 0 and floor_end - floor_start > threshold_share * offered_per_s * span
    return LagTrend(slope, values[0], values[-1], max(values), floor_start, floor_end, grew)


# -- Prometheus text format ------------------------------------------------------------------------------------

_SERIES = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text format 0.0.4 -> {series name: [(labels, value)]} (comments skipped)."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SERIES.match(line)
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = {
            m["key"]: m["value"].replace('\\"', '"').replace("\\\\", "\\")
            for m in _LABEL.finditer(match["labels"] or "")
        }
        out.setdefault(match["name"], []).append((labels, value))
    return out


# -- py-spy ----------------------------------------------------------------------------------------------------

_LINE_NO = re.compile(r":\d+\)$")


def summarize_stacks(collapsed: str, top: int = 15) -> dict[str, Any]:
    """Top functions by own ("self", leaf frame) and total (anywhere in the stack) share of samples, from
    py-spy's raw collapsed-stack output ("frame;frame;... count" per line). Idle threads are left out."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE_NO.sub(")", frame.strip()) for frame in stack.split(";")]
        if frames and ("(idle)" in frames[0]):
            continue
        frames = frames[1:] if frames and frames[0].startswith(("process ", "thread ")) else frames
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count

    def shares(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"frame": frame, "share": round(n / samples, 4)} for frame, n in counter.most_common(top)]

    return {"samples": samples, "self": shares(own) if samples else [], "total": shares(total) if samples else []}


# -- output ----------------------------------------------------------------------------------------------------


def _fmt_rate(value: Any) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _fmt_ratio(value: Any) -> str:
    return "–" if value is None else f"{value:.3g}"


def _fmt_seconds(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _get(data: Mapping[str, Any], *path: str) -> Any:
    node: Any = data
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _phase_cell(scenario: Mapping[str, Any], phase: str, key: str, fmt: Any) -> str:
    part = scenario.get(phase)
    if not isinstance(part, Mapping):
        return "not run"
    status = part.get("status")
    if status == "time-capped" and part.get(key) is not None:
        return f"{fmt(part.get(key))} (time-capped)"
    if status not in (None, "ok"):
        return f"{status}"
    return str(fmt(part.get(key)))


def _pipeline_cell(scenario: Mapping[str, Any]) -> str:
    cell = _phase_cell(scenario, "pipeline", "events_per_s", _fmt_rate)
    if _get(scenario, "pipeline", "rate_basis") == "worker" and _get(scenario, "pipeline", "events_per_s"):
        cell += " (worker-timed: one batch)"
    return cell


def _latency_cells(latency: Mapping[str, Any]) -> str:
    """ "p50 / p95 / p99" of a run's `latency_s`."""
    return " / ".join(_fmt_seconds(latency.get(f"p{p}")) for p in PERCENTILES)


def _freshness_cell(scenario: Mapping[str, Any], phase: str = "freshness") -> str:
    part = scenario.get(phase)
    if not isinstance(part, Mapping):
        return "not run"
    status = part.get("status")
    exited = isinstance(status, str) and status.startswith("exit code") and "latency_s" in part
    if status not in (None, "ok") and not exited:
        return str(status)
    latency = part.get("latency_s") or {}
    cells = _latency_cells(latency)
    delivered = f"{part.get('delivered_share', 0) * 100:.1f}% delivered"
    if phase == "freshness":
        delivered += f"; {_fmt_rate(part.get('offered_per_s'))}/s achieved"
    if exited:  # measured, but the worker did not stop cleanly afterwards
        delivered += f"; worker {status} at stop"
    return f"{cells} ({delivered})"


def render_markdown(results: Mapping[str, Any], plots: Sequence[str] = ()) -> str:
    """The short human summary of one run: a table per section, with the command and caveats."""
    meta = results.get("meta", {})
    scenarios: list[Mapping[str, Any]] = list(results.get("scenarios", []))
    lines = [
        "# streamrec benchmark",
        "",
        f"Run {meta.get('started_at', '?')} — `{meta.get('command', 'streamrec bench')}` — "
        f"{_fmt_rate(meta.get('events'))} events over {meta.get('partitions', '?')} partitions, "
        f"broker: {meta.get('broker', '?')}, {meta.get('cpu_count', '?')} cores "
        f"(load average {meta.get('loadavg_start', '?')} at start). Rates in events/s are from this run on a "
        "shared machine; compare the ratios, which were measured side by side.",
        "",
    ]
    if scenarios:
        header = "| measurement | " + " | ".join(
            f"{s.get('catalog')} ({s.get('catalog_items', 0):,} items, {s.get('catalog_source')})" for s in scenarios
        )
        lines += [header + " |", "|---" * (len(scenarios) + 1) + "|"]
        rows: list[tuple[str, Any]] = [
            ("raw aiokafka getmany + orjson.loads (ev/s)", lambda s: _phase_cell(s, "raw", "events_per_s", _fmt_rate)),
            (
                "raw + numpy SGD of a 64-d user vector (ev/s)",
                lambda s: _phase_cell(s, "raw_sgd", "events_per_s", _fmt_rate),
            ),
            (
                "Faust null agent, worker subprocess (ev/s)",
                lambda s: _phase_cell(s, "faust_null", "events_per_s", _fmt_rate),
            ),
            (
                "streamrec's batching consumer in Faust, null handler: the worker's ceiling (ev/s)",
                lambda s: _phase_cell(s, "batching_null", "events_per_s", _fmt_rate),
            ),
            ("streamrec worker, full pipeline (events covered by published lists/s)", _pipeline_cell),
            ("events per published list (one list per user per batch)", _events_per_list_cell),
            (
                "cores used meanwhile: worker (its event loop) / broker / bench / other",
                lambda s: cores_cell(_get(s, "pipeline", "cores")),
            ),
            ("pipeline / raw", lambda s: _fmt_ratio(_get(s, "ratios", "pipeline_vs_raw"))),
            ("pipeline / raw + SGD", lambda s: _fmt_ratio(_get(s, "ratios", "pipeline_vs_raw_sgd"))),
            ("pipeline / Faust null agent", lambda s: _fmt_ratio(_get(s, "ratios", "pipeline_vs_faust_null"))),
            ("Faust null agent / raw", lambda s: _fmt_ratio(_get(s, "ratios", "faust_null_vs_raw"))),
            (
                "pipeline / batching null handler",
                lambda s: _fmt_ratio(_get(s, "ratios", "pipeline_vs_batching_null")),
            ),
            ("batching null handler / raw", lambda s: _fmt_ratio(_get(s, "ratios", "batching_null_vs_raw"))),
            (
                f"freshness p50 / p95 / p99 at {_fmt_rate(meta.get('freshness_rate'))} ev/s offered",
                _freshness_cell,
            ),
            ("consumer lag grew during that run", _lag_cell),
            (
                "cores used during that run: worker (its event loop) / broker / bench (load generator) / other",
                lambda s: cores_cell(_get(s, "freshness", "cores")),
            ),
            (
                "freshness p50 / p95 / p99 at 70% of the rate the worker covered live above (rate)",
                lambda s: _sustainable_cell(s),
            ),
            (
                f"highest swept rate with freshness p99 <= {FRESHNESS_TARGET_S * 1000:.0f} ms, lag steady",
                _sweep_cell,
            ),
            ("profile bytes/user (to_bytes, median / p95)", _profile_cell),
            ("worker RocksDB bytes/user", lambda s: _phase_cell(s, "state", "rocksdb_bytes_per_user", _fmt_rate)),
            ("profiles table rebuild from its changelog", _rebuild_cell),
        ]
        for label, cell in rows:
            lines.append(f"| {label} | " + " | ".join(cell(s) for s in scenarios) + " |")
        lines.append("")
        for s in scenarios:
            for phase in ("pipeline", "freshness", "freshness_sustainable", "state"):
                part = s.get(phase)
                if isinstance(part, Mapping) and part.get("reason"):
                    lines.append(f"- {s.get('catalog')} {phase}: {part.get('status')} — {part.get('reason')}")
        lines.append("")
    for s in scenarios:
        lines += _sweep_lines(s)
    for s in scenarios:
        lines += _live_lines(s.get("live"))
    ann = results.get("ann")
    if isinstance(ann, Mapping) and ann.get("rows"):
        lines += [
            f"## ANN top-N over {ann.get('items', 0):,} items ({ann.get('queries')} queries, one thread)",
            "",
            "| dim | index | params | recall@20 | recall@100 | µs/query | speed vs exact | build s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in ann["rows"]:
            lines.append(
                f"| {row['dim']} | {row['index']} | {row['params']} | {row['recall'].get('20', 0):.3f} | "
                f"{row['recall'].get('100', 0):.3f} | {row['us_per_query']:.0f} | {row['speedup']:.1f}× | "
                f"{row['build_s']:.1f} |"
            )
        lines.append("")
    elif isinstance(ann, Mapping) and ann.get("status"):
        lines += [f"ANN: {ann.get('status')} — {ann.get('reason', '')}", ""]
    lines += _candidate_lines(results.get("candidate_ranking"))
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(name).stem.replace('_', ' ')}]({name})" for name in plots] + [""]
    return "\n".join(lines)


def _live_lines(part: Any) -> list[str]:
    if not isinstance(part, Mapping):
        return []
    if part.get("status") != "ok":
        return [f"Live costs: {part.get('status')} — {part.get('reason', '')}", ""]
    fast, slow = part["json"], part["objects"]
    lines = [
        f"## A live stream's cost per event in-process, {part['catalog']} ({part['items']:,} items)",
        "",
        f"{part['events']:,} events of {part['users']:,} viewers in batches of {part['batch']} "
        f"({fast['events_per_list']:.2f} events per list), one thread; the worker's consumer, table and producer "
        "costs come on top. Lists published as JSON built from the ranker's compact lists (what the worker does) "
        f"or from `Recommendation` objects; payloads identical: {part['identical_payloads']}; every list's hash "
        f"{part.get('lists_sha256', 'not taken')}.",
        "",
        "| µs per event | published from compact lists | from objects |",
        "|---|---|---|",
    ]
    for step in ("parse", "learn", "rank", "publish"):
        lines.append(f"| {step} | {fast['us_per_event'][step]:,.1f} | {slow['us_per_event'][step]:,.1f} |")
    lines += [
        f"| **total** | **{fast['us_per_event_total']:,.1f}** | **{slow['us_per_event_total']:,.1f}** |",
        f"| events/s (one thread) | {1e6 / fast['us_per_event_total']:,.0f} | "
        f"{1e6 / slow['us_per_event_total']:,.0f} |",
        "",
    ]
    return lines


def _candidate_lines(part: Any) -> list[str]:
    if not isinstance(part, Mapping):
        return []
    if part.get("status") != "ok":
        return [f"Candidate ranking: {part.get('status')} — {part.get('reason', '')}", ""]
    knobs = ", ".join(f"{k}={v}" for k, v in part.get("params", {}).items())
    return [
        f"## Lists at {part['items']:,} items: candidate ranking vs scoring every item",
        "",
        f"{part['lists']} users' top-{part['top_n']} lists after {part['events']:,} events ({knobs}), one thread:",
        "",
        "| recall@N (mean / p10) | identical lists | µs/list candidates | µs/list every item | speed-up |",
        "|---|---|---|---|---|",
        f"| {part['recall_at_n']:.3f} / {part['recall_p10']:.2f} | {part['identical_lists']} of {part['lists']} | "
        f"{part['us_per_list']:,.0f} | {part['exhaustive_us_per_list']:,.0f} | {part['speedup']:.1f}× |",
        "",
    ]


def _lag_cell(scenario: Mapping[str, Any]) -> str:
    part = scenario.get("freshness")
    if isinstance(part, Mapping) and "lag_grew" in part:
        return str(part["lag_grew"])
    return _phase_cell(scenario, "freshness", "lag_grew", str)


def _sustainable_cell(scenario: Mapping[str, Any]) -> str:
    part = scenario.get("freshness_sustainable")
    if not isinstance(part, Mapping):
        return "not run"
    cell = _freshness_cell(scenario, "freshness_sustainable")
    if "latency_s" not in part:
        return cell
    grew = "lag grew" if part.get("lag_grew") else "lag steady"
    return f"{cell} at {_fmt_rate(part.get('offered_per_s'))}/s, {grew}"


def _sweep_cell(scenario: Mapping[str, Any]) -> str:
    points = sweep_points(scenario)
    if not points:
        return "not run"
    met = [r for r in points if meets_freshness_target(r)]
    if not met:
        return f"none of {', '.join(_fmt_rate(r['rate']) for r in points)}/s"
    best = max(met, key=lambda r: float(r["rate"]))
    p99 = _fmt_seconds((best.get("latency_s") or {}).get("p99"))
    return f"{_fmt_rate(best['rate'])}/s (p99 {p99}; swept {', '.join(_fmt_rate(r['rate']) for r in points)})"


def _sweep_lines(scenario: Mapping[str, Any]) -> list[str]:
    points = sweep_points(scenario)
    if not points:
        return []
    seconds = points[0].get("duration_s")
    lines = [
        f"## Freshness by offered rate, {scenario.get('catalog')} ({_fmt_rate(seconds)} s a rate)",
        "",
        "| offered ev/s | achieved ev/s | p50 / p95 / p99 | delivered | lag | events per list | worker CPU per event "
        "| cores used: worker (its event loop) / broker / bench / other |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in points:
        latency = r.get("latency_s") or {}
        cells = _latency_cells(latency)
        per_list = r.get("events_per_list")
        cpu = r.get("worker_cpu_us_per_event")
        lines.append(
            f"| {_fmt_rate(r['rate'])} | {_fmt_rate(r.get('offered_per_s'))} | {cells} | "
            f"{r.get('delivered_share', 0) * 100:.1f}% | {'grew' if r.get('lag_grew') else 'steady'} | "
            f"{'–' if per_list is None else f'{per_list:.2f}'} | {'–' if cpu is None else f'{cpu:,.0f} µs'} | "
            f"{cores_cell(r.get('cores'))} |"
        )
    lines.append("")
    return lines + _batch_phase_lines(points)


def _batch_phase_lines(points: list[Mapping[str, Any]]) -> list[str]:
    """Where a live batch's wall time goes at each rate (the worker's `streamrec_batch_phase_seconds`)."""
    measured = [r for r in points if isinstance(r.get("batch_phase_ms"), Mapping)]
    if not measured:
        return []
    lines = [
        "A batch's wall time by phase (ms; the worker's `streamrec_batch_phase_seconds` over the run):",
        "",
        "| offered ev/s | events a batch | learn | item log | publish | commit |",
        "|---|---|---|---|---|---|",
    ]
    for r in measured:
        phases = r["batch_phase_ms"]
        cells = ["–" if phases.get(phase) is None else f"{phases[phase]:.2f}" for phase in BATCH_PHASES]
        per_batch = r.get("events_per_batch")
        lines.append(
            f"| {_fmt_rate(r['rate'])} | {'–' if per_batch is None else f'{per_batch:.1f}'} | {' | '.join(cells)} |"
        )
    lines.append("")
    return lines


def cores_cell(cores: Any) -> str:
    """`0.98 (0.86) / 0.31 / 0.25 / 0.02 of 2`: mean cores each used during a freshness run, the worker's event-loop
    thread in parentheses (– where unknown)."""
    if not isinstance(cores, Mapping) or not cores:
        return "–"
    values = [cores.get(f"{who}_cores") for who in CORE_USERS]
    cells = ["–" if value is None else f"{value:.2f}" for value in values]
    main = cores.get("worker_main_thread_cores")
    if main is not None:
        cells[0] += f" ({main:.2f})"
    return f"{' / '.join(cells)} of {cores.get('machine_cores', 0):.0f}"


def _events_per_list_cell(scenario: Mapping[str, Any]) -> str:
    part = scenario.get("pipeline")
    if not isinstance(part, Mapping):
        return "not run"
    value = part.get("events_per_list")
    if value is None:
        return "–" if part.get("status") in (None, "ok", "time-capped") else str(part.get("status"))
    lists, batch = _fmt_rate(part.get("lists_published")), _fmt_rate(part.get("mean_batch_events"))
    return f"{value:.3g} ({lists} lists, batches of {batch})"


def _profile_cell(scenario: Mapping[str, Any]) -> str:
    sizes = _get(scenario, "state", "profile_bytes")
    if not isinstance(sizes, Mapping):
        return "not run"
    return f"{_fmt_rate(sizes.get('median'))} / {_fmt_rate(sizes.get('p95'))}"


def _rebuild_cell(scenario: Mapping[str, Any]) -> str:
    part = scenario.get("state")
    if not isinstance(part, Mapping):
        return "not run"
    rebuild = part.get("rebuild")
    if not isinstance(rebuild, Mapping):
        return str(part.get("worker_status", "not run"))
    if rebuild.get("status") not in (None, "ok"):
        return str(rebuild.get("status"))
    return f"{_fmt_seconds(rebuild.get('seconds'))} for {rebuild.get('users', 0):,} users"


def write_results(results: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """results.json, results.md and the plots (`benchmarks.plots`) under `out_dir` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    md_path = out_dir / "results.md"
    json_path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    plots = write_plots(results, out_dir)
    md_path.write_text(render_markdown(results, [path.name for path in plots]) + "\n")
    return json_path, md_path
