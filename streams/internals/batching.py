"""Batch consumption inside Faust: records of chosen topics reach a handler a batch at a time.

Faust hands every record to its streams one by one: per record its consumer awaits
`wait_first(callback(message), suspend_flow.wait())` (two tasks and an `asyncio.wait`), then the conductor,
a channel queue, the stream iterator and its ack each add their share. That path tops out at a few thousand
records a second whatever the agent does. `BatchingConsumer` keeps Faust's consumer (same group protocol and
assignor, same fetcher thread, tables, recovery, changelogs and offset commits) and only changes what its
drain loop does with records of the topics registered with `BatchingApp.batch_agent`: they are collected
from every `getmany` call that has records ready (up to `max_batch`) and handed to the handler at once.
Records of every other topic (changelogs, agents of other topics) still take Faust's per-record path, except the
changelog records of a table under active recovery, which are written a fetch at a time
(`streams.internals.changelog_restore`). The consumer thread's fetcher is paced on empty answers
(`streams.internals.fetch_pacing`), so a drained partition on a broker that answers at once does not keep it busy.

Topics registered with `in_time_order=False` (catalog validation) skip the merge below: their records are handed
over as read, and their partitions hold nothing back.

Order: Kafka orders records within a partition only, and the fetcher returns partitions' records in chunks
(up to a fetch's worth of one partition at a time), so one user's records in two topics (a play, then the
rating of the same title) would reach the handler far apart and in the wrong order. A batch is therefore a
time-ordered merge of its partitions (by record timestamp; equal timestamps in the order the topics were
registered; each partition's own order always kept), and a record is handed over only once every other
batch partition is known to hold nothing unread stamped before it (`take_in_time_order`, `_bounds`):
either it was read up to the record's timestamp, or a fetch answer processed *after* the record was read
showed it caught up. (An answer that came with the record or before it does not do: a broker reads each
partition's log at its own moment, so the record's predecessor in another partition may have been written
just after that partition was read.) A lone event on a live worker waits for one more fetch answer (at once
with noida-db; with Kafka, as soon as any partition has data, else up to Faust's fetch wait), and no longer
than `order_wait_s` of the consumer finding nothing new to read. The hold is bounded: when nothing can go in
order and nothing could for `HOLD_MAX_S` (a paused or stuck partition), or more than `max(HOLD_FACTOR batches,
HOLD_MIN)` records are held, everything held is released in merged order. (Order is tried first: a backlog read
in bulk, one partition after another, goes in order once its last partitions are read, however long that took.)

What keeps it correct:
- every record is tracked (`track_message`) when it is read and acked (`Consumer.ack`) after the handler
  has run on it (held records stay unacked: no commit passes them), so offsets are committed only for
  handled records, and Faust's commit flushes the producer (changelogs, lists, dead letters) before it
  commits them: at-least-once, as with a Faust agent;
- records fetched for a partition no longer assigned, or while Faust has suspended the flow for a
  rebalance, and records held across a rebalance, are given back unhandled (untracked, not acked, and the
  partition sought back to them if it is still ours), so they are read again by whichever worker owns them;
- the handler must not raise (it dead-letters what it cannot handle); if it does, the records are not
  acked and the error propagates like an agent crash would;
- table writes need Faust's "current event" to pick the partition's RocksDB store and changelog partition:
  `partition_context(message)` sets it for a block of writes belonging to that record's partition.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import faust
from faust.streams import _current_event
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP, Message, TopicT

from streamrec.streams.internals.changelog_restore import ChangelogRestorer
from streamrec.streams.internals.fetch_pacing import pace_empty_fetches
from streamrec.streams.internals.producer_buffer import DrainingProducer

BatchHandler = Callable[[Sequence[Message]], Awaitable[None]]

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 100_000
HOLD_MAX_S = 1.0  # longest wait for a lagging partition before held records are released anyway
HOLD_FACTOR = 2  # most records held: HOLD_FACTOR batches (max_batch each), and at least HOLD_MIN
HOLD_MIN = 100_000


class _PartitionEvent:
    """The part of a Faust event that tables read: `.message` (topic and partition)."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, message: Message) -> None:
        self.message = message


