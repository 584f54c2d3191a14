"""Faust's producer buffer, drained a loop turn at a time instead of a record per turn.

Table writes (changelog records) and `Topic.send_soon` (the lists) queue records in Faust's `ProducerBuffer`,
whose background task sends one record per turn of the event loop (await the queue, send, set an event). While
a batch is being handled the loop turns every ~20 ms (the handler yields that often), so a batch's lists and
changelog records left the worker at a few dozen a second, and Faust's commit, which flushes the buffer first
(waiting per record), took 10-50 s (seen as "Timer commit is overlapping" in freshness runs).
`DrainingProducerBuffer` sends everything queued in the turn it wakes up in, in queue order; sending only appends
to aiokafka's batches (it waits only when they are full), so order and delivery are as before: Faust's commit
still flushes the buffer and then the aiokafka producer before it commits offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from faust.transport.producer import ProducerBuffer
from mode import Service


class DrainingProducerBuffer(ProducerBuffer):
    @Service.task
    async def _handle_pending(self) -> None:  # replaces Faust's task of the same name (tasks go by name)
        pending = self.pending
        send_pending = self._send_pending
        while not self.should_stop:
            message = await pending.get()
            await send_pending(message)
            while not pending.empty():  # the rest of the queue, in order, without a turn of the loop each
                await send_pending(pending.get_nowait())
            self.message_sent.set()

    async def flush(self) -> None:
        """Until the queue is empty: Faust's flush gives up after 0.1 s without a record sent, so a stop could
        stop the producer with records still queued (they are then lost with "Cannot flush: Producer not
        Running")."""
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
        if self.app.conf.producer_threaded:
            return  # the threaded producer drains its own queue
        buffer = DrainingProducerBuffer(loop=self.loop, beacon=self.beacon)
        buffer.app = self.app
        self.buffer = buffer

    async def flush(self) -> None:
        """Faust's flush, but aiokafka's batches go now instead of after their linger: a flush waits for them
        anyway, and the worker flushes at the end of every batch (measured on a live stream: 7-10 ms of a
        15-25 ms batch, the linger being 5 ms of it). The batches are closed, as for a transaction's commit;
        records sent meanwhile start new ones."""
        await self.buffer.flush()
        producer = self._producer
        if producer is not None and not self.app.conf.producer_threaded:
            await producer._message_accumulator.flush_for_commit()
        await super().flush()

    async def send_pending(self) -> asyncio.Future[None]:
        """Everything queued handed to aiokafka, its lingering batches closed and its sender woken (the requests
        leave within the next turns of the loop); returns the future of their acknowledgement."""
        await self.buffer.flush()
        producer = self._producer
        if producer is None or self.app.conf.producer_threaded:
            return asyncio.ensure_future(self.flush())
        acknowledged: asyncio.Future[None] = asyncio.ensure_future(producer._message_accumulator.flush_for_commit())
        await asyncio.sleep(0)  # its first step closes the batches and wakes the sender
        return acknowledged
