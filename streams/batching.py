"""Batch consumption inside Faust: records of chosen topics reach a handler a batch at a time.

Faust hands every record to its streams one by one: per record its consumer awaits
`wait_first(callback(message), suspend_flow.wait())` (two tasks and an `asyncio.wait`), then the conductor,
a channel queue, the stream iterator and its ack each add their share. That path tops out at a few thousand
records a second whatever the agent does. `BatchingConsumer` keeps Faust's consumer (same group protocol and
assignor, same fetcher thread, tables, recovery, changelogs and offset commits) and only changes what its
drain loop does with records of the topics registered with `BatchingApp.batch_agent`: they are collected
from every `getmany` call that has records ready (up to `max_batch`) and handed to the handler at once.
Records of every other topic (catalog validation, changelogs) still take Faust's per-record path.

What keeps it correct:
- every record is tracked (`track_message`) before the handler runs and acked (`Consumer.ack`) after it
  returns, so offsets are committed only for handled records, and Faust's commit flushes the producer
  (changelogs, lists, dead letters) before it commits them: at-least-once, as with a Faust agent;
- records fetched for a partition no longer assigned, or while Faust has suspended the flow for a
  rebalance, are dropped unhandled (not acked): Faust seeks every assigned partition back to its committed
  offset when the flow resumes, so they are fetched again by whichever worker owns them then;
- the handler must not raise (it dead-letters what it cannot handle); if it does, the records are not
  acked and the error propagates like an agent crash would;
- table writes need Faust's "current event" to pick the partition's RocksDB store and changelog partition:
  `partition_context(message)` sets it for a block of writes belonging to that record's partition.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import faust
from faust.streams import _current_event
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Transport as AIOKafkaTransport
from faust.types import TP, Message, TopicT

BatchHandler = Callable[[Sequence[Message]], Awaitable[None]]

DEFAULT_MAX_BATCH = 20_000


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


class BatchingConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer whose drain loop hands records of batch topics over in batches."""

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised by the worker tests
        app = cast(BatchingApp, self.app)
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                generation = app.consumer_generation_id
                batches = await self._collect(app, generation)
                for handler, messages in batches.items():
                    await self._handle_batch(handler, messages, generation)
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

    async def _collect(self, app: BatchingApp, generation: int) -> dict[BatchHandler, list[Message]]:
        """Records of batch topics from every `getmany` with records ready (one generation, up to max_batch);
        records of other topics go through Faust's per-record callback on the way."""
        handlers = app.batch_handlers
        read_offset = self._read_offset
        acks_enabled_for = app.topics.acks_enabled_for
        batches: dict[BatchHandler, list[Message]] = {}
        n, timeout = 0, 1.0
        while n < app.max_batch and app.consumer_generation_id == generation:
            got = 0
            async for tp, message in self.getmany(timeout=timeout):
                offset = message.offset
                last = read_offset[tp]
                if last is not None and offset < last:
                    continue  # already read: Faust drops these too
                if last and offset - last > 1 and acks_enabled_for(message.topic):
                    await self._add_gap(tp, last + 1, offset)
                read_offset[tp] = offset
                handler = handlers.get(tp.topic)
                if handler is None:
                    await self.wait_first(self.callback(message), self.suspend_flow.wait())
                    continue
                self.track_message(message)
                batches.setdefault(handler, []).append(message)
                got += 1
            n += got
            if got == 0 or self.should_stop:
                break
            timeout = 0.0  # take what else is already buffered; don't wait for more
        return batches

    async def _handle_batch(self, handler: BatchHandler, messages: list[Message], generation: int) -> None:
        if self.flow_active and self.app.consumer_generation_id == generation:
            assigned = self.assignment()
            keep = [m for m in messages if m.tp in assigned]
        else:
            keep = []  # a rebalance began after these were fetched
        if len(keep) != len(messages):
            await self._give_back([m for m in messages if m.tp not in {k.tp for k in keep}])
        if keep:
            await handler(keep)
            for message in keep:
                self.ack(message)

    async def _give_back(self, messages: list[Message]) -> None:
        """Unhandled records: untrack them and, where the partition is still ours, seek back so they are read
        again (after a rebalance Faust also seeks every assigned partition to its committed offset)."""
        first: dict[TP, int] = {}
        for message in messages:
            self._unacked_messages.discard(message)
            first[message.tp] = min(first.get(message.tp, message.offset), message.offset)
        assigned = self.assignment()
        for tp, offset in first.items():
            if tp in assigned:
                await self.seek(tp, offset)
            else:
                self._read_offset[tp] = None


class BatchingTransport(AIOKafkaTransport):
    Consumer = BatchingConsumer


class BatchingApp(faust.App):
    """A Faust app whose consumer hands the records of `batch_agent` topics to a handler in batches."""

    def __init__(self, *args: Any, max_batch: int = DEFAULT_MAX_BATCH, **kwargs: Any) -> None:
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.max_batch = max_batch
        super().__init__(*args, **kwargs)

    def batch_agent(self, topic: TopicT, handler: BatchHandler) -> None:
        """Subscribe to `topic` (one or more topic names) and hand its records to `handler` in batches."""
        for name in topic.topics:
            if name in self.batch_handlers:
                raise ValueError(f"topic {name!r} already has a batch handler")
            self.batch_handlers[name] = handler
        self.topics.add(topic)  # the conductor's subscription: assignment and rebalances as for an agent

    def _new_transport(self) -> BatchingTransport:
        return BatchingTransport(self.conf.broker_consumer, self)


__all__ = ["TP", "BatchHandler", "BatchingApp", "BatchingConsumer", "partition_context"]
