"""Empty-fetch pacing against the session's noida-db broker (which answers an empty fetch at once)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamrec.streams.internals.fetch_pacing import pace_empty_fetches
from streamrec.streams.kafka.admin import TopicSpec, create_topics
from streamrec.streams.kafka.consumer import TAIL_EMPTY_FETCH_PAUSE_S, tail
from streamrec.streams.kafka.producer import JsonProducer

pytestmark = pytest.mark.kafka


async def _drained_consumer(bootstrap: str, topic: str) -> tuple[AIOKafkaConsumer, list[float]]:
    """A consumer at the end of `topic`, counting the fetches its fetcher sends (send times, monotonic)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, fetch_max_wait_ms=1500)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    await consumer.seek_to_end(tp)
    await consumer.position(tp)
    sent: list[float] = []
    fetcher: Any = consumer._fetcher
    fetch = fetcher._proc_fetch_request

    async def counting(assignment: Any, node_id: int, request: Any) -> bool:
        sent.append(time.monotonic())
        result: bool = await fetch(assignment, node_id, request)
        return result

    fetcher._proc_fetch_request = counting
    return consumer, sent


async def test_empty_answers_hold_the_next_fetch_and_data_still_arrives(kafka_bootstrap: str) -> None:
    topic = f"pace-{uuid.uuid4().hex[:10]}"
    await create_topics(kafka_bootstrap, [TopicSpec(topic, 1)])
    plain, plain_sent = await _drained_consumer(kafka_bootstrap, topic)
    paced, paced_sent = await _drained_consumer(kafka_bootstrap, topic)
    pace_empty_fetches(paced._fetcher, 0.05)  # type: ignore[attr-defined]
    try:
        plain_sent.clear()
        paced_sent.clear()
        await asyncio.sleep(1.0)
        # The broker answers an empty fetch at once: unpaced, fetches follow each other closer than 50 ms ...
        plain_gaps = [b - a for a, b in itertools.pairwise(plain_sent)]
        assert plain_gaps and min(plain_gaps) < 0.045
        # ... paced, never (lower bounds only: a slow machine makes gaps longer, not shorter).
        gaps = [b - a for a, b in itertools.pairwise(paced_sent)]
        assert gaps and min(gaps) >= 0.045

        async with JsonProducer(kafka_bootstrap) as producer:
            await producer.send(topic, {"n": 1}, key="k")
        async with asyncio.timeout(10):  # a guard against hanging, not a timing assertion
            got = await paced.getmany(timeout_ms=5000)
            while not got:
                got = await paced.getmany(timeout_ms=5000)
        assert [m.value for messages in got.values() for m in messages] == [b'{"n":1}']
    finally:
        await plain.stop()
        await paced.stop()


def test_a_zero_interval_leaves_the_fetcher_alone() -> None:
    class Fetcher:
        async def _proc_fetch_request(self, assignment: Any, node_id: int, request: Any) -> bool:
            return False

    fetcher = Fetcher()
    original = fetcher._proc_fetch_request
    pace_empty_fetches(fetcher, 0.0)
    assert fetcher._proc_fetch_request == original


async def test_a_caught_up_tail_does_not_poll_the_broker_flat_out(kafka_bootstrap: str) -> None:
    topic = f"pace-tail-{uuid.uuid4().hex[:10]}"
    await create_topics(kafka_bootstrap, [TopicSpec(topic, 2)])
    async with tail(kafka_bootstrap, topic) as records:
        fetcher: Any = records._consumer._fetcher
        paced = fetcher._proc_fetch_request
        sent: list[float] = []

        async def counting(assignment: Any, node_id: int, request: Any) -> bool:
            sent.append(time.monotonic())
            result: bool = await paced(assignment, node_id, request)
            return result

        fetcher._proc_fetch_request = counting
        await asyncio.sleep(0.5)
        gaps = [b - a for a, b in itertools.pairwise(sent)]
        assert gaps and min(gaps) >= TAIL_EMPTY_FETCH_PAUSE_S * 0.9  # unpaced, noida-db is asked again at once
        async with JsonProducer(kafka_bootstrap) as producer:
            await producer.send(topic, {"n": 2}, key="k")
        async with asyncio.timeout(10):  # a guard against hanging, not a timing assertion
            record = await anext(records)
        assert record.json() == {"n": 2}
