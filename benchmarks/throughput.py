"""Throughput on the same pre-produced events: the raw aiokafka baseline (`raw_baseline`), a Faust null agent and
streamrec's consumption path with a null handler (`faust_null`), and the full worker (`pipeline`). The
subprocesses are timed from outside, from sampled counters.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamrec.benchmarks import infra
from streamrec.benchmarks.cpu import cores_used, read_cpu
from streamrec.benchmarks.report import Sample, changes, rate_from_samples, rate_from_start, summarize_stacks
from streamrec.streams.kafka.admin import describe_topics
from streamrec.streams.kafka.groups import committed_offsets
from streamrec.streams.kafka.security import environment_security
from streamrec.streams.settings import Settings

INPUT_TOPICS = infra.INPUT_TOPICS
SGD_DIM = 64
SGD_LR = 0.02
SGD_REG = 0.01


class SgdModel:
    """Per-user 64-d vectors learned online against fixed random item vectors: one numpy SGD step per event."""

    def __init__(self, item_ids: Sequence[str], dim: int = SGD_DIM, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.item_row = {item_id: row for row, item_id in enumerate(item_ids)}
        self.items: npt.NDArray[np.float32] = rng.normal(0.0, 0.1, size=(len(item_ids), dim)).astype(np.float32)
        self.users: dict[str, npt.NDArray[np.float32]] = {}
        self.updates = 0

    def learn(self, user_id: str, event: dict[str, Any]) -> None:
        item_id = event.get("item_id") or event.get("clicked_item_id")
        row = self.item_row.get(item_id) if isinstance(item_id, str) else None
        if row is None:
            return
        if "rating" in event:
            target = (float(event["rating"]) - 3.0) / 2.0
        elif "watched_seconds" in event:
            target = 1.0 if event.get("completed") else 0.5
        else:
            target = 0.25  # a click on a search result
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = np.zeros(self.dim, dtype=np.float32)
        item = self.items[row]
        error = target - float(user @ item)
        user += SGD_LR * (error * item - SGD_REG * user)
        self.updates += 1


async def raw_baseline(
    bootstrap: str,
    total: int,
    *,
    sgd_items: Sequence[str] | None = None,
    timeout_s: float = 600.0,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Consume `total` records of the input topics from the beginning: one group-less consumer in this process,
    every partition assigned, `getmany` + `orjson.loads` per record, timed from the first `getmany` to the last
    record. `sgd_items` adds a numpy SGD step per event on an in-memory user vector (the cheapest "real"
    per-event model update)."""
    counts = await describe_topics(bootstrap, INPUT_TOPICS)
    partitions = [TopicPartition(topic, p) for topic in INPUT_TOPICS for p in range(counts.get(topic, 0))]
    model = SgdModel(sgd_items) if sgd_items is not None else None
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="streamrec-bench-raw",
        group_id=None,
        enable_auto_commit=False,
        **environment_security(),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        seen = 0
        started = time.perf_counter()
        deadline = started + timeout_s
        while seen < total and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                for message in messages:
                    event = orjson.loads(message.value)
                    if model is not None:
                        model.learn(message.key.decode(), event)
                seen += len(messages)
            if on_progress is not None:
                on_progress(seen)
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    result: dict[str, Any] = {
        "status": "ok" if seen >= total else "incomplete",
        "events": seen,
        "seconds": round(elapsed, 3),
        "events_per_s": seen / elapsed if elapsed > 0 else None,
    }
    if model is not None:
        result["sgd_updates"] = model.updates
        result["users"] = len(model.users)
    return result


@dataclass(frozen=True, slots=True)
class SampledRun:
    samples: list[Sample]
    status: str
    reason: str | None = None


