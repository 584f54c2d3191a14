"""Group-less topic readers for tests, the evaluator and tools: `read_all` (a bounded snapshot) and `tail`.

Both assign every partition directly (no consumer group, nothing committed) and read committed data only.
Offsets can have gaps (transaction markers, compaction), so progress is tracked by position, not by counting.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamrec.streams.internals.fetch_pacing import pace_consumer_fetches
from streamrec.streams.kafka.admin import describe_topics
from streamrec.streams.kafka.security import environment_security

_FETCH_MAX_BYTES = 32 * 1024 * 1024
_PARTITION_FETCH_MAX_BYTES = 8 * 1024 * 1024
TAIL_EMPTY_FETCH_PAUSE_S = 0.002


class TopicNotFoundError(LookupError):
    """The topic does not exist (readers never auto-create it)."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch
    key: bytes | None
    value: bytes | None  # None is a tombstone

    def json(self) -> Any:
        """The value decoded as JSON (raises orjson.JSONDecodeError on a tombstone or non-JSON)."""
        return orjson.loads(self.value or b"")


async def read_all(bootstrap: str, topic: str, *, timeout_s: float = 30.0) -> list[Record]:
    """Every record from the start of each partition up to its end as of this call, sorted by
    (partition, offset). Records produced meanwhile are left out, so the result is a consistent snapshot.

    Raises TopicNotFoundError for an unknown topic and TimeoutError if the end isn't reached in `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    partitions = await _partitions(bootstrap, topic)
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends: dict[Any, int] = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Record] = []
        unfinished = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while unfinished:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"read_all({topic!r}) got {len(records)} records, then timed out")
            batches = await consumer.getmany(*unfinished, timeout_ms=int(min(remaining, 1.0) * 1000))
            for tp, messages in batches.items():
                records.extend(_record(message) for message in messages if message.offset < ends[tp])
            unfinished = {tp for tp in unfinished if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    records.sort(key=lambda record: (record.partition, record.offset))
    return records


async def count_records(bootstrap: str, topic: str) -> int:
    """Records currently held by `topic` (end minus start offset, summed over partitions; an upper bound when
    offsets have gaps). Raises TopicNotFoundError for an unknown topic."""
    partitions = await _partitions(bootstrap, topic)
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        starts: dict[Any, int] = await consumer.beginning_offsets(partitions)
        ends: dict[Any, int] = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(max(ends[tp] - starts[tp], 0) for tp in partitions)


def tail(bootstrap: str, topic: str, *, from_end: bool = True) -> TopicTail:
    """Follow every partition of `topic`, yielding records as they arrive; best used as

        async with tail(bootstrap, "recommendations") as records:
            ...  # produce; records sent from here on will be seen
            async for record in records: ...

    `from_end` pins the start positions when entering the `async with` (or at the first iteration without
    it). Partitions added to the topic later are not followed.
    """
    return TopicTail(bootstrap, topic, from_end=from_end)


class TopicTail:
    def __init__(self, bootstrap: str, topic: str, *, from_end: bool) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._from_end = from_end
        self._consumer: Any = None
        self._buffer: deque[Record] = deque()

    async def start(self) -> None:
        if self._consumer is not None:
            return
        partitions = await _partitions(self._bootstrap, self._topic)
        consumer = _consumer(self._bootstrap)
        await consumer.start()
        # A caught-up tail polls; a broker answering "nothing new" at once (noida-db) would be asked thousands
        # of times a second, costing both processes CPU. Records are seen at most this much later.
        pace_consumer_fetches(consumer, TAIL_EMPTY_FETCH_PAUSE_S)
        consumer.assign(partitions)
        if self._from_end:
            await consumer.seek_to_end(*partitions)
        else:
            await consumer.seek_to_beginning(*partitions)
        for tp in partitions:  # resolve the positions now, not lazily at the first fetch
            await consumer.position(tp)
        self._consumer = consumer

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Record:
        await self.start()
        while not self._buffer:
            batches = await self._consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                self._buffer.extend(_record(message) for message in messages)
        return self._buffer.popleft()


async def _partitions(bootstrap: str, topic: str) -> list[Any]:
    counts = await describe_topics(bootstrap, [topic])
    if topic not in counts:
        raise TopicNotFoundError(f"topic {topic!r} does not exist at {bootstrap}")
    return [TopicPartition(topic, partition) for partition in range(counts[topic])]


def _consumer(bootstrap: str) -> Any:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="streamrec-reader",
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_bytes=_FETCH_MAX_BYTES,
        max_partition_fetch_bytes=_PARTITION_FETCH_MAX_BYTES,
        **environment_security(),
    )


def _record(message: Any) -> Record:
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp=message.timestamp,
        key=message.key,
        value=message.value,
    )
