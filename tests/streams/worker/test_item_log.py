"""The item-signal log: its records' codec and chunking, the fold's skipping of signals whose input record it folded
already, the processor's side (write, then fold back), and the feed folding a real log topic into an item side,
including a re-written batch and a worker started later (the restart)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import given
from hypothesis import strategies as st

from streamrec.models.cooccurrence import Cooccurrence
from streamrec.models.events import DAY_MS, CatalogItem
from streamrec.models.item_model import content_only_model
from streamrec.models.item_side import ItemSide
from streamrec.models.item_signals import ItemSignal
from streamrec.models.params import StreamParams
from streamrec.streams.kafka.admin import TopicSpec, create_topics
from streamrec.streams.worker import item_log
from streamrec.streams.worker.item_log import (
    SIGNALS_PER_RECORD,
    FoldOnce,
    ItemLog,
    ItemLogFeed,
    SignalOutbox,
    Source,
    decode_signals,
    encode_signals,
    item_signals_topic,
)
from streamrec.streams.worker.observability import Metrics

Entry = tuple[Source, ItemSignal]

# -- the records ---------------------------------------------------------------------------------------------------

sources = st.tuples(st.text(max_size=12), st.integers(0, 2**31 - 1), st.integers(0, 2**63 - 1))
signals = st.builds(
    ItemSignal,
    st.integers(-(2**63), 2**63 - 1),
    st.none() | st.text(max_size=10),
    st.lists(st.text(max_size=10), max_size=5).map(tuple),
    st.lists(st.integers(0, 1), max_size=81).map(tuple),  # the feedback on the blend, where there is some
)


@given(st.lists(st.tuples(sources, signals), max_size=30))
def test_signals_come_back_from_their_records_as_they_went_in(entries: list[Entry]) -> None:
    records = encode_signals(entries)
    assert [entry for record in records for entry in decode_signals(record)] == entries


def _entries(count: int, *, partitions: int = 3) -> list[Entry]:
    return [
        ((f"topic-{n % 2}", n % partitions, n), ItemSignal(DAY_MS + n, f"item-{n}" if n % 4 else None, ("a", "é")))
        for n in range(count)
    ]


def test_a_batch_is_cut_into_records_of_at_most_signals_per_record() -> None:
    entries = _entries(2 * SIGNALS_PER_RECORD + 1)
    records = encode_signals(entries)
    assert [len(decode_signals(record)) for record in records] == [SIGNALS_PER_RECORD, SIGNALS_PER_RECORD, 1]
    assert [entry for record in records for entry in decode_signals(record)] == entries
    assert encode_signals([]) == []
    assert len(encode_signals(entries[:SIGNALS_PER_RECORD])) == 1


def test_a_record_stays_under_the_producers_request_limit_whatever_the_item_ids() -> None:
    window = StreamParams().cooccurrence_window
    recent = tuple(str(uuid.UUID(int=k)) for k in range(window))
    entries = [
        (("streamrec-rekeyed", n % 4, n), ItemSignal(DAY_MS + n, str(uuid.UUID(int=n + window)), recent))
        for n in range(SIGNALS_PER_RECORD)
    ]
    records = encode_signals(entries)
    assert max(len(record) for record in records) <= 1_000_000
    assert [signal for record in records for _, signal in decode_signals(record)] == [s for _, s in entries]


def test_a_record_names_each_input_partition_once() -> None:
    entries = _entries(12, partitions=2)
    (record,) = encode_signals(entries)
    assert b'"sources":[["topic-0",0],["topic-1",1]]' in record  # n even: topic-0 partition 0; odd: topic-1, 1


# -- the fold's once-only --------------------------------------------------------------------------------------------


def test_a_redelivered_range_is_skipped_and_each_partition_moves_on_alone() -> None:
    once = FoldOnce()
    assert [once.first_time(("plays", 0, offset)) for offset in range(5)] == [True] * 5
    assert [once.first_time(("plays", 0, offset)) for offset in range(2, 5)] == [False] * 3  # a batch handled again
    assert once.first_time(("plays", 1, 0))  # another partition: its own offsets
    assert once.first_time(("ratings", 0, 3))  # another topic, same partition number
    assert not once.first_time(("ratings", 0, 3))
    assert [once.first_time(("plays", 0, offset)) for offset in (4, 5, 6)] == [False, True, True]
    assert not once.first_time(("plays", 1, 0))


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 2), st.integers(0, 20)), max_size=60))
def test_a_signal_is_folded_iff_its_offset_is_past_every_one_folded_on_its_partition(
    deliveries: list[Source],
) -> None:
    once = FoldOnce()
    highest: dict[tuple[str, int], int] = {}
    for topic, partition, offset in deliveries:
        expected = offset > highest.get((topic, partition), -1)
        assert once.first_time((topic, partition, offset)) is expected
        if expected:
            highest[(topic, partition)] = offset


# -- the processor's side --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []
        self.log_size = 0  # records in the log: this sender's only

    async def send(self, values: Sequence[bytes]) -> list[int]:
        self.sent.append(list(values))
        offsets = list(range(self.log_size, self.log_size + len(values)))
        self.log_size += len(values)
        return offsets


class CountingFeed:
    """Folds what was written as written when `next_in_log`, else is asked to read up to it."""

    def __init__(self, next_in_log: bool) -> None:
        self.next_in_log = next_in_log
        self.folded_as_written: list[list[int]] = []
        self.catch_ups: list[int] = []

    def fold_written(self, offsets: Sequence[int], values: Sequence[bytes]) -> bool:
        if self.next_in_log:
            self.folded_as_written.append(list(offsets))
        return self.next_in_log

    async def fold_up_to(self, end: int, timeout_s: float = 10.0) -> bool:
        self.catch_ups.append(end)
        return True


@pytest.mark.parametrize("next_in_log", [True, False])
async def test_a_batchs_signals_are_written_with_their_input_records_then_folded_back(next_in_log: bool) -> None:
    outbox, sender, feed = SignalOutbox(), RecordingSender(), CountingFeed(next_in_log)
    log = ItemLog(outbox, sender, feed)  # type: ignore[arg-type]
    log.at(Record("plays", 2, 40))  # type: ignore[arg-type]
    outbox.add(ItemSignal(1, "A", ()))
    log.at(Record("ratings", 0, 7))  # type: ignore[arg-type]
    outbox.add(ItemSignal(2))
    outbox.add(ItemSignal(3, "B", ("A",)))  # two signals of one record keep its source
    await log.publish()
    assert sender.sent == [
        encode_signals(
            [
                (("plays", 2, 40), ItemSignal(1, "A", ())),
                (("ratings", 0, 7), ItemSignal(2)),
                (("ratings", 0, 7), ItemSignal(3, "B", ("A",))),
            ]
        )
    ]
    # Folded as written when they are the next records of the log, else read back up to the batch's own record.
    assert (feed.folded_as_written, feed.catch_ups) == (([[0]], []) if next_in_log else ([], [1]))
    assert outbox.entries == []

    await log.publish()  # nothing learnt: nothing written, nothing to wait for
    log.at(Record("plays", 2, 41))  # type: ignore[arg-type]
    outbox.add(ItemSignal(4, "C", ()))
    log.drop()  # the batch failed: it is handled again, its signals with it
    await log.publish()
    assert len(sender.sent) == 1 and len(feed.folded_as_written) + len(feed.catch_ups) == 1


# -- the feed, against the session's broker ---------------------------------------------------------------------------

ITEMS = [CatalogItem(name, f"Film {name}", ("Drama",)) for name in "ABCD"]
BATCH: list[Entry] = [
    (("ratings", 0, 0), ItemSignal(DAY_MS, "A", ())),
    (("plays", 1, 0), ItemSignal(DAY_MS + 1, "B", ("A",))),
    (("ratings", 0, 1), ItemSignal(DAY_MS + 2)),  # a search or a repeat: moves the window only
    (("plays", 1, 1), ItemSignal(DAY_MS + 3, "C", ("A", "B"))),
]


def _side() -> ItemSide:
    side = ItemSide(StreamParams(), content_only_model())
    side.add_items([(item, 0) for item in ITEMS])
    side.position = 0
    return side


def _folded(entries: Sequence[Entry]) -> ItemSide:
    """The reference: the signals applied in order, each once."""
    side, once = _side(), FoldOnce()
    for source, signal in entries:
        if once.first_time(source):
            side.apply(signal, (side.position or 0) + 1)
    return side


def _counts(side: ItemSide) -> tuple[list[list[float]], list[float], list[int], int, int | None]:
    cooc = side.cooccurrence
    assert isinstance(cooc, Cooccurrence)
    n = len(ITEMS)
    counts = np.asarray(cooc.counts[:n, :n]).tolist()
    return counts, cooc.item_counts[:n].tolist(), side.trending.counts[:n].tolist(), side.trending.now, side.position


async def _log_topic(bootstrap: str) -> TopicSpec:
    spec = item_signals_topic(f"test-{uuid.uuid4().hex[:10]}")
    await create_topics(bootstrap, [spec])
    return spec


async def _write(bootstrap: str, topic: str, values: Sequence[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


async def _nothing() -> None:
    return None


def _feed(
    bootstrap: str, spec: TopicSpec, side: ItemSide, metrics: Metrics, after: Callable[[], Awaitable[None]] = _nothing
) -> ItemLogFeed:
    return ItemLogFeed(
        bootstrap, spec, side.apply, client_id=f"test-item-log-{uuid.uuid4().hex[:6]}", after=after, metrics=metrics
    )


@pytest.mark.kafka
async def test_the_feed_folds_the_log_skips_a_rewritten_batch_and_a_later_worker_rebuilds_the_state(
    kafka_bootstrap: str,
) -> None:
    spec = await _log_topic(kafka_bootstrap)
    await _write(kafka_bootstrap, spec.name, [*encode_signals(BATCH), b"not item signals"])
    side, metrics = _side(), Metrics()
    feed = _feed(kafka_bootstrap, spec, side, metrics)
    await feed.start()
    try:
        async with asyncio.timeout(60):  # a guard against hanging, not a timing assertion
            await feed.wait_ready()
        a, b, c = (side.catalog.row_of[name] for name in "ABC")
        counts, item_counts, trending, now, position = _counts(side)
        assert (counts[a][b], counts[a][c], counts[b][c], counts[b][a]) == (1.0, 1.0, 1.0, 1.0)
        assert item_counts == [1.0, 1.0, 1.0, 0.0] and trending == [1, 1, 1, 0]
        assert (now, position, feed.position, feed.duplicates) == (DAY_MS + 3, 4, 4, 0)
        assert _counts(side) == _counts(_folded(BATCH))
        assert metrics.registry.get_sample_value("streamrec_item_log_lag") == 0

        # The batch written again (a worker handled it again) and one new signal on a known partition.
        again = [*BATCH[2:], (("ratings", 0, 2), ItemSignal(DAY_MS + 4, "D", ("A",)))]
        await _write(kafka_bootstrap, spec.name, encode_signals(BATCH) + encode_signals(again))
        assert await feed.catch_up(timeout_s=60)  # returns once the new records are folded: no waiting here
        assert (feed.position, feed.duplicates) == (5, len(BATCH) + 2)
        assert _counts(side) == _counts(_folded(BATCH + BATCH + again))
        assert side.cooccurrence.item_counts[side.catalog.row_of["D"]] == 1.0
        assert metrics.registry.get_sample_value("streamrec_item_signals_duplicate_total") == len(BATCH) + 2
    finally:
        await feed.stop()

    # A worker started later (or restarted) reads the whole log: the same item state at the same position.
    later_side, later_metrics = _side(), Metrics()
    later = _feed(kafka_bootstrap, spec, later_side, later_metrics)
    await later.start()
    try:
        async with asyncio.timeout(60):
            await later.wait_ready()
        assert _counts(later_side) == _counts(side)
        assert (later.position, later.duplicates) == (feed.position, feed.duplicates)
    finally:
        await later.stop()


async def _idle(feed: ItemLogFeed) -> None:
    """Until the feed has paused its partitions (caught up: it waits for the end to move or to be asked)."""
    consumer = feed._consumer
    assert consumer is not None
    while set(consumer.paused()) != set(consumer.assignment()):
        await asyncio.sleep(0.01)


@pytest.mark.kafka
async def test_a_batch_folds_up_to_its_acknowledged_offset_without_asking_the_broker_for_the_end(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The processor knows where its batch's signals are from the acknowledgement: the feed fetches them at once
    (the idle feed's poll of the end is long here, so only the wake can fold them in time) and asks the broker for
    no end offsets. Offsets that never come make it give up and go back to polling, not fetch for ever."""
    monkeypatch.setattr(item_log, "FOLD_IDLE_POLL_S", 3600.0)
    spec = await _log_topic(kafka_bootstrap)
    side = _side()
    feed = _feed(kafka_bootstrap, spec, side, Metrics())
    await feed.start()
    try:
        async with asyncio.timeout(60):  # a guard against hanging, not a timing assertion
            await feed.wait_ready()
            await _idle(feed)
        consumer = feed._consumer
        assert consumer is not None
        await asyncio.sleep(0.5)  # the idle feed's first look at the end (the next is an hour away) is over
        asked = 0
        end_offsets = consumer.end_offsets

        async def counted_end_offsets(partitions: list[Any]) -> dict[Any, int]:
            nonlocal asked
            asked += 1
            return await end_offsets(partitions)

        monkeypatch.setattr(consumer, "end_offsets", counted_end_offsets)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            written = [await producer.send_and_wait(spec.name, value, partition=0) for value in encode_signals(BATCH)]
        finally:
            await producer.stop()
        end = written[-1].offset + 1
        assert await feed.fold_up_to(end, timeout_s=30)
        assert (asked, feed.position) == (0, len(BATCH))
        assert _counts(side) == _counts(_folded(BATCH))

        assert not await feed.fold_up_to(end + 5, timeout_s=0.5)  # never written
        assert feed._wanted == {}
        async with asyncio.timeout(30):
            await _idle(feed)  # not fetching for ever
    finally:
        await feed.stop()


