"""Faust's `processing_guarantee="exactly_once"` on the embedded broker: what it costs and what it covers.

`python -m streamrec.benchmarks.transactions` (see docs/scaling.md, "Transactions"). On one noida-db broker:

1. **Cost.** The first `--events` events of the MovieLens 100K evaluation stream (`models.simulate.event_stream`:
   ratings and simulated plays) are produced once; then one worker at a time drains that backlog from the start
   (a new app id, so a new group and new state), with the default guarantee and with exactly_once, alternating.
   Each run is `throughput.pipeline`: events covered by published lists per second, from the first record read
   to the last list, plus the time until the group's offsets reach the end of the input (the commit).
2. **Coverage.** A fresh broker, a worker with exactly_once and a long commit interval, a few hundred events:
   once everything is handled, what a `read_committed` consumer sees of the lists, the profiles changelog and the
   item-signal log before the transaction commits, and after it, with the group's committed offsets alongside.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streamrec.benchmarks import infra
from streamrec.benchmarks.freshness import event_ids_of
from streamrec.benchmarks.state import profiles_changelog
from streamrec.benchmarks.throughput import pipeline
from streamrec.benchmarks.workloads import EventRecord, catalog_records
from streamrec.models.events import CatalogItem, Rating, UserEvent, event_to_dict
from streamrec.streams.kafka.admin import PLAYS, RATINGS, RECOMMENDATIONS
from streamrec.streams.kafka.groups import committed_offsets, end_offsets
from streamrec.streams.settings import Settings
from streamrec.streams.worker.item_log import item_signals_topic_name

MODES = ("at_least_once", "exactly_once")  # Faust's default guarantee, and transactions
GUARANTEE_ENV = "STREAMREC_FAUST_PROCESSING_GUARANTEE"
COMMIT_INTERVAL_ENV = "STREAMREC_FAUST_BROKER_COMMIT_INTERVAL"
# The backlog drains in seconds: the bench's usual 0.5 s sampling would be a large share of the window.
SAMPLE_INTERVAL_S = 0.1


@dataclass(frozen=True, slots=True)
class TransactionsConfig:
    events: int = 20_000
    runs: int = 3  # per mode
    check_events: int = 300
    check_commit_interval_s: float = 30.0  # long, so the check sees the handled events before their commit
    partitions: int = 4
    max_batch: int | None = None  # the worker's STREAMREC_MAX_BATCH; None: its default (the backlog in one batch)
    commit_interval_s: float | None = None  # Faust's broker_commit_interval; None: its default (2.8 s)
    max_seconds: float = 300.0
    start_timeout_s: float = 180.0
    cache_dir: Path = Path(".streamrec/cache")


def movielens(events: int, cache_dir: Path) -> tuple[list[UserEvent], list[CatalogItem]]:
    """The first `events` events of the evaluation's MovieLens 100K stream (ratings and simulated plays) and its
    catalog, from the dataset cache (`streamrec dataset fetch`)."""
    from streamrec.models.simulate import event_stream
    from streamrec.streams.tools.data import load_dataset

    dataset = load_dataset(name="ml-100k", path=None, cache_dir=cache_dir)
    return list(event_stream(dataset, plays=True, searches=False, seed=0))[:events], list(dataset.items)


def as_records(events: Sequence[UserEvent]) -> list[EventRecord]:
    return [
        EventRecord(
            RATINGS if isinstance(event, Rating) else PLAYS,
            event.user_id,
            orjson.dumps(event_to_dict(event)),
            event.event_id,
        )
        for event in events
    ]


def run_order(runs: int) -> list[str]:
    """Modes alternating, each round starting with the other one (A B, B A, A B, ...): neither mode always
    runs first on a warmer or busier machine."""
    order: list[str] = []
    for round_ in range(runs):
        order.extend(MODES if round_ % 2 == 0 else tuple(reversed(MODES)))
    return order


def drain_rate(run: dict[str, Any]) -> float | None:
    """Events per second until the offsets are committed at the end (consumer lag 0)."""
    window, commit = run.get("window_s"), run.get("committed_after_last_list_s")
    if not window or commit is None or not run.get("window_events"):
        return None
    return float(run["window_events"]) / (float(window) + float(commit))


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median events/s per mode (lists, and drained to lag 0) and exactly_once / default of those medians."""
    out: dict[str, Any] = {}
    for mode in MODES:
        ok = [run for run in runs if run["mode"] == mode and run["status"] == "ok"]
        rates = [run["events_per_s"] for run in ok if run.get("events_per_s")]
        drains = [rate for rate in map(drain_rate, ok) if rate]
        out[mode] = {
            "runs": len(ok),
            "events_per_s": rates,
            "median_events_per_s": statistics.median(rates) if rates else None,
            "drain_events_per_s": drains,
            "median_drain_events_per_s": statistics.median(drains) if drains else None,
        }
    for key in ("median_events_per_s", "median_drain_events_per_s"):
        default, eos = out[MODES[0]][key], out[MODES[1]][key]
        out[f"ratio_{key.removeprefix('median_')}"] = eos / default if default and eos else None
    return out


