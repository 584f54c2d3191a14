"""Batch consumption inside Faust: records of chosen topics reach a handler a batch at a time.

`BatchingConsumer` keeps Faust's consumer (group protocol, fetcher thread, tables, recovery, changelogs, offset
commits) and changes only what its drain loop does with the records of `BatchingApp.batch_agent` topics: instead of
Faust's per-record stream path they go into the app's `RecordHold`, which decides when they reach their handler.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, cast

import faust
from aiokafka import TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, Message, TopicT

from streamrec.streams.internals.changelog_restore import ChangelogRestorer
from streamrec.streams.internals.fetch_pacing import pace_consumer_fetches
from streamrec.streams.internals.group_join import leave_group_on_close, tolerate_empty_assignments
from streamrec.streams.internals.producer_buffer import DrainingProducer
from streamrec.streams.internals.state_healing import StateDiscardedHook
from streamrec.streams.internals.topic_declaration import ExistingTopicsTransport

BatchHandler = Callable[[Sequence[Message]], Awaitable[None]]

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 100_000


class RecordHold(Protocol):
    """Where the consumer keeps the batch topics' records it read until they go to their handlers."""

    def ordered(self, topic: str) -> bool:
        """Whether `topic`'s partitions take part in an order across partitions (`release` gets their state)."""
        ...

    @property
    def holding(self) -> bool:
        """Records are held back (the consumer comes back for them soon instead of waiting for more)."""
        ...

    def add(self, record: Message, read_ms: int) -> None:
        """A record just read (tracked); `read_ms`: wall-clock milliseconds when the read began."""
        ...

    def after_read(self, new_records: int) -> None:
        """A round of reads ended, with this many new records."""
        ...

    def release(self, caught_up_ms: Mapping[tuple[str, int], float]) -> list[Message]:
        """The records that go now, in handing-over order. `caught_up_ms`: for each assigned partition of an
        ordered topic whose fetch state is known, when a fetch answer last showed nothing left to read in it
        (wall ms; -inf if the latest answer showed more, or none came yet)."""
        ...

    def take_all(self) -> list[Message]:
        """Every record held (to be given back), the hold emptied."""
        ...


