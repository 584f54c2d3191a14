"""Replay a dataset into Kafka: the catalog first, then `models.simulate.event_stream` in order, at-least-once and
resumable from a small JSON checkpoint; in lockstep mode each event waits for the list it triggers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from streamrec.models.dataset import Dataset
from streamrec.models.events import Play, Rating, Search, UserEvent, event_to_dict
from streamrec.models.simulate import DEFAULT_SEARCH_RATE, DEFAULT_SEED, event_stream
from streamrec.streams.kafka import JsonProducer, Record, TopicSpec, create_topics, default_topics, tail
from streamrec.streams.kafka.admin import CATALOG, PLAYS, RATINGS, RECOMMENDATIONS, SEARCHES
from streamrec.streams.settings import Settings

CHECKPOINT_VERSION = 1
FLUSH_EVERY_EVENTS = 2_000  # ...or every FLUSH_EVERY_S: each flush is a checkpoint, so this bounds re-sends
FLUSH_EVERY_S = 1.0
DEFAULT_LOCKSTEP_TIMEOUT_S = 30.0


class ReplayError(RuntimeError):
    """The replay cannot start or continue; the message says why and what to do."""


class LockstepTimeoutError(ReplayError):
    """No recommendation list for an event arrived in time (worker down, or a duplicate/rejected event)."""


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """What `event_stream` produces; part of the checkpoint's identity."""

    plays: bool = True
    searches: bool = False
    seed: int = DEFAULT_SEED
    search_rate: float = DEFAULT_SEARCH_RATE


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """How to send.

    `rate` events/s (0 = as fast as possible); `limit` = only the stream's first N events (counted from the
    start of the stream, also when resuming); `resume`: True continues after the checkpoint, False starts
    over, None starts over unless an unfinished checkpoint of the same replay exists (then it refuses).
    """

    rate: float = 0.0
    limit: int | None = None
    lockstep: bool = False
    lockstep_timeout_s: float = DEFAULT_LOCKSTEP_TIMEOUT_S
    resume: bool | None = None
    ensure_topics: bool = True  # create missing topics with the configured partitions (auto-created get 1)


