"""A small async JSON producer: dicts are serialized with orjson, keys are UTF-8 strings.

`send` only enqueues (records are batched per partition for throughput); `flush` waits for delivery and
raises the first delivery error since the previous flush, so `send`s plus one `flush` lose nothing silently.
Keys go through aiokafka's default murmur2 partitioner, the same as the Java client and Faust.

With `order_keys=True` one key's records reach a consumer of several topics in the order they were sent:
- each keyed record is stamped by a `KeyClock` (the producer's clock, never going back, and nudged forward a
  millisecond where needed so one key's records have distinct timestamps across topics), which a consumer
  merging topics by timestamp (the worker does: `streams.internals.batching`) follows;
- a key's record for another topic than the key's previous record waits until that one is acknowledged, so
  it is never on the broker (and in a fetch) before its predecessor. Real upstreams get this for free (a
  viewer's play and rating are seconds apart); a replay sends them back to back.
`total_order=True` also orders different keys' records (the end-to-end evaluation replays the exact stream).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import orjson
from aiokafka import AIOKafkaProducer

from streamrec.streams.kafka.security import environment_security


class DeliveryError(RuntimeError):
    """At least one record sent since the previous flush was not acknowledged by the broker."""


class KeyClock:
    """Epoch-millisecond timestamps that never go back and strictly increase per key: the clock, nudged forward
    a millisecond where a key's previous record already took it (a consumer merging partitions by timestamp
    needs each partition's timestamps in order, and one key's distinct). `total=True`: strictly increasing
    across all keys too, so such a consumer follows the send order exactly (faster than 1,000 records/s the
    stamps run ahead of the clock)."""

    def __init__(self, now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000, *, total: bool = False) -> None:
        self._now_ms = now_ms
        self._step = 1 if total else 0
        self._latest = -1
        self._last: dict[str, int] = {}

    def stamp(self, key: str) -> int:
        stamp = max(self._now_ms(), self._latest + self._step, self._last.get(key, -1) + 1)
        self._latest = self._last[key] = stamp
        return stamp


class JsonProducer:
    def __init__(
        self,
        bootstrap: str,
        *,
        linger_ms: int = 5,
        max_batch_size: int = 256 * 1024,
        acks: int | str = "all",
        compression_type: str | None = None,  # zstd is cheapest per byte saved; lz4 here is level 9 (slow)
        client_id: str = "streamrec-producer",
        order_keys: bool = False,
        total_order: bool = False,
    ) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            linger_ms=linger_ms,
            max_batch_size=max_batch_size,
            acks=acks,
            compression_type=compression_type,
            **environment_security(),
        )
        self._key_clock = KeyClock(total=total_order) if order_keys else None
        self._last_of_key: dict[str, tuple[str, asyncio.Future[Any]]] = {}  # with order_keys: topic, delivery
        self._pending: set[asyncio.Future[Any]] = set()
        self._first_error: BaseException | None = None
        self._failed = 0

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        """Deliver what is buffered, then close; delivery errors are raised by `flush`, not here."""
        await self._producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                await self.flush()
        finally:
            await self.stop()

    async def send(
        self,
        topic: str,
        value: Mapping[str, Any] | bytes | None,
        key: str | None = None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Enqueue one record. `value` None is a tombstone (deletes `key` from a compacted topic).

        Waits only when the partition's batch buffer is full (backpressure), not for delivery.
        """
        payload = value if value is None or isinstance(value, bytes) else orjson.dumps(value)
        clock = self._key_clock if key is not None else None
        if key is not None and clock is not None:
            previous = self._last_of_key.get(key)
            if previous is not None and previous[0] != topic and not previous[1].done():
                await asyncio.wait([previous[1]])  # its failure, if any, is raised by `flush`
            if timestamp_ms is None:
                timestamp_ms = clock.stamp(key)
        future: asyncio.Future[Any] = await self._producer.send(
            topic,
            value=payload,
            key=None if key is None else key.encode(),
            partition=partition,
            timestamp_ms=timestamp_ms,
        )
        self._pending.add(future)
        future.add_done_callback(self._on_delivered)
        if key is not None and clock is not None:
            self._last_of_key[key] = (topic, future)

    async def flush(self) -> None:
        """Wait until every record sent so far is acknowledged; raise DeliveryError if any was not."""
        await self._producer.flush()
        if self._pending:
            await asyncio.wait(set(self._pending))
        if self._first_error is not None:
            error, failed = self._first_error, self._failed
            self._first_error, self._failed = None, 0
            raise DeliveryError(f"{failed} record(s) were not delivered: {error!r}") from error

    def _on_delivered(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if future.cancelled():
            error: BaseException | None = asyncio.CancelledError("send cancelled")
        else:
            error = future.exception()
        if error is not None:
            self._failed += 1
            self._first_error = self._first_error or error
