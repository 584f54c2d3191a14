"""The end-to-end evaluation path: replay a stream through the broker and a real worker (`run_e2e`), read every
list back from `recommendations`, score them with `models.evaluate.score_held_lists` (the fast path's protocol
and metrics) and compare them with the fast path's (`compare`, `write_e2e_report`).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streamrec.models.base import Reason, Recommendation, Recommender
from streamrec.models.evaluate import EvalResult, prequential, score_held_lists
from streamrec.models.events import CatalogItem, Play, Rating, Search, UserEvent, event_to_dict
from streamrec.streams.kafka import JsonProducer, Record, create_topics, default_topics, tail
from streamrec.streams.kafka.admin import CATALOG, PLAYS, RATINGS, RECOMMENDATIONS, SEARCHES
from streamrec.streams.kafka.consumer import count_records, read_all
from streamrec.streams.settings import Settings
from streamrec.streams.tools import broker
from streamrec.streams.tools.worker_process import WorkerProcess, free_port
from streamrec.streams.worker.item_log import FoldOnce, decode_signals, item_signals_topic_name

PARTITIONS = 4
HEALTH_TIMEOUT_S = 180.0
WORKER_STOP_TIMEOUT_S = 150.0  # a worker stopping during a rebalance can need the rebalance timeout (60 s)
FLUSH_EVERY = 500
BROKER_STOP_TIMEOUT_S = 300.0
READ_BACK_TIMEOUT_S = 300.0  # reading the inputs and the item-signal log back whole

__all__ = [
    "HR_TOLERANCE",
    "Comparison",
    "E2EError",
    "E2EOptions",
    "E2ERun",
    "compare",
    "fast_catalog",
    "list_from_json",
    "run_e2e",
    "write_e2e_report",
]


class E2EError(RuntimeError):
    """The end-to-end run cannot start or finish; the message says why."""


@dataclass(frozen=True, slots=True)
class E2EOptions:
    list_length: int  # the worker's STREAMREC_TOP_N
    calibration_weight: float
    lockstep: bool = False
    bootstrap: str | None = None  # an existing broker with empty input topics; None: a fresh embedded one
    lockstep_timeout_s: float = 60.0
    idle_timeout_s: float = 180.0  # after the last send: give up when no list arrived for this long
    keep_dir: Path | None = None  # where the worker's log (and temp state) go; None: a temp dir, removed
    workers: int = 1  # worker processes in one group (the input topics get at least this many partitions)


@dataclass(slots=True)
class E2ERun:
    # repr=False: asyncio reprs a finished task's result (with its 200,000 lists: minutes and gigabytes).
    lists: dict[str, list[Recommendation]] = field(default_factory=dict, repr=False)  # trigger event id -> list
    new_user_lists: dict[str, list[Recommendation]] = field(default_factory=dict, repr=False)  # first event -> list
    catalog_order: list[str] = field(default_factory=list, repr=False)  # the worker's catalog, in its row order
    events_sent: int = 0
    lists_received: int = 0  # all lists read (a list per accepted event)
    replay_seconds: float = 0.0  # first send to last list
    bootstrap: str = ""
    teardown_warning: str | None = None  # the embedded broker did not stop cleanly (the results still stand)
    fold_order: list[str] = field(default_factory=list, repr=False)  # event ids as the item-signal log folds them


Progress = Callable[[str, int], None]  # (what: "sent" | "lists", count so far)


def list_from_json(value: Any) -> list[Recommendation]:
    """The `items` of a published list as `Recommendation`s (the evidence fields back into `Reason`s)."""
    recs = []
    for entry in value.get("items", ()):
        reasons = tuple(
            Reason(
                str(r["kind"]),
                str(r["text"]),
                {key: str(v) for key, v in r.items() if key not in ("kind", "text")},
            )
            for r in entry.get("reasons", ())
        )
        recs.append(Recommendation(str(entry["item_id"]), int(entry["rank"]), float(entry["score"]), reasons))
    return recs


def _topic_of(event: UserEvent) -> str:
    if isinstance(event, Rating):
        return RATINGS
    if isinstance(event, Play):
        return PLAYS
    if isinstance(event, Search):
        return SEARCHES
    raise TypeError(f"not a user event: {event!r}")


def held_after(
    events: Sequence[UserEvent], lists: Mapping[str, list[Recommendation]]
) -> dict[str, list[Recommendation]]:
    """Event id -> the list the user held right after it: its own list, or, for an event the worker coalesced
    with later ones of a batch (no list of its own), the latest list triggered before it."""
    held: dict[str, list[Recommendation]] = {}
    current: dict[str, list[Recommendation]] = {}
    for event in events:
        own = lists.get(event.event_id)
        if own is not None:
            current[event.user_id] = own
        if event.user_id in current:
            held[event.event_id] = current[event.user_id]
    return held


class _Lists:
    """Collects the lists published on `recommendations` (by trigger event id) from a started tail, and every
    event id a list reflects (a list names all the events it is the first to reflect in `event_ids`)."""

    def __init__(self, records: AsyncIterator[Record], on_progress: Progress | None) -> None:
        self._records = records
        self._on_progress = on_progress
        self.lists: dict[str, list[Recommendation]] = {}
        self.covered: set[str] = set()
        self.count = 0
        self.last_arrival = time.monotonic()
        self._arrived = asyncio.Event()

    async def run(self) -> None:
        async for record in self._records:
            try:
                value = orjson.loads(record.value or b"")
            except orjson.JSONDecodeError:
                continue
            trigger = value.get("trigger_event_id") if isinstance(value, dict) else None
            if not isinstance(trigger, str):
                continue
            self.lists[trigger] = list_from_json(value)
            self.covered.update(str(e) for e in value.get("event_ids", ()))
            self.covered.add(trigger)
            self.count += 1
            self.last_arrival = time.monotonic()
            self._arrived.set()
            if self._on_progress:
                self._on_progress("lists", self.count)

    async def wait_for(self, event_id: str, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while event_id not in self.covered:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise E2EError(f"no list for event {event_id!r} within {timeout_s:g} s (worker down or stalled?)") from None

    async def wait_all(self, event_ids: Sequence[str], idle_timeout_s: float) -> None:
        """Until every event has its list, or nothing arrived for `idle_timeout_s` (missing lists are reported
        by the scorer, not raised here)."""
        pending = [e for e in event_ids if e not in self.covered]
        while pending:
            if time.monotonic() - self.last_arrival > idle_timeout_s:
                return
            self._arrived.clear()
            try:
                async with asyncio.timeout(1.0):
                    await self._arrived.wait()
            except TimeoutError:
                pass
            pending = [e for e in pending if e not in self.covered]


async def run_e2e(
    base: Settings,
    items: Sequence[CatalogItem],
    events: Sequence[UserEvent],
    options: E2EOptions,
    on_progress: Progress | None = None,
) -> E2ERun:
    """Replay `events` (after the catalog `items`) through a broker and a worker; collect every list.

    Starts an embedded broker on a free port in a fresh temp dir (unless `options.bootstrap` is given), creates
    the topics (`PARTITIONS`), publishes the catalog, starts `python -m streamrec.streams.cli worker` as a
    subprocess (fresh app id, data dir and an empty model dir: the content-only model, as in the fast path),
    sends the events and collects the lists. A user's first evaluation point is scored on the worker's new-user
    list (`GET /new-user/recommendations`), asked right before that user's first event is sent. In lockstep mode
    each event waits for its list before the next one goes, so the worker sees the events in exactly the stream
    order; otherwise they are sent as fast as possible and the partitions interleave.

    Teardown always runs (also on Ctrl-C or an error): the worker gets one SIGTERM and is waited for (never
    SIGKILLed first: a killed consumer stays in its group on noida-db), the embedded broker is stopped with
    `down` (a SIGKILLed broker can lose its last writes) and the temp dir removed.
    """
    root = options.keep_dir or Path(tempfile.mkdtemp(prefix="streamrec-e2e-"))
    root.mkdir(parents=True, exist_ok=True)
    broker_settings: Settings | None = None
    if options.bootstrap is None:
        broker_settings = base.model_copy(
            update={"bootstrap_servers": f"127.0.0.1:{free_port()}", "broker_dir": root / "broker"}
        )
    bootstrap = options.bootstrap or (broker_settings.bootstrap_servers if broker_settings else "")
    app_id = f"streamrec-e2e-{uuid.uuid4().hex[:8]}"
    workers = [
        WorkerProcess(
            base.model_copy(
                update={
                    "bootstrap_servers": bootstrap,
                    "partitions": max(PARTITIONS, options.workers),
                    "app_id": app_id,
                    "data_dir": root / f"worker-data-{n}",
                    "model_dir": root / "empty-models",  # no artifact: the content-only model, as in the fast path
                    "web_port": free_port(),
                    "top_n": options.list_length,
                    "calibration_weight": options.calibration_weight,
                }
            ),
            root / ("worker.log" if options.workers == 1 else f"worker-{n}.log"),
            log_level="warning",
            own_session=True,  # a Ctrl-C in the terminal reaches us only; we stop the workers with one SIGTERM
        )
        for n in range(options.workers)
    ]
    worker = workers[0]  # asked for new-user lists (every worker's item side is the same log's fold)
    run = E2ERun(bootstrap=bootstrap)
    try:
        if broker_settings is not None:
            await asyncio.to_thread(broker.up, broker_settings, timeout_s=60.0)
        topics = default_topics(worker.settings)
        await create_topics(bootstrap, topics)
        if options.bootstrap is not None:
            await _require_empty_inputs(bootstrap)
        async with tail(bootstrap, RECOMMENDATIONS, from_end=True) as records:
            collector = _Lists(records, on_progress)
            collecting = asyncio.create_task(collector.run())
            try:
                await _publish_catalog(bootstrap, items)
                (root / "empty-models").mkdir(exist_ok=True)
                for process in workers:
                    process.start()
                for process in workers:
                    await process.wait_healthy(HEALTH_TIMEOUT_S)
                run.catalog_order = list((await worker.get_json("/catalog/items"))["item_ids"])
                began = time.monotonic()
                await _send_events(worker, collector, events, options, run, bootstrap, on_progress)
                if not options.lockstep:
                    await collector.wait_all([e.event_id for e in events], options.idle_timeout_s)
                run.replay_seconds = time.monotonic() - began
            finally:
                collecting.cancel()
                await asyncio.gather(collecting, return_exceptions=True)
            run.lists = collector.lists
            run.lists_received = collector.count
            run.fold_order = await _fold_order(bootstrap, app_id)
    finally:
        for process in workers:  # all at once: the group rebalances once, not once per leaving worker
            process.terminate()
        for process in workers:
            process.stop(WORKER_STOP_TIMEOUT_S)
        if broker_settings is not None:
            run.teardown_warning = await asyncio.to_thread(_broker_down, broker_settings)
        if options.keep_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return run


async def _fold_order(bootstrap: str, app_id: str) -> list[str]:
    """The events' ids in the order the workers' item-signal log folds them (a signal written twice, once)."""
    event_ids: dict[tuple[str, int, int], str] = {}
    for topic in (RATINGS, PLAYS, SEARCHES):
        for record in await read_all(bootstrap, topic, timeout_s=READ_BACK_TIMEOUT_S):
            event_ids[(topic, record.partition, record.offset)] = str(record.json()["event_id"])
    once, order = FoldOnce(), []
    for record in await read_all(bootstrap, item_signals_topic_name(app_id), timeout_s=READ_BACK_TIMEOUT_S):
        for source, _signal in decode_signals(record.value or b"{}"):
            if once.first_time(source) and source in event_ids:
                order.append(event_ids[source])
    return order


def _broker_down(settings: Settings, timeout_s: float = BROKER_STOP_TIMEOUT_S) -> str | None:
    """`noida-db down`; saving a large log under load can outlast its CLI's own 30 s timeout, so keep waiting
    for the process to exit (never SIGKILL it). Returns a warning instead of raising: the lists are read."""
    try:
        broker.down(settings)
        return None
    except broker.BrokerError as error:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not broker.status(settings).running:
                return None
            time.sleep(1.0)
        return f"embedded broker on {settings.broker_dir} still running after `down` ({error}); stop it later"


async def _require_empty_inputs(bootstrap: str) -> None:
    for topic in (CATALOG, RATINGS, PLAYS, SEARCHES):
        if await count_records(bootstrap, topic):
            raise E2EError(
                f"topic {topic!r} at {bootstrap} already holds records: a fresh worker would consume them too. "
                "Use a broker with empty input topics, or omit --bootstrap (a fresh embedded broker)."
            )


async def _publish_catalog(bootstrap: str, items: Sequence[CatalogItem]) -> None:
    async with JsonProducer(bootstrap, client_id="streamrec-e2e") as producer:
        for item in items:
            await producer.send(CATALOG, event_to_dict(item), key=item.item_id)
        await producer.flush()


async def _send_events(
    worker: WorkerProcess,
    collector: _Lists,
    events: Sequence[UserEvent],
    options: E2EOptions,
    run: E2ERun,
    bootstrap: str,
    on_progress: Progress | None,
) -> None:
    """Send in stream order; before a user's first event, ask the worker for its new-user list, once it has
    caught up with everything sent before (so the list reflects exactly the stream before the event)."""
    seen: set[str] = set()
    unconfirmed: list[str] = []  # sent, free-running, not yet known to be reflected in a list
    # No linger: lockstep sends one record at a time, and a user's event for another topic than their previous
    # one waits for that one's acknowledgement (order_keys); records still batch while a request is in flight.
    async with JsonProducer(
        bootstrap, client_id="streamrec-e2e", linger_ms=0, order_keys=True, total_order=True
    ) as producer:
        for n, event in enumerate(events, start=1):
            if event.user_id not in seen:
                seen.add(event.user_id)
                if not options.lockstep:
                    await producer.flush()
                    for sent in unconfirmed:
                        await collector.wait_for(sent, options.lockstep_timeout_s)
                    unconfirmed.clear()
                run.new_user_lists[event.event_id] = list_from_json(await worker.get_json("/new-user/recommendations"))
            await producer.send(_topic_of(event), event_to_dict(event), key=event.user_id)
            run.events_sent = n
            if options.lockstep:
                await producer.flush()
                await collector.wait_for(event.event_id, options.lockstep_timeout_s)
            else:
                unconfirmed.append(event.event_id)
                if n % FLUSH_EVERY == 0:
                    await producer.flush()
            if on_progress:
                on_progress("sent", n)
        await producer.flush()


# -- comparison with the fast path -----------------------------------------------------------------------------
HR_TOLERANCE = 0.005  # the agreement target: |HR@k(e2e) - HR@k(fast)|


@dataclass(frozen=True, slots=True)
class Comparison:
    fast: EvalResult
    e2e: EvalResult
    points: int
    new_user_points: int
    missing_lists: int  # e2e evaluation points without a list read back (scored as misses)
    lists_identical: int  # evaluation points where both held lists (as scored) are the same items in order
    first_difference: str | None  # event id of the first evaluation point whose lists differ
    metric_diffs: dict[str, float]


def fast_catalog(items: Sequence[CatalogItem], order: Sequence[str]) -> list[CatalogItem]:
    """`items` in the worker's row order (unknown ones last, in their own order): score ties break alike."""
    position = {item_id: n for n, item_id in enumerate(order)}
    return sorted(items, key=lambda item: position.get(item.item_id, len(position)))