@dataclass(frozen=True, slots=True)
class ReplayTopics:
    """Where records go: the project's topics by default (tests use their own names)."""

    catalog: str = CATALOG
    ratings: str = RATINGS
    plays: str = PLAYS
    searches: str = SEARCHES
    recommendations: str = RECOMMENDATIONS  # read in lockstep mode

    def of(self, event: UserEvent) -> str:
        if isinstance(event, Rating):
            return self.ratings
        if isinstance(event, Play):
            return self.plays
        if isinstance(event, Search):
            return self.searches
        raise TypeError(f"not a user event: {event!r}")

    def specs(self, settings: Settings) -> list[TopicSpec]:
        """The project's topic specs (partitions, compaction) under these names."""
        renamed = {default: getattr(self, role) for role, default in asdict(ReplayTopics()).items()}
        return [replace(spec, name=renamed[spec.name]) for spec in default_topics(settings) if spec.name in renamed]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    total: int  # events in the (limited) stream
    skipped: int  # acknowledged by an earlier run, not sent again
    sent: int  # sent and acknowledged in this run
    catalog_items: int  # catalog records sent in this run (0 when resuming after the catalog)
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class Checkpoint:
    dataset: str
    options: dict[str, Any]
    fingerprint: str  # digest of the full stream's event ids: a changed dataset or option never resumes
    stream_events: int
    catalog_sent: bool
    acknowledged: int
    bootstrap_servers: str
    topics: dict[str, str]
    version: int = CHECKPOINT_VERSION

    def matches(self, other: Checkpoint) -> bool:
        same = (
            "dataset",
            "options",
            "fingerprint",
            "stream_events",
            "bootstrap_servers",
            "topics",
            "version",
        )
        return all(getattr(self, name) == getattr(other, name) for name in same)

    def save(self, path: Path) -> None:
        """Atomically: a crash leaves the old or the new checkpoint, never half of one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise ReplayError(f"checkpoint {path} is unreadable ({exc}); replay with --from-start") from exc


def default_checkpoint_path(settings: Settings, dataset_name: str) -> Path:
    return settings.data_dir / "replay" / f"{dataset_name}.checkpoint.json"


def stream_fingerprint(events: Sequence[UserEvent]) -> str:
    digest = hashlib.sha256()
    for event in events:
        digest.update(event.event_id.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def starting_point(previous: Checkpoint | None, fresh: Checkpoint, resume: bool | None, path: Path) -> Checkpoint:
    """The checkpoint this run starts from (`fresh` = nothing sent yet)."""
    if resume is False or previous is None:
        return fresh
    if not previous.matches(fresh):
        if resume:
            raise ReplayError(
                f"checkpoint {path} belongs to another replay (dataset {previous.dataset!r}, options "
                f"{previous.options}, broker {previous.bootstrap_servers}); replay with --from-start"
            )
        return fresh
    if resume is None and previous.acknowledged < previous.stream_events:
        raise ReplayError(
            f"an unfinished replay of {previous.dataset!r} is recorded in {path} "
            f"({previous.acknowledged} of {previous.stream_events} events sent): pass --resume to continue "
            "it or --from-start to send everything again"
        )
    return previous if resume else fresh


async def replay(
    dataset: Dataset,
    *,
    bootstrap: str,
    settings: Settings,
    checkpoint_path: Path,
    stream: StreamOptions = StreamOptions(),
    options: ReplayOptions = ReplayOptions(),
    topics: ReplayTopics = ReplayTopics(),
    on_start: Callable[[int, int], None] | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Send the catalog and the event stream of `dataset` to the broker at `bootstrap`.

    Records: catalog items to `catalog` (key item id), events to `ratings`/`plays`/`searches` (key user id, JSON
    via `event_to_dict`). The event time travels in the payload's `ts`, while the record timestamp is the produce
    time (so time-based retention keeps replayed history, and the worker's freshness metric measures the
    pipeline, not the age of the dataset), nudged to increase strictly per user (`KeyClock`) so the worker applies
    a user's events across topics in stream order. The checkpoint records the dataset, the stream options and
    how many events the broker acknowledged; events sent but not acknowledged when a run dies are sent again, and
    the worker drops them as duplicates by event id. Lockstep mode waits for each event's list (a
    `recommendations` record whose `trigger_event_id` is the event's id) before the next; a duplicate or rejected
    event never triggers one, so the wait ends in `LockstepTimeoutError` naming the event.

    `on_start(total, already_acknowledged)` is called once the work is known, `on_sent(n)` as events go out.
    Raises ReplayError (LockstepTimeoutError in lockstep mode) with advice; the checkpoint is saved first.
    """
    if options.rate < 0 or (options.limit is not None and options.limit < 0):
        raise ReplayError("rate and limit must not be negative")
    events = event_stream(
        dataset,
        plays=stream.plays,
        searches=stream.searches,
        seed=stream.seed,
        search_rate=stream.search_rate,
    )
    fresh = Checkpoint(
        dataset=dataset.name,
        options=asdict(stream),
        fingerprint=stream_fingerprint(events),
        stream_events=len(events),
        catalog_sent=False,
        acknowledged=0,
        bootstrap_servers=bootstrap,
        topics=asdict(topics),
    )
    previous = None if options.resume is False else Checkpoint.load(checkpoint_path)  # --from-start: not even read
    checkpoint = starting_point(previous, fresh, options.resume, checkpoint_path)
    total = min(len(events), options.limit) if options.limit is not None else len(events)
    start = min(checkpoint.acknowledged, total)
    if on_start:
        on_start(total, start)
    if options.ensure_topics:
        await create_topics(bootstrap, topics.specs(settings))

    began = time.monotonic()
    sender = _Sender(checkpoint, checkpoint_path)
    # No linger: lockstep sends one record at a time, and a user's event for another topic than their previous
    # one waits for that one's acknowledgement (order_keys); records still batch while a request is in flight.
    async with JsonProducer(bootstrap, client_id="streamrec-replay", linger_ms=0, order_keys=True) as producer:
        catalog_items = 0
        if not checkpoint.catalog_sent:
            for item in dataset.items:
                await producer.send(topics.catalog, event_to_dict(item), key=item.item_id)
            await producer.flush()  # the worker must know every item before the first event refers to one
            catalog_items = len(dataset.items)
            sender.catalog_done()
        todo = events[start:total]
        if options.lockstep:
            await _send_lockstep(producer, todo, sender, options, bootstrap, topics, on_sent)
        else:
            await _send_paced(producer, todo, sender, options.rate, topics, on_sent)
    return ReplayResult(
        total=total,
        skipped=start,
        sent=sender.checkpoint.acknowledged - start,
        catalog_items=catalog_items,
        elapsed_s=time.monotonic() - began,
    )


