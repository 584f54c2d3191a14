"""JSON producer and group-less readers against the session's noida-db broker."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import defaultdict

import orjson
import pytest
from aiokafka.partitioner import murmur2

from streamrec.streams.kafka.admin import TopicSpec, create_topics, list_topics
from streamrec.streams.kafka.consumer import Record, TopicNotFoundError, read_all, tail
from streamrec.streams.kafka.producer import DeliveryError, JsonProducer, KeyClock

pytestmark = pytest.mark.kafka

_PARTITIONS = 4


async def _new_topic(bootstrap: str, partitions: int = _PARTITIONS) -> str:
    name = f"pc-{uuid.uuid4().hex[:10]}"
    await create_topics(bootstrap, [TopicSpec(name, partitions)])
    return name


async def _next(records: object, count: int) -> list[Record]:
    async with asyncio.timeout(30):  # a guard against hanging, not a timing assertion
        return [await anext(records) for _ in range(count)]  # type: ignore[call-overload]


async def test_keyed_json_records_come_back_intact_and_partitioned_by_key(kafka_bootstrap: str) -> None:
    topic = await _new_topic(kafka_bootstrap)
    users = [f"u{n}" for n in range(25)]
    sent = [{"user_id": users[n % len(users)], "seq": n, "rating": n / 10} for n in range(500)]

    async with JsonProducer(kafka_bootstrap) as producer:
        for value in sent:
            await producer.send(topic, value, key=str(value["user_id"]))
    records = await read_all(kafka_bootstrap, topic, timeout_s=30)

    assert len(records) == len(sent)
    assert sorted(r.json()["seq"] for r in records) == list(range(500))
    partitions_by_key: dict[bytes | None, set[int]] = defaultdict(set)
    for record in records:
        assert record.topic == topic
        assert record.key == record.json()["user_id"].encode()
        partitions_by_key[record.key].add(record.partition)
    assert all(len(partitions) == 1 for partitions in partitions_by_key.values())
    # the Java client's (and Faust's) murmur2 partitioning, so other clients agree on where a user lives
    for key, partitions in partitions_by_key.items():
        assert key is not None
        assert partitions == {(murmur2(key) & 0x7FFFFFFF) % _PARTITIONS}
    assert len({r.partition for r in records}) == _PARTITIONS


async def test_records_of_one_key_keep_their_order(kafka_bootstrap: str) -> None:
    topic = await _new_topic(kafka_bootstrap)

    async with JsonProducer(kafka_bootstrap) as producer:
        for n in range(200):
            await producer.send(topic, {"seq": n}, key=f"user-{n % 3}")
    records = await read_all(kafka_bootstrap, topic, timeout_s=30)

    seqs_by_key: dict[bytes | None, list[int]] = defaultdict(list)
    for record in records:  # read_all sorts by (partition, offset)
        seqs_by_key[record.key].append(record.json()["seq"])
    assert len(seqs_by_key) == 3
    assert all(seqs == sorted(seqs) and len(seqs) > 60 for seqs in seqs_by_key.values())


async def test_bytes_tombstones_unkeyed_records_and_timestamps_pass_through(kafka_bootstrap: str) -> None:
    topic = await _new_topic(kafka_bootstrap, partitions=1)

    async with JsonProducer(kafka_bootstrap) as producer:
        await producer.send(topic, b"\x00raw", key="a", timestamp_ms=893_000_000_000)
        await producer.send(topic, None, key="a")
        await producer.send(topic, {"no": "key"})
    records = await read_all(kafka_bootstrap, topic, timeout_s=30)

    assert [(r.key, r.value) for r in records] == [(b"a", b"\x00raw"), (b"a", None), (None, b'{"no":"key"}')]
    assert records[0].timestamp == 893_000_000_000
    assert [r.offset for r in records] == [0, 1, 2]


async def test_read_all_of_an_empty_topic_is_empty(kafka_bootstrap: str) -> None:
    topic = await _new_topic(kafka_bootstrap)

    assert await read_all(kafka_bootstrap, topic, timeout_s=10) == []


async def test_reading_an_unknown_topic_fails_without_creating_it(kafka_bootstrap: str) -> None:
    topic = f"missing-{uuid.uuid4().hex[:10]}"

    with pytest.raises(TopicNotFoundError):
        await read_all(kafka_bootstrap, topic, timeout_s=10)
    with pytest.raises(TopicNotFoundError):
        await tail(kafka_bootstrap, topic).start()
    assert topic not in await list_topics(kafka_bootstrap)


async def test_tail_from_the_end_sees_only_new_records(kafka_bootstrap: str) -> None:
    topic = await _new_topic(kafka_bootstrap)
    async with JsonProducer(kafka_bootstrap) as producer:
        await producer.send(topic, {"old": True}, key="k")
        await producer.flush()  # delivered before the tail reads the end offsets (send only enqueues)

        async with tail(kafka_bootstrap, topic, from_end=True) as records:
            for n in range(3):
                await producer.send(topic, {"n": n}, key=f"k{n}")
            await producer.flush()
            received = await _next(records, 3)

    assert sorted(orjson.loads(r.value or b"")["n"] for r in received) == [0, 1, 2]


async def test_tail_from_the_beginning_replays_then_follows(kafka_bootstrap: str) -> None:
    topic = await _new_topic(kafka_bootstrap, partitions=1)
    async with JsonProducer(kafka_bootstrap) as producer:
        await producer.send(topic, {"n": 0}, key="k")
        await producer.flush()

        async with tail(kafka_bootstrap, topic, from_end=False) as records:
            first = await _next(records, 1)
            await producer.send(topic, {"n": 1}, key="k")
            await producer.flush()
            second = await _next(records, 1)

    assert [r.json()["n"] for r in first + second] == [0, 1]


async def test_a_record_the_broker_refuses_fails_the_flush(kafka_bootstrap: str) -> None:
    topic = f"small-{uuid.uuid4().hex[:10]}"
    await create_topics(kafka_bootstrap, [TopicSpec(topic, 1, configs={"max.message.bytes": "1000"})])

    with pytest.raises(DeliveryError, match="1 record"):
        async with JsonProducer(kafka_bootstrap) as producer:
            await producer.send(topic, {"fits": True}, key="k")
            await producer.flush()  # else both share a batch, and the broker refuses the whole batch
            await producer.send(topic, {"too_big": "x" * 5000}, key="k")

    assert [r.json() for r in await read_all(kafka_bootstrap, topic, timeout_s=10)] == [{"fits": True}]


def test_key_clock_never_goes_back_and_strictly_increases_per_key() -> None:
    now = iter([100, 100, 100, 100, 250, 90, 90])
    clock = KeyClock(now_ms=lambda: next(now))
    assert [clock.stamp("a"), clock.stamp("a"), clock.stamp("b"), clock.stamp("a")] == [100, 101, 101, 102]
    assert clock.stamp("a") == 250  # the clock moved past: back on it
    assert clock.stamp("b") == 250  # the clock went back: stamps don't
    assert clock.stamp("b") == 251


def test_a_total_key_clock_strictly_increases_across_keys() -> None:
    clock = KeyClock(now_ms=lambda: 100, total=True)
    assert [clock.stamp(key) for key in "abab"] == [100, 101, 102, 103]


async def test_order_keys_puts_the_stamps_on_the_records(kafka_bootstrap: str) -> None:
    first, second = await _new_topic(kafka_bootstrap), await _new_topic(kafka_bootstrap)
    async with tail(kafka_bootstrap, first) as a, tail(kafka_bootstrap, second) as b:
        async with JsonProducer(kafka_bootstrap, order_keys=True) as producer:
            for n in range(20):
                await producer.send(first if n % 2 else second, {"n": n}, key="same-user")
        records = await _next(a, 10) + await _next(b, 10)
    stamps = [record.timestamp for record in sorted(records, key=lambda r: r.json()["n"])]
    assert all(later > earlier for earlier, later in itertools.pairwise(stamps))


@pytest.mark.parametrize("codec", ["gzip", "lz4", "zstd", "snappy"])
async def test_every_offered_codec_round_trips_through_the_broker(kafka_bootstrap: str, codec: str) -> None:
    # The worker's STREAMREC_COMPRESSION choices: each must be accepted by the broker and read back by aiokafka.
    topic = await _new_topic(kafka_bootstrap, partitions=1)
    sent = [{"user_id": f"u{n % 7}", "seq": n, "items": ["x" * 40] * 10} for n in range(200)]

    async with JsonProducer(kafka_bootstrap, compression_type=codec) as producer:
        for value in sent:
            await producer.send(topic, value, key=str(value["user_id"]))
    records = await read_all(kafka_bootstrap, topic, timeout_s=30)

    assert [r.json() for r in records] == sent