class ReadOrderHold:
    """Records go to their handlers as they were read (each partition's order kept)."""

    holding = False

    def __init__(self) -> None:
        self._records: list[Message] = []

    def ordered(self, topic: str) -> bool:
        return False

    def add(self, record: Message, read_ms: int) -> None:
        self._records.append(record)

    def after_read(self, new_records: int) -> None:
        return None

    def release(self, caught_up_ms: Mapping[tuple[str, int], float]) -> list[Message]:
        return self.take_all()

    def take_all(self) -> list[Message]:
        records, self._records = self._records, []
        return records


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (reference counting still frees what a batch drops;
    cycles wait for the collector's next run, after the block). A batch allocates hundreds of thousands of
    objects, and each allocation-triggered collection also walks the worker's long-lived objects."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class PacedConsumerThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, its fetcher paced on empty answers (`streams.internals.fetch_pacing`), leaving its
    group on stop when the app asks (`streams.internals.group_join`)."""

    async def on_start(self) -> None:
        # After `faust.transport.drivers.aiokafka.AIOKafkaConsumerThread.on_start` has created and started the
        # aiokafka consumer (whose `Fetcher` exists from then on).
        await super().on_start()
        app = cast(BatchingApp, self.app)
        pace_consumer_fetches(self._ensure_consumer(), app.empty_fetch_pause_s)
        if app.leave_group_on_stop:
            leave_group_on_close(self._ensure_consumer())


class BatchingConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer whose drain loop hands records of batch topics over in batches.

    Records of batch topics are collected from every `getmany` that has records ready (up to `max_batch`) into the
    hold. Records of other topics still take Faust's per-record path, except changelog records of a table under
    active recovery (`streams.internals.changelog_restore`). The consumer thread's fetcher is paced on empty
    answers (`streams.internals.fetch_pacing`).

    What keeps it correct:
    - every record is tracked (`track_message`) when it is read and acked after the handler has run on it (held
      records stay unacked: no commit passes them), and Faust's commit flushes the producer before it commits;
    - records fetched for a partition no longer assigned, or while Faust has suspended the flow for a rebalance,
      and records held across a rebalance, are given back unhandled (untracked, not acked, the partition sought
      back to them if it is still ours), so whichever worker owns them reads them again;
    - the handler must not raise (it dead-letters what it cannot handle); if it does, its records are not acked
      and the error propagates like an agent crash would.
    """

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        # `faust.transport.drivers.aiokafka.Consumer._new_consumer_thread`, with the paced thread.
        return PacedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hold = cast(BatchingApp, self.app).new_hold()  # read and tracked, not handed over yet
        self._held_generation: int | None = None
        self._restorer = ChangelogRestorer(self.app)  # table recovery a fetch at a time

    async def perform_seek(self) -> None:
        """Faust's seek of every assigned partition to its committed offset (`faust.transport.consumer.Consumer.
        perform_seek`), and to its start where nothing is committed yet.

        Faust drops the records a fetch brought for a partition paused for table recovery, or after its flow was
        suspended for a rebalance (`Consumer.getmany`), and reads them again by this seek. aiokafka's
        `seek_to_committed` leaves a partition with no committed offset where its fetcher got to (the reset to the
        earliest offset applies only to its first position), so those records were never read: a worker restarted
        before its first commit lost everything its partitions held up to then."""
        await super().perform_seek()
        if self.app.conf.consumer_auto_offset_reset != "earliest":
            return
        acking = self.app.topics.acks_enabled_for
        never_committed = [
            tp for tp in self.assignment() if acking(tp.topic) and self._committed_offset.get(tp) is None
        ]
        if never_committed:
            await self._thread.seek_to_beginning(*(TopicPartition(tp.topic, tp.partition) for tp in never_committed))
            for tp in never_committed:
                self._read_offset[tp] = None

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised by the worker tests
        # Replaces `faust.transport.consumer.Consumer._drain_messages`: the same stop conditions, commit_every
        # and stop handling; records are read by `_collect` and handed over by `_release`.
        app = cast(BatchingApp, self.app)
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                generation = app.consumer_generation_id
                if self._held_generation != generation:
                    await self._give_back(self._hold.take_all())  # read before a rebalance: read again after it
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
        up to max_batch new ones); records of other topics go through Faust's per-record callback on the way.
        The read offsets and gaps are kept as `faust.transport.consumer.Consumer._drain_messages` keeps them."""
        handlers = app.batch_handlers
        read_offset = self._read_offset
        acks_enabled_for = app.topics.acks_enabled_for
        hold = self._hold
        # Held records wait for the next fetch answer: come back for them soon.
        n, timeout = 0, (0.01 if hold.holding else 1.0)
        restorer = self._restorer
        read: dict[str, int] = {}  # batch-topic records read, by topic
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
                hold.add(message, read_ms)
            for message in restorer.apply():  # Faust's recovery notes the progress (and its end)
                await self.wait_first(self.callback(message), self.suspend_flow.wait())
            n += got
            if got == 0 or self.should_stop:
                break
            timeout = 0.0  # take what else is already buffered; don't wait for more
        if app.on_read is not None:
            for topic, count in read.items():
                app.on_read(topic, count)
        hold.after_read(n)

    def _release(self, app: BatchingApp) -> dict[BatchHandler, list[Message]]:
        """The records the hold lets go now, by handler (each handler's in the hold's order)."""
        out: dict[BatchHandler, list[Message]] = {}
        hold = self._hold
        for message in hold.release(self._caught_up(app) if hold.holding else {}):
            out.setdefault(app.batch_handlers[message.topic], []).append(message)
        return out

    def _caught_up(self, app: BatchingApp) -> dict[tuple[str, int], float]:
        """For each assigned partition of an ordered batch topic that holds something back, when its latest fetch
        answer showed nothing left to read (see `_caught_up_ms`)."""
        caught_up: dict[tuple[str, int], float] = {}
        hold = self._hold
        for tp in self.assignment():
            if tp.topic in app.batch_handlers and hold.ordered(tp.topic):
                caught_up_ms = self._caught_up_ms(tp)
                if caught_up_ms is not None:
                    caught_up[tp] = caught_up_ms
        return caught_up

    def _caught_up_ms(self, tp: TP) -> float | None:
        """When the latest fetch answer for `tp` showed nothing left to read (wall ms), -inf if it showed more
        (or none came yet), None if the partition holds nothing back (paused, or no longer assigned).

        aiokafka keeps the partition's position (next offset to hand out), and the highwater and processing time
        of the last fetch answer at that position (`aiokafka.consumer.fetcher.Fetcher._proc_fetch_request` sets
        `TopicPartitionState.highwater` and `.timestamp`), in its subscription state; it exposes them only in part.
        """
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
                    self.acknowledge(keep)
                else:  # a rebalance, or not finished in time: not acked (read again), not waited for
                    task.cancel()
                    self._untrack(keep)
                raise
            except BaseException:  # a handler bug: not acked
                self._untrack(keep)
                raise
            self.acknowledge(keep)  # what the handler did not acknowledge itself

    def acknowledge(self, messages: Sequence[Message]) -> None:
        """Mark handled records acked (`Consumer.ack`), so the next commit covers their offsets; acking a record
        twice does nothing."""
        ack = self.ack
        for message in messages:
            if not message.acked:
                ack(message)

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
        """At stop Faust waits for every tracked record to be acked (`faust.transport.consumer.Consumer.wait_empty`
        waits on `_unacked_messages`); held records never reached a handler, so they are dropped instead (not
        committed: read again after a restart)."""
        self._untrack(self._hold.take_all())
        await super().wait_empty()

    def _untrack(self, messages: Sequence[Message]) -> None:
        # Undoes `faust.transport.consumer.Consumer.track_message`.
        for message in messages:
            self._unacked_messages.discard(message)

    async def _give_back(self, messages: list[Message]) -> None:
        """Unhandled records: untrack them and, where the partition is still ours, seek back so they are read
        again (after a rebalance Faust also seeks every assigned partition to its committed offset); where it is
        not, forget the read offset as Faust's own revocation does."""
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


