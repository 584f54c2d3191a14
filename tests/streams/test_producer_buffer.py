"""The worker's producer (`streams.producer_buffer`) against the session's noida-db broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from streams.batching import BatchingApp
from streams.kafka.admin import TopicSpec, create_topics
from streams.kafka.consumer import count_records
from streams.producer_buffer import DrainingProducer

pytestmark = pytest.mark.kafka

LINGER_S = 3.0  # far longer than a flush may take: a flush that waited for the linger would show


async def test_a_flush_sends_what_lingers_at_once_and_everything_arrives(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"pb-{uuid.uuid4().hex[:10]}"
    await create_topics(kafka_bootstrap, [TopicSpec(topic, 2)])
    app = BatchingApp(
        f"pb-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{kafka_bootstrap}",
        datadir=str(tmp_path),
        producer_linger=LINGER_S,
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
    )
    producer = app.producer
    assert isinstance(producer, DrainingProducer)
    await producer.start()
    try:
        for rounds in range(2):  # a second flush: the batches the first one closed do not take new records
            for n in range(50):
                await producer.send(topic, f"k{n}".encode(), b"v", partition=n % 2, timestamp=None, headers=None)
            started = time.monotonic()
            await asyncio.wait_for(producer.flush(), timeout=LINGER_S * 3)
            assert time.monotonic() - started < LINGER_S / 2  # Faust's flush waits out the linger: >= 3 s
            assert await count_records(kafka_bootstrap, topic) == 50 * (rounds + 1)
    finally:
        await producer.stop()


async def test_send_pending_sends_at_once_and_returns_the_acknowledgement(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"pb-{uuid.uuid4().hex[:10]}"
    await create_topics(kafka_bootstrap, [TopicSpec(topic, 2)])
    app = BatchingApp(
        f"pb-{uuid.uuid4().hex[:6]}",
        broker=f"kafka://{kafka_bootstrap}",
        datadir=str(tmp_path),
        producer_linger=LINGER_S,
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
    )
    producer = app.producer
    assert isinstance(producer, DrainingProducer)
    await producer.start()
    try:
        for n in range(50):
            await producer.send(topic, f"k{n}".encode(), b"v", partition=n % 2, timestamp=None, headers=None)
        acknowledged = await asyncio.wait_for(producer.send_pending(), timeout=LINGER_S / 2)
        await asyncio.wait_for(acknowledged, timeout=LINGER_S / 2)  # not after the linger
        assert await count_records(kafka_bootstrap, topic) == 50
    finally:
        await producer.stop()