def compare(
    items: Sequence[CatalogItem],
    events: Sequence[UserEvent],
    run: E2ERun,
    system: Recommender,
    *,
    name: str,
    k: int,
    list_length: int,
) -> Comparison:
    """Run the fast path (`system`, fresh) over the same events and score the e2e lists; compare them."""
    fast_points: dict[str, tuple[str, ...]] = {}
    e2e_points: dict[str, tuple[str, ...]] = {}
    by_id = {event.event_id: event for event in events}
    fast = prequential(
        events,
        fast_catalog(items, run.catalog_order),
        {name: system},
        k=k,
        list_length=list_length,
        on_point=lambda _s, p: fast_points.__setitem__(p.event_id, p.items),
    )[name]
    held = score_held_lists(
        events,
        items,
        held_after(events, run.lists),
        run.new_user_lists,
        system=name,
        k=k,
        list_length=list_length,
        on_point=lambda _s, p: e2e_points.__setitem__(p.event_id, p.items),
        fold_order=[by_id[event_id] for event_id in run.fold_order if event_id in by_id],
    )
    identical = 0
    first: str | None = None
    for event_id, ids in fast_points.items():
        if e2e_points.get(event_id) == ids:
            identical += 1
        elif first is None:
            first = event_id
    e2e = held.result
    diffs = {
        "hr": abs(e2e.hr - fast.hr),
        "ndcg": abs(e2e.ndcg - fast.ndcg),
        "mrr": abs(e2e.mrr - fast.mrr),
        "coverage": abs(e2e.coverage - fast.coverage),
        "reasons_true": abs(e2e.reasons_true - fast.reasons_true),
    }
    if e2e.miscalibration is not None and fast.miscalibration is not None:
        diffs["miscalibration"] = abs(e2e.miscalibration - fast.miscalibration)
    return Comparison(
        fast=fast,
        e2e=e2e,
        points=fast.eval_points,
        new_user_points=held.new_user_points,
        missing_lists=held.missing_lists,
        lists_identical=identical,
        first_difference=first,
        metric_diffs=diffs,
    )


