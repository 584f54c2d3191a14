"""Faust's producer, adjusted for batches: its buffer drained a loop turn at a time (`DrainingProducerBuffer`), its
batches sent on a flush instead of after their linger, and a hand-over path for records nothing in Faust tracks
(`DrainingProducer.hand_over`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from faust.transport.producer import ProducerBuffer
from mode import Service

log = logging.getLogger(__name__)

Records = Mapping[int, Sequence[tuple[bytes, bytes | None]]]  # (key, value) pairs per partition, in sending order;
# a None value is a tombstone
Delivered = Callable[[int, int], None]  # (partition, offset of the last record of a batch): a batch acknowledged


class DrainingProducerBuffer(ProducerBuffer):
    """Faust's `ProducerBuffer` (where table writes and `Topic.send_soon` queue records) sends one record per turn
    of the event loop; while a batch is handled the loop turns only as often as the handler yields, so a batch's
    changelog records trickled out and Faust's commit, which flushes the buffer first, fell behind ("Timer commit is
    overlapping"). This one sends everything queued in the turn it wakes up in, in queue order; sending only
    appends to aiokafka's batches, so order and delivery are as before."""

    @Service.task
    async def _handle_pending(self) -> None:
        # Replaces `faust.transport.producer.ProducerBuffer._handle_pending` (mode's tasks go by name): the same
        # loop, draining the whole queue per wake-up.
        pending = self.pending
        send_pending = self._send_pending
        while not self.should_stop:
            message = await pending.get()
            await send_pending(message)
            while not pending.empty():  # the rest of the queue, in order, without a turn of the loop each
                await send_pending(pending.get_nowait())
            self.message_sent.set()

    async def flush(self) -> None:
        """Until the queue is empty: Faust's flush (`ProducerBuffer.flush` -> `flush_atmost`) gives up after 0.1 s
        without a record sent, so a stop could stop the producer with records still queued (they are then lost with
        "Cannot flush: Producer not Running")."""
        while self.size:
            if self.state != "running":
                raise RuntimeError("Cannot flush: Producer not Running")
            self.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), timeout=1.0)  # re-check the state each second


class DrainingProducer(AIOKafkaProducer):
    """Faust's aiokafka producer with a `DrainingProducerBuffer`, whose flush sends what lingers at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handing_over: asyncio.Future[None] | None = None  # the records of `hand_over`, the last call's
        if self.app.conf.producer_threaded:
            return  # the threaded producer drains its own queue
        buffer = DrainingProducerBuffer(loop=self.loop, beacon=self.beacon)
        buffer.app = self.app
        self.buffer = buffer

    def hand_over(self, topic: str, records: Records, delivered: Delivered | None = None) -> None:
        """Send `records` as whole aiokafka batches, one per partition (more when one fills up), skipping Faust's
        per-record path (a future, a queue entry and callbacks per record, on a live stream where nearly every event
        publishes a list). In the background, after what earlier calls handed over (so a partition's records keep
        their order); `flush` and `send_pending` wait for it, so a commit's flush still covers them. `delivered` is
        called with each batch's partition and last offset once the broker acknowledged it (what a table's
        changelog needs: `streams.internals.table_writes`)."""
        previous = self._handing_over
        self._handing_over = asyncio.ensure_future(self._send_batches(topic, records, delivered, previous))

    async def _send_batches(
        self, topic: str, records: Records, delivered: Delivered | None, previous: asyncio.Future[None] | None
    ) -> None:
        if previous is not None:
            await previous  # never raises: failures are logged
        try:
            producer = self._ensure_producer()
            for partition, pairs in records.items():
                builder, count = producer.create_batch(), 0
                for key, value in pairs:
                    if builder.append(key=key, value=value, timestamp=None) is None:  # full: send it, start anew
                        await _send_closed(producer, builder, topic, partition, count, delivered)
                        builder, count = producer.create_batch(), 0
                        builder.append(key=key, value=value, timestamp=None)  # a batch takes its first record
                    count += 1
                await _send_closed(producer, builder, topic, partition, count, delivered)
        except Exception:
            lost = sum(len(pairs) for pairs in records.values())
            log.exception("handing %d records for %s to the producer failed; they are lost", lost, topic)

    async def _handed_over(self) -> None:
        while self._handing_over is not None and not self._handing_over.done():
            await asyncio.shield(self._handing_over)

    async def flush(self) -> None:
        """Faust's flush (`faust.transport.drivers.aiokafka.Producer.flush`), but aiokafka's batches go now instead
        of after their linger: a flush waits for them anyway, and the worker sends its output at the end of every
        batch, where the linger was a large share of a live batch's time. The batches are closed as
        `aiokafka.producer.message_accumulator.MessageAccumulator.flush_for_commit` closes them for a transaction's
        commit; records sent meanwhile start new ones."""
        await self._handed_over()
        await self.buffer.flush()
        producer = self._producer
        if producer is not None and not self.app.conf.producer_threaded:
            await producer._message_accumulator.flush_for_commit()
        await super().flush()

    async def send_pending(self) -> asyncio.Future[None]:
        """Everything queued handed to aiokafka, its lingering batches closed and its sender woken (the requests
        leave within the next turns of the loop); returns the future of their acknowledgement."""
        await self._handed_over()
        await self.buffer.flush()
        producer = self._producer
        if producer is None or self.app.conf.producer_threaded:
            return asyncio.ensure_future(self.flush())
        acknowledged: asyncio.Future[None] = asyncio.ensure_future(producer._message_accumulator.flush_for_commit())
        await asyncio.sleep(0)  # its first step closes the batches and wakes the sender
        return acknowledged


async def _send_closed(
    producer: Any, builder: Any, topic: str, partition: int, count: int, delivered: Delivered | None
) -> None:
    """Queue a finished batch: closed, so it does not linger; a batch still open on its partition (records sent
    one by one) is closed too, since aiokafka queues a whole batch only once the one before it has left. Closing
    and waking the sender mirror `aiokafka.producer.message_accumulator.MessageAccumulator.flush_for_commit`
    (`batch._builder.close()`, `_waiter_future`); the queue is `MessageAccumulator._batches` (deques per
    partition)."""
    builder.close()
    accumulator = producer._message_accumulator
    for batch in accumulator._batches.get(TopicPartition(topic, partition), ()):
        batch._builder.close()
    if not accumulator._waiter_future.done():  # wake the sender: a closed batch is ready to leave
        accumulator._waiter_future.set_result(None)
    acknowledged = await producer.send_batch(builder, topic, partition=partition)

    def check(future: asyncio.Future[Any]) -> None:  # logged, as Faust's path logs a record's failure
        if future.cancelled():
            return
        if future.exception() is not None:
            log.error("a batch of records for %s was not delivered: %r", topic, future.exception())
        elif delivered is not None and count:
            delivered(partition, future.result().offset + count - 1)  # the batch's base offset, then one a record

    acknowledged.add_done_callback(check)