async def _sample_until(
    probe: Callable[[], Any],
    total: int,
    *,
    max_seconds: float,
    interval_s: float,
    alive: Callable[[], bool],
    on_progress: Callable[[int], None] | None,
) -> SampledRun:
    sampler = infra.Sampler(probe, interval_s).start()
    started = time.monotonic()
    status, reason = "ok", None
    try:
        while True:
            await asyncio.sleep(interval_s)
            last = sampler.last
            if on_progress is not None and last is not None:
                on_progress(int(last))
            if last is not None and last >= total:
                break
            if not alive():
                status, reason = "failed", "the process exited while being measured"
                break
            if time.monotonic() - started > max_seconds:
                status, reason = "time-capped", f"stopped after {max_seconds:.0f} s (rate is over that window)"
                break
    finally:
        samples = await sampler.stop()
    return SampledRun(samples, status, reason)


async def faust_null(
    bootstrap: str,
    total: int,
    root: Path,
    *,
    partitions: int,
    max_seconds: float,
    start_timeout_s: float = 120.0,
    batching: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """`benchmarks.null_agent` as a real Faust worker subprocess; events/s from its /count counters sampled from
    outside (start-up and group join excluded), from the last sample before the first record was read to the first
    at the total (`report.rate_from_start`), committed offsets checked after it stops. `batching`: streamrec's
    batching consumer inside Faust (`streams.internals.batching`) with a handler that only counts: the most the
    worker's own consumption path can give, whatever the handler does."""
    app_id = f"bench-null{'-batching' if batching else ''}-{uuid.uuid4().hex[:8]}"
    port = infra.free_port()
    import sys

    argv = [
        sys.executable,
        "-m",
        "streamrec.benchmarks.null_agent",
        "--app-id",
        app_id,
        "--bootstrap",
        bootstrap,
        "--web-port",
        str(port),
        "--data-dir",
        str(root / "null-agent"),
        "--topics",
        ",".join(INPUT_TOPICS),
        "--partitions",
        str(partitions),
        *(["--batching"] if batching else []),
    ]
    env = infra.settings_env(Settings(_env_file=None, bootstrap_servers=bootstrap))
    process = infra.ManagedProcess(argv, root / "logs" / f"{app_id}.log", env=env).start()
    url = f"http://127.0.0.1:{port}/count"

    reads: list[Sample] = []  # records read, sampled with the count (a batch is handled once it is all read)

    async def count() -> float | None:
        status, body = await infra.http_get(url, timeout_s=2.0)
        if status != 200:
            return None
        counts = orjson.loads(body)
        reads.append(Sample(time.monotonic(), float(counts["read"])))
        return float(counts["count"])

    try:

        async def answering() -> bool:
            return await count() is not None

        started_in = await infra.wait_for(
            answering, timeout_s=start_timeout_s, alive=process.alive, what="the null agent's web server"
        )
        run = await _sample_until(
            count, total, max_seconds=max_seconds, interval_s=0.2, alive=process.alive, on_progress=on_progress
        )
    finally:
        code = await process.stop_async()
    committed = await committed_offsets(bootstrap, app_id, INPUT_TOPICS)
    rate = rate_from_start(reads, run.samples, total)  # as the pipeline's: from the first record read
    if rate.per_s is None:  # time-capped
        rate = rate_from_samples(run.samples, total)
    return {
        "status": run.status if code == 0 or run.status != "ok" else f"exit code {code}",
        "reason": run.reason,
        "app_id": app_id,
        "events_per_s": rate.per_s,
        "window_events": rate.events,
        "window_s": round(rate.window_s, 3),
        "start_seconds": round(started_in, 2),
        "counted": run.samples[-1].value if run.samples else 0,
        "committed_at_stop": sum(committed.values()),
        "exit_code": code,
    }


async def pipeline(
    base: Settings,
    total: int,
    catalog_size: int,
    root: Path,
    *,
    exact_catalog: bool,
    max_seconds: float,
    start_timeout_s: float,
    memory_limit_bytes: int | None,
    broker_pid: int | None = None,
    model_dir: Path | None = None,
    profile_seconds: int = 0,
    on_progress: Callable[[int], None] | None = None,
    extra_env: Mapping[str, str] | None = None,
    app_prefix: str = "bench-pipe",
    interval_s: float = 0.5,
) -> dict[str, Any]:
    """The real worker over the pre-produced events (a new app id, so it starts at the beginning), timed from
    outside once the catalog is loaded, for at most `max_seconds`; committed offsets checked after a graceful stop.
    Progress and rate are in events covered by published lists (`infra.COVERED`: a list names all of its user's
    events in the batch), not in lists, nor in records merely consumed. The window runs from the first record read
    (`infra.READ` moving: records are read, then held for their time-ordered turn, then handled) to the last list
    (`report.rate_from_start`: the covered counter moves once per batch, so the first batch stays in)."""
    app_id = f"{app_prefix}-{uuid.uuid4().hex[:8]}"
    settings = infra.worker_settings(base, root / app_id, app_id, model_dir=model_dir)
    run, catalog_s = await infra.launch_worker(
        settings,
        root / "logs" / f"{app_id}.log",
        catalog_size=catalog_size,
        exact_catalog=exact_catalog,
        timeout_s=start_timeout_s,
        memory_limit_bytes=memory_limit_bytes,
        extra_env=extra_env,
    )
    spy: infra.ManagedProcess | None = None
    spy_out = root / "logs" / f"{app_id}.py-spy.txt"
    try:
        if profile_seconds > 0 and run.pid is not None:
            spy = infra.start_py_spy(run.pid, spy_out, profile_seconds, root / "logs" / "py-spy.log")
        # When reading began: a batch's records are read (and held for their time order) before it is handled,
        # and the null agent's window starts at its first record read too.
        started = infra.Sampler(run.read, interval_s).start()
        cpu_before = read_cpu(broker_pid, run.pid)
        try:
            sampled = await _sample_until(
                run.covered,
                total,
                max_seconds=max_seconds,
                interval_s=interval_s,
                alive=run.alive,
                on_progress=on_progress,
            )
        finally:
            read_samples = await started.stop()
        cpu_after = read_cpu(broker_pid, run.pid)
        final, committed_at = await _settled_metrics(run, interval_s=interval_s)
    finally:
        if spy is not None:
            await infra.wait_exit(spy, profile_seconds + 30.0)
        code = await run.stop_async()
    committed = await committed_offsets(base.bootstrap_servers, app_id, INPUT_TOPICS)
    rate = rate_from_start(read_samples, sampled.samples, total)  # the whole run, first batch included
    basis = "outside, from the first record read to the last list"
    if rate.per_s is None:  # time-capped: over the covered counter's own window
        rate, basis = rate_from_samples(sampled.samples, total), "outside"
    breakdown = worker_breakdown(final)
    last_list = next((sample.t for sample in sampled.samples if sample.value >= total), None)
    per_s = rate.per_s
    if per_s is None and breakdown.get("mean_processing_ms"):
        # The covered count moves once per batch: with fewer than two batch ends after the first there is no
        # outside window (e.g. all events in one batch of up to STREAMREC_MAX_BATCH). Fall back to the
        # worker's own per-record time, which is exact for a single batch (fetching excluded).
        per_s, basis = 1000.0 / breakdown["mean_processing_ms"], "worker"
    result: dict[str, Any] = {
        "status": sampled.status if code == 0 or sampled.status != "ok" else f"exit code {code}",
        "reason": sampled.reason,
        "app_id": app_id,
        "events_per_s": per_s,
        "rate_basis": basis,
        "window_events": rate.events,
        "window_s": round(rate.window_s, 3),
        "catalog_load_seconds": round(catalog_s, 2),
        "covered": sampled.samples[-1].value if sampled.samples else 0,
        "covered_samples": changes(sampled.samples),
        # from the last list to the group's offsets at the end of the input (sampled every interval): the commit
        "committed_after_last_list_s": (
            None if committed_at is None or last_list is None else round(committed_at - last_list, 3)
        ),
        "committed_at_stop": sum(committed.values()),
        "exit_code": code,
        # mean cores from the worker's start of reading to the last list (py-spy, when on, counts as other)
        "cores": cores_used(cpu_before, cpu_after),
        **breakdown,
    }
    if code not in (0, None):
        result["log_tail"] = run.log_tail(15)
    if spy is not None and spy_out.exists():
        result["profile"] = summarize_stacks(spy_out.read_text(errors="replace"))
        result["profile"]["file"] = str(spy_out)
    return result


async def _settled_metrics(
    run: infra.BenchWorker, max_s: float = 20.0, interval_s: float = 0.5
) -> tuple[infra.Metrics | None, float | None]:
    """The worker's metrics once its last batch is over: the batch observes its histograms after its lists are
    out and its flush (a scrape at the last list missed it), and its offsets are committed after that. So: once
    the group's committed offsets are at the end of the input (or after `max_s`); with the monotonic time they
    were seen there (None if not within `max_s`)."""
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline:
        if await infra.all_committed(run.settings):
            committed_at = time.monotonic()
            return await run.metrics(), committed_at
        await asyncio.sleep(interval_s)
    return await run.metrics(), None


def worker_breakdown(metrics: infra.Metrics | None) -> dict[str, Any]:
    """What the worker says about its own work: lists and the events they cover, rejections, duplicates,
    batches, and mean processing and ranking times.

    The worker handles records in batches and observes its histograms once per batch: `processing_seconds`
    per input topic present in the batch (the batch's wall time per record), `ranking_seconds` once (the
    batch's ranking time per list). So the means here are per record and per list averaged over batches
    (not weighted by batch size), the number of batches is the largest observation count of one input topic
    (exact when every batch holds a record of that topic, as with the bench's mixed stream), and the ranking
    share is an estimate from those means.
    """
    if metrics is None:
        return {}
    consumed = sum(infra.metric_sum(metrics, infra.CONSUMED, topic=t) or 0.0 for t in INPUT_TOPICS)
    covered = infra.metric_sum(metrics, infra.COVERED) or 0.0
    lists = infra.metric_sum(metrics, "streamrec_lists_published_total") or 0.0
    processing_sum = sum(
        infra.metric_sum(metrics, "streamrec_processing_seconds_sum", topic=t) or 0.0 for t in INPUT_TOPICS
    )
    counts = [infra.metric_sum(metrics, "streamrec_processing_seconds_count", topic=t) or 0.0 for t in INPUT_TOPICS]
    processing_count = sum(counts)
    batches = max(counts)
    ranking_sum = infra.metric_sum(metrics, "streamrec_ranking_seconds_sum") or 0.0
    ranking_count = infra.metric_sum(metrics, "streamrec_ranking_seconds_count") or 0.0
    per_record = processing_sum / processing_count if processing_count else None
    per_list = ranking_sum / ranking_count if ranking_count else None
    out: dict[str, Any] = {
        "lists_published": lists,
        "events_covered": covered,
        "events_per_list": covered / lists if lists else None,
        "rejected": sum(
            infra.metric_sum(metrics, "streamrec_events_rejected_total", topic=t) or 0.0 for t in INPUT_TOPICS
        ),
        "duplicates": sum(
            infra.metric_sum(metrics, "streamrec_events_duplicate_total", topic=t) or 0.0 for t in INPUT_TOPICS
        ),
        "consumed_total": consumed,
        "batches": batches,
        "mean_batch_events": consumed / batches if batches else None,
        "mean_processing_ms": None if per_record is None else 1000 * per_record,
        "mean_ranking_ms": None if per_list is None else 1000 * per_list,
    }
    if per_record and per_list is not None and consumed:
        out["ranking_share_of_processing"] = per_list * lists / (per_record * consumed)
    return out