@pytest.mark.kafka
async def test_records_a_worker_wrote_next_in_the_log_are_folded_as_written_and_not_read_back(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its own records, next in the log, are folded without a fetch and never folded again; a record another worker
    wrote in between makes it read them back instead, in log order. Either way: the state of folding the log."""
    monkeypatch.setattr(item_log, "FOLD_IDLE_POLL_S", 3600.0)  # nothing is fetched unless asked for
    spec = await _log_topic(kafka_bootstrap)
    side = _side()
    feed = _feed(kafka_bootstrap, spec, side, Metrics())
    await feed.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()

    async def write(entries: Sequence[Entry]) -> tuple[list[int], list[bytes]]:
        values = encode_signals(entries)
        written = [await producer.send_and_wait(spec.name, value, partition=0) for value in values]
        return [metadata.offset for metadata in written], values

    try:
        async with asyncio.timeout(60):  # a guard against hanging, not a timing assertion
            await feed.wait_ready()
            await _idle(feed)  # paused until asked: it fetches nothing on its own from here
        offsets, values = await write(BATCH[:2])
        assert feed.fold_written(offsets, values)  # next in the log: folded at once
        assert (feed.position, feed.duplicates) == (2, 0)
        assert _counts(side) == _counts(_folded(BATCH[:2]))

        await write(BATCH[2:3])  # another worker's record, then this worker's
        offsets, values = await write(BATCH[3:])
        assert not feed.fold_written(offsets, values)  # not next: nothing folded
        assert feed.position == 2
        assert await feed.fold_up_to(max(offsets) + 1, timeout_s=30)
        assert (feed.position, feed.duplicates) == (4, 0)  # the first two were not read back and folded again
        assert _counts(side) == _counts(_folded(BATCH))
    finally:
        await producer.stop()
        await feed.stop()


@pytest.mark.kafka
async def test_the_feed_folds_nothing_before_what_it_waits_for(kafka_bootstrap: str) -> None:
    spec = await _log_topic(kafka_bootstrap)
    await _write(kafka_bootstrap, spec.name, encode_signals(BATCH))
    catalog_loaded = asyncio.Event()

    async def catalog_ready() -> None:
        await catalog_loaded.wait()

    side = _side()
    feed = _feed(kafka_bootstrap, spec, side, Metrics(), after=catalog_ready)
    await feed.start()
    try:
        await asyncio.sleep(0.5)  # time for a fold that should not happen
        assert (feed.position, side.position, feed.ready) == (0, 0, False)
        catalog_loaded.set()
        async with asyncio.timeout(60):
            await feed.wait_ready()
        assert _counts(side) == _counts(_folded(BATCH))
    finally:
        await feed.stop()


def test_the_log_is_one_partition_kept_for_ever() -> None:
    spec = item_signals_topic("app", replication_factor=3)
    assert (spec.name, spec.partitions, spec.compacted, spec.replication_factor) == ("app-item-signals", 1, False, 3)
    assert spec.configs["retention.ms"] == "-1"
    assert item_log.item_signals_topic_name("app") == spec.name