class BatchingTransport(ExistingTopicsTransport):
    Consumer = BatchingConsumer
    Producer = DrainingProducer


class BatchingApp(faust.App):
    """A Faust app whose consumer hands the records of `batch_agent` topics to a handler in batches, in the order
    its `new_hold()` releases them (here: as read)."""

    def __init__(
        self,
        *args: Any,
        max_batch: int = DEFAULT_MAX_BATCH,
        empty_fetch_pause_s: float = 0.0,
        on_read: Callable[[str, int], None] | None = None,
        stop_grace_s: float = 20.0,
        leave_group_on_stop: bool = False,
        **kwargs: Any,
    ) -> None:
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.on_read = on_read  # told (topic, count) of the batch-topic records each read brought, before holding
        # told of each table partition whose local state was dropped to be restored (`streams.internals.state_healing`)
        self.on_state_discarded: StateDiscardedHook | None = None
        self.max_batch = max_batch
        self.empty_fetch_pause_s = empty_fetch_pause_s
        self.stop_grace_s = stop_grace_s  # a stop lets the batch in hand finish for this long (then drops it)
        self.leave_group_on_stop = leave_group_on_stop  # a static member leaves its group when it stops
        tolerate_empty_assignments()
        super().__init__(*args, **kwargs)

    def new_hold(self) -> RecordHold:
        """The consumer's hold (made once, with the consumer)."""
        return ReadOrderHold()

    def batch_agent(self, topic: TopicT, handler: BatchHandler) -> None:
        """Subscribe to `topic` (one or more topic names) and hand its records to `handler` in batches."""
        for name in topic.topics:
            if name in self.batch_handlers:
                raise ValueError(f"topic {name!r} already has a batch handler")
            self.batch_handlers[name] = handler
        self.topics.add(topic)  # the conductor's subscription: assignment and rebalances as for an agent

    @property
    def draining_producer(self) -> DrainingProducer:
        """The worker's producer (created with the worker, on first use)."""
        return cast(DrainingProducer, self.producer)

    def acknowledge(self, messages: Sequence[Message]) -> None:
        """Handled records: acked now, so the next offset commit covers them (see `BatchingConsumer.acknowledge`)."""
        cast(BatchingConsumer, self.consumer).acknowledge(messages)

    def _new_transport(self) -> BatchingTransport:
        # `faust.app.base.App._new_transport`, with the batching transport whatever the broker URL's scheme.
        return BatchingTransport(self.conf.broker_consumer, self)


__all__ = ["TP", "BatchHandler", "BatchingApp", "BatchingConsumer", "ReadOrderHold", "RecordHold", "gc_paused"]
