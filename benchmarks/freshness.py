"""Freshness at a fixed offered load: event produced -> its recommendation list seen on `recommendations`, end
to end as a client sees it, with the consumer lag's trend and the cores each process used meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from streamrec.benchmarks import infra
from streamrec.benchmarks.cpu import cores_used, read_cpu
from streamrec.benchmarks.report import Sample, censored_percentiles, changes, lag_trend
from streamrec.benchmarks.results import BATCH_PHASES
from streamrec.benchmarks.throughput import worker_breakdown
from streamrec.benchmarks.workloads import CatalogSpec, EventGenerator, EventRecord
from streamrec.streams.kafka import JsonProducer, tail
from streamrec.streams.kafka.admin import RECOMMENDATIONS
from streamrec.streams.kafka.groups import OffsetsProbe, commit_offsets
from streamrec.streams.settings import Settings

_EVENT_IDS = b'"event_ids":['
_TRIGGER = b'"trigger_event_id":"'
TICK_S = 0.01


def event_ids_of(value: bytes | None) -> list[str]:
    """The ids of the events a list is the first to reflect, found without parsing the whole (several KB) list:
    only its `"event_ids":[...]` array is decoded. A list without that field (an older worker) falls back to
    its `trigger_event_id`."""
    if not value:
        return []
    start = value.find(_EVENT_IDS)
    if start < 0:
        return _trigger_of(value)
    start += len(_EVENT_IDS) - 1  # at the "["
    end = value.find(b"]", start)
    if end < 0:
        return []
    try:
        ids = orjson.loads(value[start : end + 1])
    except orjson.JSONDecodeError:  # a "]" inside an id: decode the whole list after all
        try:
            ids = orjson.loads(value).get("event_ids")
        except (orjson.JSONDecodeError, AttributeError):
            return []
    return [event_id for event_id in ids if isinstance(event_id, str)] if isinstance(ids, list) else []


def _trigger_of(value: bytes) -> list[str]:
    start = value.find(_TRIGGER)
    if start < 0:
        return []
    start += len(_TRIGGER)
    end = value.find(b'"', start)
    return [value[start:end].decode()] if end > start else []


class ListWatcher:
    """Reads `recommendations` from its end and notes, per event id, when the first list naming it arrived."""

    def __init__(self, bootstrap: str) -> None:
        self.arrivals: dict[str, float] = {}
        self.lists = 0
        self._tail = tail(bootstrap, RECOMMENDATIONS)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._tail.start()  # positions pinned at the end now: every list from here on is seen
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for record in self._tail:
            now = time.time()
            self.lists += 1
            for event_id in event_ids_of(record.value):
                self.arrivals.setdefault(event_id, now)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._tail.stop()


async def _send_paced(
    producer: JsonProducer,
    records: list[EventRecord],
    rate: float,
    sent_at: dict[str, float],
    on_progress: Callable[[int], None] | None,
) -> float:
    """Send `records` at `rate`/s; returns the seconds it took (so the achieved rate can be reported)."""
    started = time.monotonic()
    index = 0
    next_report = 0.0
    while index < len(records):
        due = min(int((time.monotonic() - started) * rate) + 1, len(records))
        while index < due:
            record = records[index]
            sent_at[record.event_id] = time.time()
            await producer.send(record.topic, record.value, key=record.key)
            index += 1
        elapsed = time.monotonic() - started
        if on_progress is not None and elapsed >= next_report:
            on_progress(index)
            next_report = elapsed + 0.5
        await asyncio.sleep(max(TICK_S - (time.monotonic() - started - elapsed), 0.0))
    return time.monotonic() - started


def worker_cpu(before: infra.Metrics | None, after: infra.Metrics | None) -> dict[str, float | None]:
    """The worker's CPU seconds (both threads, from its `process_cpu_seconds_total`) between two readings, and per
    event consumed meanwhile: what an event costs at this rate, whatever the latency (a steadier figure to compare
    two versions by than a p99 on a shared machine)."""
    cpu = [infra.metric_sum(m, "process_cpu_seconds_total") for m in (before, after)]
    events = [
        sum(infra.metric_sum(m, infra.CONSUMED, topic=t) or 0.0 for t in infra.INPUT_TOPICS) for m in (before, after)
    ]
    if cpu[0] is None or cpu[1] is None or events[1] <= events[0]:
        return {"worker_cpu_s": None, "worker_cpu_us_per_event": None}
    seconds = cpu[1] - cpu[0]
    return {"worker_cpu_s": seconds, "worker_cpu_us_per_event": seconds / (events[1] - events[0]) * 1e6}


def batch_phases(before: infra.Metrics | None, after: infra.Metrics | None) -> dict[str, object]:
    """A batch's mean wall time in each phase (ms, from the worker's `streamrec_batch_phase_seconds`) between two
    readings, and the mean events a batch: where a live batch's time goes at this rate."""
    counts = [infra.metric_sum(m, "streamrec_batch_phase_seconds_count", phase="learn") for m in (before, after)]
    if counts[0] is None or counts[1] is None or counts[1] <= counts[0]:
        return {"batches": None, "events_per_batch": None, "batch_phase_ms": None}
    batches = counts[1] - counts[0]
    phase_ms: dict[str, float | None] = {}
    for phase in BATCH_PHASES:
        sums = [infra.metric_sum(m, "streamrec_batch_phase_seconds_sum", phase=phase) for m in (before, after)]
        phase_ms[phase] = None if sums[0] is None or sums[1] is None else (sums[1] - sums[0]) / batches * 1e3
    events = [
        sum(infra.metric_sum(m, infra.CONSUMED, topic=t) or 0.0 for t in infra.INPUT_TOPICS) for m in (before, after)
    ]
    return {"batches": batches, "events_per_batch": (events[1] - events[0]) / batches, "batch_phase_ms": phase_ms}


