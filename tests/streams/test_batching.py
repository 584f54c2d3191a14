"""Time-ordered batches: the pure merge, and a real worker reading a user's events from two topics in order."""

from __future__ import annotations

import asyncio
import gc
import math
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the helper importable

from worker_proc import (
    WorkerProcess,
    next_matching,
    play,
    publish_catalog,
    rating,
    user_id,
    worker_settings,
)

from streamrec.streams.internals.batching import (
    HOLD_MAX_S,
    BatchingConsumer,
    Bound,
    Held,
    gc_paused,
    take_in_time_order,
)
from streamrec.streams.kafka import JsonProducer, tail
from streamrec.streams.kafka.admin import PLAYS, RATINGS, RECOMMENDATIONS, SEARCHES
from streamrec.streams.kafka.groups import committed_offsets, end_offsets
from streamrec.streams.settings import Settings

RANK = {"searches": 0, "plays": 1, "ratings": 2}


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    timestamp: float

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


partition_timestamps = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5)), max_size=12)
partitions = st.tuples(st.sampled_from(sorted(RANK)), st.integers(0, 2))
bound_values = st.builds(
    Bound,
    st.integers(-1, 35).map(float) | st.just(-math.inf),
    st.integers(0, 6).map(float) | st.just(-math.inf),
)


def held_of(stamps: dict[tuple[str, int], list[tuple[int, int]]], sort_each: bool) -> dict[TP, deque[Held]]:
    return {
        TP(topic, partition): deque(
            Held(Rec(topic, partition, offset, float(ts)), read_ms)  # type: ignore[arg-type]
            for offset, (ts, read_ms) in enumerate(sorted(times) if sort_each else times)
        )
        for (topic, partition), times in stamps.items()
    }


@given(
    st.dictionaries(partitions, partition_timestamps, max_size=6),
    st.dictionaries(partitions, bound_values, max_size=6),
    st.booleans(),
    st.booleans(),
)
def test_a_record_goes_only_when_every_other_partition_is_known_to_hold_nothing_earlier(
    stamps: dict[tuple[str, int], list[tuple[int, int]]],
    bound_of: dict[tuple[str, int], Bound],
    waited: bool,
    sort_each: bool,
) -> None:
    held = held_of(stamps, sort_each)
    read_ms = {entry.message: entry.read_ms for queue in held.values() for entry in queue}
    bounds = {TP(*key): bound for key, bound in bound_of.items()}
    before = {tp: [entry.message for entry in queue] for tp, queue in held.items()}
    taken = take_in_time_order(held, RANK, bounds, waited=waited)
    for rec in taken:
        assert all(
            rec.timestamp <= bound.last_read_ts
            or read_ms[rec] < bound.caught_up_ms
            or (waited and bound.caught_up_ms > -math.inf)
            for tp, bound in bounds.items()
            if tp != rec.tp
        )
    for tp, records in before.items():
        mine = [rec for rec in taken if rec.tp == tp]
        assert mine == records[: len(mine)]  # a prefix of the partition, in its order
        assert [entry.message for entry in held.get(tp, ())] == records[len(mine) :]  # the rest is still held
    if sort_each:  # partitions in time order: the merge is in (timestamp, topic rank) order
        keys = [(rec.timestamp, RANK[rec.topic]) for rec in taken]
        assert keys == sorted(keys)
        if not bounds:  # nothing to wait for: everything goes
            assert not held


def test_equal_timestamps_go_in_topic_rank_order_and_a_partition_never_waits_for_itself() -> None:
    ratings, plays = TP("ratings", 0), TP("plays", 0)
    held = held_of({("ratings", 0): [(5, 0), (6, 0)], ("plays", 0): [(5, 0), (6, 0), (9, 0)]}, sort_each=True)
    # Both read up to their last records, neither confirmed caught up since: plays may go up to 6, ratings to 9.
    taken = take_in_time_order(held, RANK, {ratings: Bound(6.0), plays: Bound(9.0)})
    assert [(r.topic, r.timestamp) for r in taken] == [
        ("plays", 5.0),
        ("ratings", 5.0),
        ("plays", 6.0),
        ("ratings", 6.0),
    ]
    assert [(h.message.topic, h.timestamp) for q in held.values() for h in q] == [("plays", 9.0)]