@contextmanager
def partition_context(message: Message) -> Iterator[None]:
    """Table reads and writes inside the block go to `message`'s partition (store and changelog)."""
    event = _PartitionEvent(message)
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (reference counting still frees what a batch drops;
    cycles wait for the collector's next run, after the block). A batch allocates hundreds of thousands of
    objects, and each allocation-triggered collection also walks the worker's long-lived objects: measured at
    20-40% of the batch handler's time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Held(NamedTuple):
    """A record read and tracked, waiting for its turn; `read_ms`: wall-clock milliseconds when it was read."""

    message: Message
    read_ms: int

    @property
    def tp(self) -> TP:
        return self.message.tp

    @property
    def timestamp(self) -> float:
        return self.message.timestamp


@dataclass(frozen=True, slots=True)
class Bound:
    """What is known about a partition's unread records: none is stamped before `last_read_ts` (the last record
    read from it, in seconds), and a fetch answer processed at `caught_up_ms` (wall ms; -inf if the latest
    answer showed more to read) showed none at all."""

    last_read_ts: float
    caught_up_ms: float = -math.inf


def take_in_time_order(
    held: dict[TP, deque[Held]], rank: Mapping[str, int], bounds: Mapping[TP, Bound], *, waited: bool = False
) -> list[Message]:
    """Pop and return the held records that can go, merged in (timestamp, topic rank) order. A record goes when
    every other partition in `bounds` was read up to its timestamp or confirmed caught up after it was read
    (`waited`: or at all); a partition without a bound holds nothing back. Each partition's own order is kept (a
    record goes only after those before it in its partition); emptied partitions are removed from `held`."""
    merged = heapq.merge(*held.values(), key=lambda h: (h.timestamp, rank[h.message.topic]))
    taken: list[Held] = []
    limits = [
        (tp, b.last_read_ts, math.inf if waited and b.caught_up_ms > -math.inf else b.caught_up_ms)
        for tp, b in bounds.items()
    ]
    for entry in merged:
        ts, read_ms, tp = entry.timestamp, entry.read_ms, entry.tp
        if any(other != tp and ts > last_ts and read_ms >= caught_up for other, last_ts, caught_up in limits):
            break
        taken.append(entry)
    for entry in taken:  # the merge keeps each partition's order: they are at the queues' fronts
        held[entry.tp].popleft()
    for tp in [tp for tp, queue in held.items() if not queue]:
        del held[tp]
    return [entry.message for entry in taken]


class PacedConsumerThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, its fetcher paced on empty answers (`streams.internals.fetch_pacing`)."""

    async def on_start(self) -> None:
        await super().on_start()
        app = cast(BatchingApp, self.app)
        pace_empty_fetches(self._ensure_consumer()._fetcher, app.empty_fetch_pause_s)


class BatchingConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer whose drain loop hands records of batch topics over in time-ordered batches."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return PacedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: dict[TP, deque[Held]] = {}  # read and tracked, not handed over yet
        self._loose: list[Message] = []  # read and tracked, of topics outside the time-ordered merge
        self._held_generation: int | None = None
        self._stalled_since: float | None = None  # when a release last found nothing it could hand over
        self._last_read_ts: dict[TP, float] = {}  # timestamp of the last record read, per partition
        self._quiet_since: float | None = None  # since when reads find nothing new (monotonic)
        self._restorer = ChangelogRestorer(self.app)  # table recovery a fetch at a time

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised by the worker tests
        app = cast(BatchingApp, self.app)
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                generation = app.consumer_generation_id
                if self._held_generation != generation:
                    await self._give_back(self._take_held())  # read before a rebalance: read again after it
                    self._held_generation = generation
                await self._collect(app, generation)
                for handler, messages in self._release(app).items():
                    for start in range(0, len(messages), app.max_batch):  # a batch is at most max_batch records
                        await self._handle_batch(handler, messages[start : start + app.max_batch], generation)
                if self._commit_every is not None and self._n_acked >= self._commit_every:
                    self._n_acked = 0
                    await self.commit()
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _collect(self, app: BatchingApp, generation: int) -> None:
        """Read records of batch topics into the hold from every `getmany` with records ready (one generation,
        up to max_batch new ones); records of other topics go through Faust's per-record callback on the way."""
        handlers = app.batch_handlers
        read_offset = self._read_offset
        acks_enabled_for = app.topics.acks_enabled_for
        held = self._held
        # Held records wait for the next fetch answer (or order_wait_s of quiet): come back for them soon.
        n, timeout = 0, (0.01 if held else 1.0)
        last_read_ts = self._last_read_ts
        restorer = self._restorer
        read: dict[str, int] = {}  # batch-topic records read, by topic
        unordered = app.unordered
        while n < app.max_batch and app.consumer_generation_id == generation:
            got = 0
            read_ms = time.time_ns() // 1_000_000
            async for tp, message in self.getmany(timeout=timeout):
                offset = message.offset
                last = read_offset[tp]
                if last is not None and offset < last:
                    continue  # already read: Faust drops these too
                if last and offset - last > 1 and acks_enabled_for(message.topic):
                    await self._add_gap(tp, last + 1, offset)
                read_offset[tp] = offset
                if tp.topic not in handlers:
                    if restorer.takes(tp):
                        restorer.add(message)
                    else:
                        await self.wait_first(self.callback(message), self.suspend_flow.wait())
                    continue
                self.track_message(message)
                got += 1
                read[tp.topic] = read.get(tp.topic, 0) + 1
                if tp.topic in unordered:
                    self._loose.append(message)
                    continue
                queue = held.get(tp)
                if queue is None:
                    queue = held[tp] = deque()
                queue.append(Held(message, read_ms))
                last_read_ts[tp] = message.timestamp
            for message in restorer.apply():  # Faust's recovery notes the progress (and its end)
                await self.wait_first(self.callback(message), self.suspend_flow.wait())
            n += got
            if got == 0 or self.should_stop:
                break
            timeout = 0.0  # take what else is already buffered; don't wait for more
        if app.on_read is not None:
            for topic, count in read.items():
                app.on_read(topic, count)
        if n:
            self._quiet_since = None
        elif self._quiet_since is None:
            self._quiet_since = time.monotonic()

    def _release(self, app: BatchingApp) -> dict[BatchHandler, list[Message]]:
        """Take the held records that can go in time order (see `take_in_time_order` and `_bounds`)."""
        out: dict[BatchHandler, list[Message]] = {}
        for message in self._loose:
            out.setdefault(app.batch_handlers[message.topic], []).append(message)
        self._loose = []
        held = self._held
        total = sum(map(len, held.values()))
        if not total:
            self._stalled_since = None
            return out
        now = time.monotonic()
        waited = self._quiet_since is not None and now - self._quiet_since >= app.order_wait_s
        taken = take_in_time_order(held, app.batch_rank, self._bounds(app), waited=waited)
        # Only when nothing can go in order (a partition read far behind the others, or not at all): a hold read
        # in bulk (a backlog) is released in order as soon as its last partitions are read, however long that took.
        too_many = total > max(HOLD_FACTOR * app.max_batch, HOLD_MIN)
        stalled = self._stalled_since is not None and now - self._stalled_since > HOLD_MAX_S
        if not taken and (too_many or stalled):
            log.warning(
                "releasing %d held records without waiting for the order across partitions (%s)",
                total,
                "too many held" if too_many else "stalled",
            )
            taken = take_in_time_order(held, app.batch_rank, {})
        for message in taken:
            out.setdefault(app.batch_handlers[message.topic], []).append(message)
        if taken:
            self._stalled_since = None
        elif self._stalled_since is None:
            self._stalled_since = now
        return out

    def _bounds(self, app: BatchingApp) -> dict[TP, Bound]:
        """What is known about each assigned batch partition's unread records (see `Bound`)."""
        bounds: dict[TP, Bound] = {}
        for tp in self.assignment():
            if tp.topic in app.batch_handlers and tp.topic not in app.unordered:
                caught_up_ms = self._caught_up_ms(tp)
                if caught_up_ms is not None:
                    bounds[tp] = Bound(self._last_read_ts.get(tp, -math.inf), caught_up_ms)
        return bounds

    def _caught_up_ms(self, tp: TP) -> float | None:
        """When the latest fetch answer for `tp` showed nothing left to read (wall ms), -inf if it showed more
        (or none came yet), None if the partition holds nothing back (paused, or no longer assigned).

        aiokafka keeps the partition's position (next offset to hand out), and the highwater and processing time
        of the last fetch answer at that position, in its subscription state; it exposes them only in part."""
        try:
            client = self._thread._ensure_consumer()
            state = client._subscription.subscription.assignment.state_value(tp)
        except Exception:  # no client or no assignment (a rebalance in progress)
            return None
        if state is None or state.paused:
            return None
        if state.highwater is None or state.timestamp is None or not state.has_valid_position:
            return -math.inf
        return float(state.timestamp) if state.position >= state.highwater else -math.inf

    def _take_held(self) -> list[Message]:
        messages = self._loose + [entry.message for queue in self._held.values() for entry in queue]
        self._loose = []
        self._held.clear()
        self._last_read_ts.clear()
        self._stalled_since = None
        return messages

    async def _handle_batch(self, handler: BatchHandler, messages: list[Message], generation: int) -> None:
        if self.flow_active and self.app.consumer_generation_id == generation:
            assigned = self.assignment()
            keep = [m for m in messages if m.tp in assigned]
        else:
            keep = []  # a rebalance began after these were fetched
        if len(keep) != len(messages):
            await self._give_back([m for m in messages if m.tp not in {k.tp for k in keep}])
        if keep:
            task = asyncio.ensure_future(_paused(handler, keep))
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                try:
                    finished = await self._finish_when_stopping(task, len(keep))
                except asyncio.CancelledError:  # cancelled again: give up on it
                    finished = False
                if finished:
                    for message in keep:
                        self.ack(message)
                else:  # a rebalance, or not finished in time: not acked (read again), not waited for
                    task.cancel()
                    self._untrack(keep)
                raise
            except BaseException:  # a handler bug: not acked
                self._untrack(keep)
                raise
            for message in keep:
                self.ack(message)

    async def _finish_when_stopping(self, task: asyncio.Future[None], records: int) -> bool:
        """On a stop (not a rebalance: the partitions may be another worker's by then) the batch in hand may
        finish, within the app's `stop_grace_s`, so that its work is committed rather than done again after the
        restart. True if it finished."""
        app = cast(BatchingApp, self.app)
        if not app.should_stop:
            return False
        if not task.done():
            log.info("stopping: finishing the batch in hand (%d records), at most %.0f s", records, app.stop_grace_s)
            await asyncio.wait({task}, timeout=app.stop_grace_s)
        return task.done() and not task.cancelled() and task.exception() is None

    async def wait_empty(self) -> None:
        """At stop Faust waits for every tracked record to be acked; held records never reached a handler, so
        they are dropped instead (not committed: read again after a restart)."""
        self._untrack(self._take_held())
        await super().wait_empty()

    def _untrack(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self._unacked_messages.discard(message)

    async def _give_back(self, messages: list[Message]) -> None:
        """Unhandled records: untrack them and, where the partition is still ours, seek back so they are read
        again (after a rebalance Faust also seeks every assigned partition to its committed offset)."""
        first: dict[TP, int] = {}
        self._untrack(messages)
        for message in messages:
            first[message.tp] = min(first.get(message.tp, message.offset), message.offset)
        assigned = self.assignment()
        for tp, offset in first.items():
            if tp in assigned:
                await self.seek(tp, offset)
            else:
                self._read_offset[tp] = None


async def _paused(handler: BatchHandler, messages: list[Message]) -> None:
    with gc_paused():
        await handler(messages)


class BatchingTransport(AIOKafkaTransport):
    Consumer = BatchingConsumer
    Producer = DrainingProducer


class BatchingApp(faust.App):
    """A Faust app whose consumer hands the records of `batch_agent` topics to a handler in batches."""

    def __init__(
        self,
        *args: Any,
        max_batch: int = DEFAULT_MAX_BATCH,
        order_wait_s: float = 0.25,
        empty_fetch_pause_s: float = 0.0,
        on_read: Callable[[str, int], None] | None = None,
        stop_grace_s: float = 20.0,
        **kwargs: Any,
    ) -> None:
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.on_read = on_read  # told (topic, count) of the batch-topic records each read brought, before holding
        self.batch_rank: dict[str, int] = {}  # tie-break of equal timestamps: registration order
        self.unordered: set[str] = set()  # batch topics handed over as read, outside the time-ordered merge
        self.max_batch = max_batch
        self.order_wait_s = order_wait_s
        self.empty_fetch_pause_s = empty_fetch_pause_s
        self.stop_grace_s = stop_grace_s  # a stop lets the batch in hand finish for this long (then drops it)
        super().__init__(*args, **kwargs)

    def batch_agent(self, topic: TopicT, handler: BatchHandler, *, in_time_order: bool = True) -> None:
        """Subscribe to `topic` (one or more topic names) and hand its records to `handler` in batches.

        Records with equal timestamps are handed over in the order the topic names were registered. With
        `in_time_order=False` the topic's records are handed over as they are read (each partition's order kept)
        and its partitions hold nothing else back: for records whose handling doesn't depend on the others'."""
        for name in topic.topics:
            if name in self.batch_handlers:
                raise ValueError(f"topic {name!r} already has a batch handler")
            self.batch_handlers[name] = handler
            self.batch_rank[name] = len(self.batch_rank)
            if not in_time_order:
                self.unordered.add(name)
        self.topics.add(topic)  # the conductor's subscription: assignment and rebalances as for an agent

    def _new_transport(self) -> BatchingTransport:
        return BatchingTransport(self.conf.broker_consumer, self)


__all__ = ["TP", "BatchHandler", "BatchingApp", "BatchingConsumer", "partition_context", "take_in_time_order"]