async def freshness(
    base: Settings,
    spec: CatalogSpec,
    root: Path,
    *,
    rate: float,
    duration_s: float,
    grace_s: float,
    warmup_events: int,
    start_timeout_s: float,
    memory_limit_bytes: int | None,
    exact_catalog: bool,
    broker_pid: int | None = None,
    seed: int = 0,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """A new worker (its own app id, its group pre-committed at the current end of the input topics so it only
    sees this run's events) gets `rate` events/s for `duration_s`, paced in `TICK_S` ticks; each event's produce
    time is stamped here, and a tail on `recommendations` (started before the first event) notes when its list
    arrives: the first list whose `event_ids` contains it (a list names all of its user's events it is the first
    to reflect; `trigger_event_id` is only the last of them). Same clock, this process. Lists still missing after
    `grace_s` count as infinitely late (`censored_percentiles`). Consumer lag (end offsets minus the group's
    committed offsets) is sampled every second; `lag_grew` is the verdict of `report.lag_trend`.
    The producer, the tail and the worker share the machine's cores: at high rates the bench itself takes CPU
    from the worker, so `offered_per_s` reports the rate actually achieved."""
    app_id = f"bench-fresh-{uuid.uuid4().hex[:8]}"
    settings = infra.worker_settings(base, root / app_id, app_id)
    bootstrap = base.bootstrap_servers
    async with OffsetsProbe(bootstrap, infra.INPUT_TOPICS) as probe:
        await commit_offsets(bootstrap, app_id, await probe.end_offsets())  # start at the end: only our events
    total = int(rate * duration_s)
    users = max(total // 20, 1_000)
    generator = EventGenerator(spec.items, n_users=users, seed=seed + 7, id_prefix="fresh")
    warmup = generator.events(warmup_events, start=total) if warmup_events else []
    records = generator.events(total)
    run, _ = await infra.launch_worker(
        settings,
        root / "logs" / f"{app_id}.log",
        catalog_size=spec.size,
        exact_catalog=exact_catalog,
        timeout_s=start_timeout_s,
        memory_limit_bytes=memory_limit_bytes,
    )
    watcher = ListWatcher(bootstrap)
    covered = infra.Sampler(run.covered, 1.0)  # moves once per batch: the batches' cadence (sending + grace)
    sent_at: dict[str, float] = {}
    lag_samples: list[Sample] = []
    result: dict[str, Any] = {"app_id": app_id, "rate": rate, "duration_s": duration_s, "events": total}
    before: infra.Metrics | None = None
    cpu_before = cpu_after = None
    try:
        await infra.wait_for(run.healthy, timeout_s=start_timeout_s, alive=run.alive, what="/health 200")
        await watcher.start()
        async with JsonProducer(bootstrap, client_id="streamrec-bench-fresh") as producer:
            if warmup:
                for record in warmup:
                    await producer.send(record.topic, record.value, key=record.key)
                await producer.flush()
                warm_ids = {record.event_id for record in warmup}

                async def warmed() -> bool:
                    return warm_ids.issubset(watcher.arrivals)

                try:
                    result["warmup_s"] = await infra.wait_for(
                        warmed, timeout_s=120.0, alive=run.alive, what="warm-up lists"
                    )
                except TimeoutError:
                    result["warmup_s"] = None  # go on: the run itself shows how far behind it is
            async with OffsetsProbe(bootstrap, infra.INPUT_TOPICS) as lag_probe:

                async def lag() -> float:
                    return float(await lag_probe.lag(app_id))

                sampler = infra.Sampler(lag, 1.0).start()
                covered.start()
                before = await run.metrics()  # the worker's CPU time and events so far (warm-up included)
                cpu_before = read_cpu(broker_pid, run.pid)
                try:
                    sending_s = await _send_paced(
                        producer,
                        records,
                        rate,
                        sent_at,
                        None if on_progress is None else (lambda n: on_progress("paced producer", n, total)),
                    )
                    await producer.flush()
                finally:
                    lag_samples = await sampler.stop()
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and len(watcher.arrivals.keys() & sent_at.keys()) < len(sent_at):
            if on_progress is not None:
                on_progress("waiting for the last lists", len(watcher.arrivals.keys() & sent_at.keys()), total)
            await asyncio.sleep(0.5)
        final = await run.metrics()
        cpu_after = read_cpu(broker_pid, run.pid)
    finally:
        covered_samples = await covered.stop()
        await watcher.stop()
        code = await run.stop_async()
    if code not in (0, None):
        result["log_tail"] = run.log_tail(15)
    latencies = [
        watcher.arrivals[event_id] - sent for event_id, sent in sent_at.items() if event_id in watcher.arrivals
    ]
    trend = lag_trend(lag_samples, rate)
    worker = worker_cpu(before, final)
    cores = cores_used(cpu_before, cpu_after) if cpu_before and cpu_after else {}
    worker_sum = infra.metric_sum(final, "streamrec_freshness_seconds_sum")
    worker_count = infra.metric_sum(final, "streamrec_freshness_seconds_count")
    result.update(
        {
            "status": "ok" if code == 0 else f"exit code {code}",
            "offered_per_s": len(sent_at) / sending_s if sending_s > 0 else None,
            "delivered": len(latencies),
            "delivered_share": len(latencies) / max(len(sent_at), 1),
            "lists_seen": watcher.lists,  # warm-up included; coalesced: one list per user per batch
            "events_per_list": len(watcher.arrivals) / watcher.lists if watcher.lists else None,
            "latency_s": censored_percentiles(latencies, len(sent_at)),
            "latency_delivered_only_s": censored_percentiles(latencies, len(latencies)),
            # p1..p99 (None: not delivered), for the distribution's plot
            "latency_quantiles_s": censored_percentiles(latencies, len(sent_at), range(1, 100)),
            "worker_mean_freshness_s": (worker_sum / worker_count) if worker_sum and worker_count else None,
            "lag_grew": trend.grew,
            "lag_slope_per_s": trend.slope_per_s,
            "lag_first": trend.first,
            "lag_last": trend.last,
            "lag_peak": trend.peak,
            "lag_floor_start": trend.floor_start,
            "lag_floor_end": trend.floor_end,
            "lag_samples": [[round(s.t - lag_samples[0].t, 2), s.value] for s in lag_samples] if lag_samples else [],
            "covered_samples": changes(covered_samples),  # events covered by published lists, while sending
            "worker": worker_breakdown(final),
            **worker,
            **batch_phases(before, final),
            "cores": cores,  # mean cores used while sending and until the last list: worker, broker, bench, other
            "exit_code": code,
        }
    )
    return result