def test_a_caught_up_partition_holds_back_only_records_read_after_its_last_fetch_answer() -> None:
    ratings, plays = TP("ratings", 0), TP("plays", 0)
    held = held_of({("plays", 0): [(7, 10), (8, 20)]}, sort_each=True)
    # ratings was read up to 5; a fetch answer processed at 15 ms showed it caught up: the play read at 10 ms
    # can't have a rating still coming that is stamped before it, the one read at 20 ms can.
    taken = take_in_time_order(held, RANK, {ratings: Bound(5.0, 15.0)})
    assert [r.timestamp for r in taken] == [7.0]
    waiting = held[plays][0].message
    # Nothing new to read for a while: a caught-up partition holds nothing back; one with more to read does.
    assert take_in_time_order(held, RANK, {ratings: Bound(5.0)}, waited=True) == []
    assert take_in_time_order(held, RANK, {ratings: Bound(5.0, 15.0)}, waited=True) == [waiting]


# -- a real worker ------------------------------------------------------------------------------------------------

USERS, ITEMS_EACH = 8, 10


@pytest.fixture
def settings(broker_settings: Settings, kafka_bootstrap: str, tmp_path: Path) -> Settings:
    # Small batches: a partition's records span many batches, so a topic read far ahead of the other shows.
    return worker_settings(
        broker_settings, tmp_path, app_id=f"batching-{uuid.uuid4().hex[:6]}", max_batch=16, coalesce=False
    )


