"""The catalog feed against the session's broker: the whole catalog applied a turn at a time, bad records
skipped and counted, and an item whose batch fails still applied with the rest of its batch one by one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamrec.models.catalog import Catalog
from streamrec.models.events import CatalogItem
from streamrec.streams.kafka.admin import TopicSpec, create_topics
from streamrec.streams.worker import catalog_feed
from streamrec.streams.worker.catalog_feed import CatalogFeed

pytestmark = pytest.mark.kafka


async def _catalog_topic(bootstrap: str, items: int, bad: Sequence[tuple[bytes, bytes | None]] = ()) -> str:
    topic = f"feed-{uuid.uuid4().hex[:10]}"
    await create_topics(bootstrap, [TopicSpec(topic, 4)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for n in range(items):
            value = {"item_id": f"i{n}", "title": f"Title {n}", "genres": ["Drama" if n % 2 else "Comedy"]}
            await producer.send(topic, orjson.dumps(value), key=f"i{n}".encode())
        for key, raw in bad:
            await producer.send(topic, raw, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return topic


async def _load(bootstrap: str, topic: str, apply: Callable[[Sequence[tuple[CatalogItem, int]]], None]) -> CatalogFeed:
    feed = CatalogFeed(bootstrap, topic, apply)
    await feed.start()
    try:
        async with asyncio.timeout(60):  # a guard against hanging, not a timing assertion
            await feed.wait_ready()
    finally:
        await feed.stop()
    return feed


async def test_the_whole_catalog_is_applied_a_turn_at_a_time_and_bad_records_are_counted(
    kafka_bootstrap: str,
) -> None:
    bad = [
        (b"x1", b"{not json"),
        (b"x2", orjson.dumps({"item_id": "x2"})),  # no title
        (b"x3", None),  # a tombstone
        (b"x4", orjson.dumps({"item_id": "i5", "title": "Not i5"})),  # keyed by another item
    ]
    topic = await _catalog_topic(kafka_bootstrap, 3_000, bad)
    catalog = Catalog()
    batches: list[int] = []

    def apply(items: Sequence[tuple[CatalogItem, int]]) -> None:
        batches.append(len(items))
        catalog.upsert_many(items)

    feed = await _load(kafka_bootstrap, topic, apply)
    assert (feed.applied, feed.skipped) == (3_000, len(bad))
    assert len(catalog) == 3_000 and catalog.items[catalog.row_of["i17"]].title == "Title 17"
    assert catalog.items[catalog.row_of["i5"]].title == "Title 5"
    assert max(batches) <= catalog_feed.RECORDS_PER_TURN < 3_000  # the event loop got turns in between
    assert min(catalog.added_ts) > 0  # each item carries its record's timestamp


async def test_an_item_that_fails_its_batch_does_not_take_the_rest_of_the_batch_with_it(
    kafka_bootstrap: str,
) -> None:
    topic = await _catalog_topic(kafka_bootstrap, 800)
    catalog = Catalog()

    def apply(items: Sequence[tuple[CatalogItem, int]]) -> None:
        if any(item.item_id == "i7" for item, _ in items):
            raise RuntimeError("an item the model can't take")
        catalog.upsert_many(items)

    feed = await _load(kafka_bootstrap, topic, apply)
    assert (feed.applied, feed.skipped) == (799, 1)
    assert "i7" not in catalog and len(catalog) == 799


async def test_tombstones_remove_items_in_the_order_of_the_records(kafka_bootstrap: str) -> None:
    """An item removed, one removed and published again: the feed applies upserts and removals as they come."""
    back = orjson.dumps({"item_id": "i1", "title": "Back Again"})
    topic = await _catalog_topic(kafka_bootstrap, 5, [(b"i1", None), (b"i2", None), (b"i1", back)])
    catalog = Catalog()
    removals: list[list[str]] = []

    def remove(item_ids: Sequence[str]) -> None:
        removals.append(list(item_ids))
        catalog.remove(item_ids)

    feed = CatalogFeed(kafka_bootstrap, topic, catalog.upsert_many, remove=remove)
    await feed.start()
    try:
        async with asyncio.timeout(60):  # a guard against hanging, not a timing assertion
            await feed.wait_ready()
    finally:
        await feed.stop()
    assert (feed.applied, feed.removed, feed.skipped) == (6, 2, 0)
    assert sorted(item_id for batch in removals for item_id in batch) == ["i1", "i2"]
    assert "i2" not in catalog and "i1" in catalog and catalog.items[catalog.row_of["i1"]].title == "Back Again"
    assert {"i0", "i3", "i4"} <= {item.item_id for item in catalog.items}


async def test_a_feed_caught_up_pauses_its_partitions_and_still_applies_what_comes_later(kafka_bootstrap: str) -> None:
    """Left fetching, a caught-up feed's fetcher would ask again and again (noida-db answers an empty fetch at
    once) for as long as `getmany` waits (500 ms): it pauses as soon as it holds what its last fetch reported."""
    topic = await _catalog_topic(kafka_bootstrap, 50)
    catalog = Catalog()
    feed = CatalogFeed(kafka_bootstrap, topic, catalog.upsert_many)
    await feed.start()
    try:
        async with asyncio.timeout(60):  # a guard against hanging, not a timing assertion
            await feed.wait_ready()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            value = {"item_id": "late", "title": "Late", "genres": ["Drama"]}
            await producer.send_and_wait(topic, orjson.dumps(value), key=b"late")
        finally:
            await producer.stop()
        assert await feed.catch_up()
        assert "late" in catalog.row_of
        consumer = feed._consumer
        assert consumer is not None
        partitions = set(consumer.assignment())
        deadline = asyncio.get_running_loop().time() + 0.25  # well inside getmany's 500 ms wait
        while set(consumer.paused()) != partitions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert set(consumer.paused()) == partitions
    finally:
        await feed.stop()