def write_e2e_report(out: Path, comparison: Comparison, run: E2ERun, settings: dict[str, Any]) -> tuple[Path, Path]:
    """e2e.md and e2e.json under `out`: fast vs e2e side by side with the absolute differences."""
    out.mkdir(parents=True, exist_ok=True)
    c = comparison
    k, n_list = c.fast.k, c.fast.list_length
    rows = [
        (f"HR@{k}", c.fast.hr, c.e2e.hr, "hr"),
        (f"NDCG@{k}", c.fast.ndcg, c.e2e.ndcg, "ndcg"),
        (f"MRR@{n_list}", c.fast.mrr, c.e2e.mrr, "mrr"),
        ("coverage", c.fast.coverage, c.e2e.coverage, "coverage"),
        ("miscalibration", c.fast.miscalibration, c.e2e.miscalibration, "miscalibration"),
        ("reasons true", c.fast.reasons_true, c.e2e.reasons_true, "reasons_true"),
    ]
    agree = c.metric_diffs["hr"] <= HR_TOLERANCE
    lines = [
        f"# streamrec: fast path vs end-to-end ({'lockstep' if settings.get('lockstep') else 'free-running'})",
        "",
        f"{run.events_sent:,} events sent, {run.lists_received:,} lists read back, {c.points:,} evaluation points "
        f"({c.new_user_points:,} of them a user's first event), {c.missing_lists:,} without a list; replay "
        f"{run.replay_seconds:.1f} s.",
        "",
        "| metric | fast path | end to end | abs. difference |",
        "|---|---:|---:|---:|",
    ]
    for label, fast_value, e2e_value, key in rows:
        diff = c.metric_diffs.get(key)
        lines.append(f"| {label} | {_num(fast_value)} | {_num(e2e_value)} | {_num(diff)} |")
    lines += [
        "",
        f"Tolerance: |HR@{k}(e2e) - HR@{k}(fast)| <= {HR_TOLERANCE}: "
        f"**{'met' if agree else 'NOT met'}** ({c.metric_diffs['hr']:.4f}).",
        "",
        f"Held lists identical (same items in the same order, as scored): {c.lists_identical:,} of {c.points:,} "
        f"evaluation points ({c.lists_identical / c.points:.1%})"
        + (f"; first difference at event `{c.first_difference}`." if c.first_difference else ".")
        if c.points
        else "No evaluation points.",
        "",
        "## Protocol",
        "",
        "Both paths run the same `models/` code over the same events; the fast path in process "
        "(`models.evaluation.prequential`), the end-to-end path through the broker and a worker subprocess "
        "(fresh app id, state and an empty model dir: the content-only model), scored by "
        "`models.evaluation.score_held_lists` with the same protocol and metric functions. The held list at an "
        "evaluation point (u, i, t) is the list on `recommendations` whose `trigger_event_id` is u's previous "
        "event (in free-running mode the worker may coalesce several of u's events of one batch into one list; "
        "an event without a list of its own holds the latest list triggered before it). A user's first event "
        "has no list on the topic: it is scored on the worker's new-user list "
        "(`GET /new-user/recommendations`), asked right before the event is sent, once every event sent before "
        "it has its list (free-running too). The worker applies a user's events across topics in the order "
        "sent: the sender stamps records with strictly increasing timestamps, sends a user's event for "
        "another topic only once the previous one is acknowledged, and the worker merges its input "
        "partitions by timestamp (`streams.internals.batching`). Reasons are verified against the stream state "
        "right after the trigger event, in stream order. The fast path adds the catalog in the worker's row "
        "order (`GET /catalog/items`), so score ties break alike.",
        "",
        "## Settings",
        "",
    ]
    lines += [f"- `{key}`: {value}" for key, value in settings.items()]
    lines.append("")
    md = out / "e2e.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    document = {
        "settings": settings,
        "tolerance": {"hr": HR_TOLERANCE, "met": agree},
        "events_sent": run.events_sent,
        "lists_received": run.lists_received,
        "replay_seconds": run.replay_seconds,
        "evaluation_points": c.points,
        "new_user_points": c.new_user_points,
        "missing_lists": c.missing_lists,
        "lists_identical": c.lists_identical,
        "first_difference": c.first_difference,
        "abs_differences": c.metric_diffs,
        "fast": c.fast.to_dict(),
        "e2e": c.e2e.to_dict(),
    }
    js = out / "e2e.json"
    js.write_text(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n", encoding="utf-8")
    return md, js


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