class _Sender:
    """Counts acknowledged events and keeps the checkpoint file in step with the count."""

    def __init__(self, checkpoint: Checkpoint, path: Path) -> None:
        self.checkpoint = checkpoint
        self.path = path

    def catalog_done(self) -> None:
        self._update(catalog_sent=True)

    def acknowledged(self, count: int) -> None:
        self._update(acknowledged=self.checkpoint.acknowledged + count)

    def _update(self, **changes: Any) -> None:
        fields = asdict(self.checkpoint) | changes
        self.checkpoint = Checkpoint(**fields)
        self.checkpoint.save(self.path)


async def _send(producer: JsonProducer, topics: ReplayTopics, event: UserEvent) -> None:
    await producer.send(topics.of(event), event_to_dict(event), key=event.user_id)


async def _send_paced(
    producer: JsonProducer,
    events: Sequence[UserEvent],
    sender: _Sender,
    rate: float,
    topics: ReplayTopics,
    on_sent: Callable[[int], None] | None,
) -> None:
    """Send in order at `rate` events/s (0: unpaced); flush + checkpoint every 2000 events or second."""
    began = last_flush = time.monotonic()
    unflushed = 0
    try:
        for index, event in enumerate(events):
            if rate > 0:
                # Pace against the start time, not the previous event, so sleep jitter does not add up.
                ahead = began + index / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await _send(producer, topics, event)
            unflushed += 1
            if on_sent:
                on_sent(1)
            if unflushed >= FLUSH_EVERY_EVENTS or time.monotonic() - last_flush >= FLUSH_EVERY_S:
                await producer.flush()
                sender.acknowledged(unflushed)
                unflushed, last_flush = 0, time.monotonic()
        await producer.flush()
        sender.acknowledged(unflushed)
    except (asyncio.CancelledError, KeyboardInterrupt):
        await _save_what_was_delivered(producer, sender, unflushed)
        raise


async def _save_what_was_delivered(producer: JsonProducer, sender: _Sender, unflushed: int) -> None:
    """On an interrupt: if the pending records still get through, count them. (After a delivery error the
    count stays at the last successful flush: which of the pending records arrived is unknown.)"""
    try:
        await producer.flush()
    except BaseException:  # undelivered or interrupted again: they count as not sent, and will be re-sent
        return
    sender.acknowledged(unflushed)


async def _send_lockstep(
    producer: JsonProducer,
    events: Sequence[UserEvent],
    sender: _Sender,
    options: ReplayOptions,
    bootstrap: str,
    topics: ReplayTopics,
    on_sent: Callable[[int], None] | None,
) -> None:
    async with tail(bootstrap, topics.recommendations, from_end=True) as records:
        watcher = _ListWatcher(records, topics.recommendations)
        watching = asyncio.create_task(watcher.run())
        try:
            for event in events:
                began = time.monotonic()
                await _send(producer, topics, event)
                await producer.flush()
                sender.acknowledged(1)  # delivered: a resume goes on after it even if no list follows
                if on_sent:
                    on_sent(1)
                remaining = options.lockstep_timeout_s - (time.monotonic() - began)
                await watcher.wait_for(event, remaining, options.lockstep_timeout_s)
                if options.rate > 0:
                    await asyncio.sleep(max(0.0, 1.0 / options.rate - (time.monotonic() - began)))
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)


class _ListWatcher:
    """Collects the `trigger_event_id`s of the lists published on `recommendations`."""

    def __init__(self, records: Any, topic: str) -> None:
        self._records = records
        self._topic = topic
        self._seen: set[str] = set()
        self._arrived = asyncio.Event()

    async def run(self) -> None:
        record: Record
        async for record in self._records:
            trigger = _trigger_of(record)
            if trigger is not None:
                self._seen.add(trigger)
                self._arrived.set()

    async def wait_for(self, event: UserEvent, remaining_s: float, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(max(remaining_s, 0.0)):
                while event.event_id not in self._seen:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise LockstepTimeoutError(
                f"no list with trigger_event_id={event.event_id!r} appeared on topic {self._topic!r} "
                f"within {timeout_s:g} s. Is the worker running (`streamrec worker`)? A duplicate event "
                "(already applied) or a rejected one (see the dead-letter topic) never triggers a list. "
                "The event was delivered and is checkpointed: `--resume` continues after it."
            ) from None
        self._seen.discard(event.event_id)


def _trigger_of(record: Record) -> str | None:
    try:
        value = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return None
    trigger = value.get("trigger_event_id") if isinstance(value, dict) else None
    return trigger if isinstance(trigger, str) else None
