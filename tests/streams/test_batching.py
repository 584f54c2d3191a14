"""Batches inside Faust: a real worker applies a user's events from two topics in time order, a graceful stop
finishes the batch in hand, the garbage collector is paused per batch. The merge itself: worker/test_time_order.py."""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

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

from streamrec.streams.internals.batching import gc_paused
from streamrec.streams.kafka import JsonProducer, tail
from streamrec.streams.kafka.admin import PLAYS, RATINGS, RECOMMENDATIONS, SEARCHES
from streamrec.streams.kafka.groups import committed_offsets, end_offsets
from streamrec.streams.settings import Settings

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