# -- what a read_committed consumer sees --------------------------------------------------------------------------


async def read_now(bootstrap: str, topic: str, isolation: str, timeout_s: float = 20.0) -> list[Any]:
    """Every record of `topic` a consumer with `isolation` ("read_committed" or "read_uncommitted") can read now:
    up to the last stable offset, or the high watermark."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        unfinished = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while unfinished and time.monotonic() < deadline:
            batches = await consumer.getmany(*unfinished, timeout_ms=500)
            for tp, messages in batches.items():
                records.extend(message for message in messages if message.offset < ends[tp])
            unfinished = {tp for tp in unfinished if await consumer.position(tp) < ends[tp]}
        return records
    finally:
        await consumer.stop()


Seen = dict[str, int]  # one look at the outputs at both isolation levels, and the group's committed offsets


async def look(bootstrap: str, app_id: str, event_ids: set[str]) -> tuple[Seen, set[str]]:
    """What each isolation level sees now; also the input event ids the uncommitted lists name."""
    inputs = (RATINGS, PLAYS)
    ends = await end_offsets(bootstrap, inputs)
    committed = await committed_offsets(bootstrap, app_id, inputs)
    lists_u = await read_now(bootstrap, RECOMMENDATIONS, "read_uncommitted")
    lists_c = await read_now(bootstrap, RECOMMENDATIONS, "read_committed")
    changelog, signals = profiles_changelog(app_id), item_signals_topic_name(app_id)
    named_u = {event_id for record in lists_u for event_id in event_ids_of(record.value)} & event_ids
    named_c = {event_id for record in lists_c for event_id in event_ids_of(record.value)} & event_ids
    seen = {
        "lists_uncommitted": len(lists_u),
        "lists_committed": len(lists_c),
        "events_named_committed": len(named_c),
        "changelog_uncommitted": len(await read_now(bootstrap, changelog, "read_uncommitted")),
        "changelog_committed": len(await read_now(bootstrap, changelog, "read_committed")),
        "signals_uncommitted": len(await read_now(bootstrap, signals, "read_uncommitted")),
        "signals_committed": len(await read_now(bootstrap, signals, "read_committed")),
        "offsets_committed": sum(committed.values()),  # over the input partitions
        "input_end": sum(ends.values()),
    }
    return seen, named_u


async def check_coverage(
    broker: infra.BenchBroker,
    events: Sequence[UserEvent],
    catalog: Sequence[CatalogItem],
    root: Path,
    config: TransactionsConfig,
    console: Console,
) -> dict[str, Any]:
    """A worker with exactly_once and a long commit interval handles `events` on an empty broker: what
    `read_committed` consumers see before the commit and after it (see the module docstring)."""
    await broker.fresh()
    await infra.produce_catalog(broker.bootstrap, catalog_records(catalog))
    app_id = f"eos-check-{uuid.uuid4().hex[:8]}"
    settings = infra.worker_settings(broker.settings, root / app_id, app_id)
    env = {GUARANTEE_ENV: "exactly_once", COMMIT_INTERVAL_ENV: str(config.check_commit_interval_s)}
    run, _ = await infra.launch_worker(
        settings,
        root / "logs" / f"{app_id}.log",
        catalog_size=len(catalog),
        exact_catalog=True,
        timeout_s=config.start_timeout_s,
        memory_limit_bytes=None,
        extra_env=env,
    )
    users = len({event.user_id for event in events})
    event_ids = {event.event_id for event in events}
    try:
        await infra.produce(broker.bootstrap, as_records(events))
        produced_at = time.monotonic()
        handled: Seen | None = None
        deadline = produced_at + config.check_commit_interval_s * 2 + 60.0
        while time.monotonic() < deadline:  # every event named in a list, every user's profile written
            seen, named = await look(broker.bootstrap, app_id, event_ids)
            if named == event_ids and seen["changelog_uncommitted"] >= users:
                handled = seen
                break
            await asyncio.sleep(0.5)
        handled_s = time.monotonic() - produced_at
        console.print(f"  handled after {handled_s:.1f} s: {handled}")
        after: Seen | None = None
        while time.monotonic() < deadline:  # the commit: offsets at the end of the input
            seen, _ = await look(broker.bootstrap, app_id, event_ids)
            if seen["offsets_committed"] >= seen["input_end"]:
                after = seen
                break
            await asyncio.sleep(1.0)
        committed_s = time.monotonic() - produced_at
        console.print(f"  committed after {committed_s:.1f} s: {after}")
    finally:
        code = await run.stop_async()
    before_commit = handled is not None and handled["offsets_committed"] < handled["input_end"]
    return {
        "app_id": app_id,
        "events": len(events),
        "users": users,
        "commit_interval_s": config.check_commit_interval_s,
        "handled_s": round(handled_s, 2),
        "committed_s": round(committed_s, 2),
        "handled": handled,
        "seen_before_commit": before_commit,  # the first look really was before the offsets were committed
        "after_commit": after,
        "exit_code": code,
    }


# -- the run -------------------------------------------------------------------------------------------------------


async def measure(config: TransactionsConfig, console: Console) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-eos-"))
    broker = infra.BenchBroker.embedded_at(infra.free_port(), root, config.partitions)
    events, catalog = movielens(config.events, config.cache_dir)
    records = as_records(events)
    results: dict[str, Any] = {
        "events": len(records),
        "partitions": config.partitions,
        "max_batch": config.max_batch,
        "commit_interval_s": config.commit_interval_s,
        "sample_interval_s": SAMPLE_INTERVAL_S,
        "runs": [],
    }
    results["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("broker", total=None)
            await broker.fresh()
            progress.update(task, description="catalog and backlog", total=len(records))
            await infra.produce_catalog(broker.bootstrap, catalog_records(catalog))
            await infra.produce(broker.bootstrap, records, on_progress=lambda n: progress.update(task, completed=n))
            # The first worker on a machine compiles the ranking kernels (numba caches them): a warm-up run first,
            # not counted.
            worker_base = broker.settings
            if config.max_batch is not None:
                worker_base = worker_base.model_copy(update={"max_batch": config.max_batch})
            commit_env = (
                {} if config.commit_interval_s is None else {COMMIT_INTERVAL_ENV: str(config.commit_interval_s)}
            )
            for n, mode in enumerate(["warm-up", *run_order(config.runs)]):
                progress.update(task, description=f"run {n}: {mode}", completed=0, total=len(records))
                result = await pipeline(
                    worker_base,
                    len(records),
                    len(catalog),
                    root,
                    exact_catalog=True,
                    max_seconds=config.max_seconds,
                    start_timeout_s=config.start_timeout_s,
                    memory_limit_bytes=None,
                    broker_pid=broker.pid(),
                    on_progress=lambda done: progress.update(task, completed=done),
                    extra_env={GUARANTEE_ENV: MODES[0] if mode == "warm-up" else mode, **commit_env},
                    app_prefix=f"eos-{mode.replace('_', '-')}",
                    interval_s=SAMPLE_INTERVAL_S,
                )
                result.pop("covered_samples", None)
                result["mode"] = mode
                result["drain_events_per_s"] = drain_rate(result)
                results["runs"].append(result)
                console.print(
                    f"  {mode}: {result['events_per_s'] or 0:,.0f} events/s to the last list, "
                    f"{result['drain_events_per_s'] or 0:,.0f} events/s to lag 0 ({result['status']})"
                )
            results["summary"] = summarize(results["runs"])
            if config.check_events > 0:
                progress.update(task, description="exactly_once coverage check", total=None)
                stride = max(1, len(events) // config.check_events)  # spread over the backlog: more users
                check_events = events[::stride][: config.check_events]
                results["coverage"] = await check_coverage(broker, check_events, catalog, root, config, console)
    finally:
        await asyncio.to_thread(broker.stop)
        shutil.rmtree(root, ignore_errors=True)  # the workers' state dirs and logs
    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def print_summary(results: dict[str, Any], console: Console) -> None:
    batch = "" if results["max_batch"] is None else f", batches of up to {results['max_batch']:,}"
    batch += "" if results["commit_interval_s"] is None else f", commits every {results['commit_interval_s']:g} s"
    table = Table(
        title=f"{results['events']:,} MovieLens events, one worker, {results['partitions']} partitions{batch}"
    )
    for column in ("mode", "runs", "events/s (lists)", "median", "events/s (lag 0)", "median"):
        table.add_column(column, justify="right")
    summary = results["summary"]
    for mode in MODES:
        part = summary[mode]
        table.add_row(
            mode,
            str(part["runs"]),
            ", ".join(f"{rate:,.0f}" for rate in part["events_per_s"]),
            f"{part['median_events_per_s'] or 0:,.0f}",
            ", ".join(f"{rate:,.0f}" for rate in part["drain_events_per_s"]),
            f"{part['median_drain_events_per_s'] or 0:,.0f}",
        )
    console.print(table)
    for key in ("ratio_events_per_s", "ratio_drain_events_per_s"):
        value = summary.get(key)
        shown = "-" if value is None else f"{value:.2f}"
        console.print(f"exactly_once / default, {key.removeprefix('ratio_')}: {shown}")


def main(
    events: Annotated[int, typer.Option("--events", min=100, help="events of the MovieLens 100K stream")] = 20_000,
    runs: Annotated[int, typer.Option("--runs", min=1, max=10, help="runs per mode, alternating")] = 3,
    check_events: Annotated[
        int, typer.Option("--check-events", min=0, help="events of the coverage check (0: none)")
    ] = 300,
    max_batch: Annotated[
        int | None, typer.Option("--max-batch", min=1, help="the worker's STREAMREC_MAX_BATCH (default: its own)")
    ] = None,
    commit_interval: Annotated[
        float | None,
        typer.Option(
            "--commit-interval", min=0.01, help="Faust's broker_commit_interval in seconds (default: its own)"
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="where the JSON results go")] = Path(
        "docs/bench/transactions.json"
    ),
) -> None:
    """Time a worker draining a MovieLens backlog with and without exactly_once, then check what its
    transactions cover."""
    console = Console()
    config = TransactionsConfig(
        events=events,
        runs=runs,
        check_events=check_events,
        max_batch=max_batch,
        commit_interval_s=commit_interval,
        cache_dir=Settings(_env_file=None).cache_dir,
    )
    results = asyncio.run(measure(config, console))
    batch = "" if max_batch is None else f" --max-batch {max_batch}"
    batch += "" if commit_interval is None else f" --commit-interval {commit_interval:g}"
    results["command"] = (
        f"python -m streamrec.benchmarks.transactions --events {events} --runs {runs} --check-events {check_events}"
        f"{batch} --out {out}"
    )
    print_summary(results, console)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"results: {out}")


if __name__ == "__main__":
    typer.run(main)