async def test_a_users_play_and_rating_on_two_topics_are_applied_in_time_order(
    settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """All ratings are produced before all plays, each play stamped a millisecond before its rating; the
    worker starts after both, so it could read `ratings` far ahead of `plays`. One list per event (no
    coalescing) shows the order the worker applied them in: per user, play then rating, title after title."""
    await publish_catalog(kafka_bootstrap)
    users = [user_id("order") for _ in range(USERS)]
    items = [f"syn-{n:02d}" for n in range(10, 10 + ITEMS_EACH)]  # not the titles test_pipeline searches for
    # Not backdated: earlier tests' records in these topics are stamped with their send time, and the merge
    # relies on timestamps not decreasing within a partition (up to ~10 s ahead is within the future skew).
    start_ms = int(time.time() * 1000)
    expected: dict[str, list[str]] = {user: [] for user in users}
    names: dict[str, str] = {}  # event id -> "play 3" / "rating 3": a readable failure
    plays: list[tuple[str, dict[str, Any], int]] = []
    ratings: list[tuple[str, dict[str, Any], int]] = []
    for u, user in enumerate(users):
        for n, item in enumerate(items):
            at = start_ms + 1000 * n + 10 * u  # users interleave in time
            watched, rated = play(user, item), rating(user, item, 4.0)
            plays.append((user, watched, at))
            ratings.append((user, rated, at + 1))
            expected[user] += [f"play {n}", f"rating {n}"]
            names[watched["event_id"]], names[rated["event_id"]] = f"play {n}", f"rating {n}"
    async with JsonProducer(kafka_bootstrap) as producer:
        for topic, events in ((RATINGS, ratings), (PLAYS, plays)):
            for user, value, at in sorted(events, key=lambda e: e[2]):  # each topic in time order
                await producer.send(topic, value, key=user, timestamp_ms=at)
    keys = {user.encode() for user in users}
    async with tail(kafka_bootstrap, RECOMMENDATIONS) as records:
        worker = WorkerProcess(settings, tmp_path / "worker.log").start()
        try:
            await worker.wait_healthy()
            lists = await next_matching(records, lambda r: r.key in keys, count=2 * USERS * ITEMS_EACH)
        finally:
            assert worker.stop() == 0, worker.log_tail()
    applied: dict[str, list[str]] = {user: [] for user in users}
    for record in lists:
        body = record.json()
        applied[body["user_id"]] += [names[event_id] for event_id in body["event_ids"]]
    assert applied == expected


@dataclass
class _App:
    """What `BatchingConsumer._release` reads of the app."""

    batch_handlers: dict[str, Any]
    unordered: set[str]
    batch_rank: dict[str, int]
    max_batch: int = 100
    order_wait_s: float = 0.25


def _releasing_consumer(held: dict[TP, deque[Held]], bounds: dict[TP, Bound], loose: list[Rec]) -> Any:
    consumer: Any = BatchingConsumer.__new__(BatchingConsumer)  # the release logic only: no Kafka behind it
    consumer._held, consumer._loose, consumer._quiet_since = held, list(loose), None
    consumer._stalled_since = time.monotonic() - 10 * HOLD_MAX_S  # nothing went for long
    consumer._bounds = lambda app: bounds
    return consumer


def _handlers() -> _App:
    handlers = {topic: f"events:{topic}" for topic in RANK} | {"catalog": "validate"}
    return _App(handlers, {"catalog"}, dict(RANK))


def test_a_long_hold_goes_in_time_order_once_it_can(caplog: pytest.LogCaptureFixture) -> None:
    # A backlog read one partition after another: by the time the last is read, the stall timer has run out;
    # the records must still go in time order (no forced release).
    held = held_of({("ratings", 0): [(5, 0), (9, 0)], ("plays", 0): [(1, 0), (7, 0)]}, sort_each=True)
    bounds = {TP("ratings", 0): Bound(9.0), TP("plays", 0): Bound(7.0)}
    out = _releasing_consumer(held, bounds, [])._release(_handlers())
    assert [(m.topic, m.timestamp) for m in out["events:plays"]] == [("plays", 1.0), ("plays", 7.0)]
    assert [(m.topic, m.timestamp) for m in out["events:ratings"]] == [("ratings", 5.0)]  # 9 waits for plays
    assert "without waiting" not in caplog.text


def test_a_stalled_hold_is_released_anyway_and_unordered_topics_never_wait(caplog: pytest.LogCaptureFixture) -> None:
    held = held_of({("ratings", 0): [(5, 0)], ("plays", 0): [(6, 0)]}, sort_each=True)
    blocked = {TP("ratings", 0): Bound(-math.inf), TP("plays", 0): Bound(-math.inf)}  # neither read up to the other
    catalog = Rec("catalog", 0, 0, 99.0)
    out = _releasing_consumer(held, blocked, [catalog])._release(_handlers())
    assert out["validate"] == [catalog]
    assert [m.timestamp for m in out["events:ratings"] + out["events:plays"]] == [5.0, 6.0]
    assert "without waiting for the order across partitions (stalled)" in caplog.text


def test_gc_is_paused_for_a_batch_and_restored_as_it_was() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the inner block must not turn it back on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("a handler that raises")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def _consumed(metrics_text: bytes) -> float:
    total = 0.0
    for line in metrics_text.decode().splitlines():
        if line.startswith("streamrec_events_consumed_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_graceful_stop_finishes_the_batch_in_hand_and_commits_it(
    broker_settings: Settings, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """SIGTERM while the worker is handling one large batch (events of many viewers: a list each): the batch
    finishes within the grace period and its offsets are committed, so a restart would not handle it again."""
    await publish_catalog(kafka_bootstrap)
    async with JsonProducer(kafka_bootstrap) as producer:
        for n in range(20_000):
            user = user_id(f"stop{n}")
            await producer.send(PLAYS, play(user, f"syn-{n % 40:02d}"), key=user)
    settings = worker_settings(broker_settings, tmp_path, app_id=f"stop-{uuid.uuid4().hex[:6]}", stop_grace_s=60.0)
    proc = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        await proc.wait_healthy()
        async with asyncio.timeout(120):  # a guard against hanging, not a timing assertion
            while True:  # the batch has begun: its events are being learnt (then 20,000 lists are ranked)
                _, body = await proc.get("/metrics")
                if _consumed(body) > 0:
                    break
                await asyncio.sleep(0.05)
    finally:
        code = await proc.stop_async()
    assert code == 0
    assert "finishing the batch in hand" in proc.log_text()
    ends = await end_offsets(kafka_bootstrap, (RATINGS, PLAYS, SEARCHES))
    committed = await committed_offsets(kafka_bootstrap, settings.app_id, (RATINGS, PLAYS, SEARCHES))
    assert {tp: committed.get(tp) for tp in ends} == ends
