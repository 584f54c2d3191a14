"""The worker's producer (`streams.internals.producer_buffer`) against the session's noida-db broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streamrec.streams.internals.batching import BatchingApp
from streamrec.streams.internals.producer_buffer import DrainingProducer
from streamrec.streams.kafka.admin import TopicSpec, create_topics
from streamrec.streams.kafka.consumer import count_records, read_all

pytestmark = pytest.mark.kafka

LINGER_S = 60.0  # a producer's batches wait this long for more records, unless a flush sends them
NOT_LINGERING_S = LINGER_S / 3  # a generous bound for sending at once, far below the linger (not a speed test)


@contextlib.asynccontextmanager
async def lingering_producer(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[DrainingProducer]:
    """A started worker producer whose batches linger for `LINGER_S`."""
    app = BatchingApp(
        f"pb-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{kafka_bootstrap}",
        datadir=str(tmp_path),
        producer_linger=LINGER_S,
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
    )
    started = app.producer
    assert isinstance(started, DrainingProducer)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


async def _topic(bootstrap: str) -> str:
    name = f"pb-{uuid.uuid4().hex[:10]}"
    await create_topics(bootstrap, [TopicSpec(name, 2)])
    return name


async def _send(producer: DrainingProducer, topic: str, count: int) -> None:
    for n in range(count):
        await producer.send(topic, f"k{n}".encode(), b"v", partition=n % 2, timestamp=None, headers=None)


async def test_a_flush_sends_what_lingers_at_once_and_everything_arrives(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = await _topic(kafka_bootstrap)
    async with lingering_producer(kafka_bootstrap, tmp_path) as producer:
        for rounds in range(2):  # a second flush: the batches the first one closed do not take new records
            await _send(producer, topic, 50)
            await asyncio.wait_for(producer.flush(), timeout=NOT_LINGERING_S)  # Faust's waits out the linger
            assert await count_records(kafka_bootstrap, topic) == 50 * (rounds + 1)


async def test_send_pending_sends_at_once_and_returns_the_acknowledgement(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = await _topic(kafka_bootstrap)
    async with lingering_producer(kafka_bootstrap, tmp_path) as producer:
        await _send(producer, topic, 50)
        acknowledged = await asyncio.wait_for(producer.send_pending(), timeout=NOT_LINGERING_S)
        await asyncio.wait_for(acknowledged, timeout=NOT_LINGERING_S)  # not after the linger
        assert await count_records(kafka_bootstrap, topic) == 50


async def test_handed_over_records_arrive_in_order_and_a_flush_covers_them(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = await _topic(kafka_bootstrap)
    big = b"x" * 200_000  # three of these fill a 512 KiB batch: the rest goes in further batches, in order
    first = {0: [(f"a{n}".encode(), big) for n in range(7)], 1: [(b"b0", b"small")]}
    second = {0: [(b"a7", b"after")], 1: [(b"b1", b"after")]}
    async with lingering_producer(kafka_bootstrap, tmp_path) as producer:
        producer.hand_over(topic, first)
        producer.hand_over(topic, second)  # after the first, even while the first still waits for room
        await asyncio.wait_for(producer.flush(), timeout=NOT_LINGERING_S)  # covers both calls, not after the linger
        assert await count_records(kafka_bootstrap, topic) == 10
        records = await read_all(kafka_bootstrap, topic)
    by_partition: dict[int, list[bytes]] = {0: [], 1: []}
    for record in records:
        by_partition[record.partition].append(record.key)
    assert by_partition[0] == [f"a{n}".encode() for n in range(8)]
    assert by_partition[1] == [b"b0", b"b1"]


async def test_send_pending_covers_handed_over_records(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = await _topic(kafka_bootstrap)
    async with lingering_producer(kafka_bootstrap, tmp_path) as producer:
        producer.hand_over(topic, {0: [(b"k", b"v")] * 5, 1: [(b"k", b"v")] * 5})
        await _send(producer, topic, 10)  # and records through Faust's path alongside
        acknowledged = await asyncio.wait_for(producer.send_pending(), timeout=NOT_LINGERING_S)
        await asyncio.wait_for(acknowledged, timeout=NOT_LINGERING_S)
        assert await count_records(kafka_bootstrap, topic) == 20


async def test_a_failed_hand_over_is_logged_not_raised(
    kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with lingering_producer(kafka_bootstrap, tmp_path) as producer:
        producer.hand_over("x", {0: [("not bytes", b"v")]})  # type: ignore[list-item]
        await asyncio.wait_for(producer.flush(), timeout=NOT_LINGERING_S)
    assert "handing 1 records for x to the producer failed" in caplog.text
