"""Replay: checkpoint rules (no broker); delivery, keys, resume and lockstep against the session broker."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from streamrec.models.dataset import Dataset
from streamrec.models.events import CatalogItem, Rating, Search, UserEvent, parse_catalog_item, parse_user_event
from streamrec.models.simulate import event_stream
from streamrec.streams.kafka import JsonProducer, Record, read_all, tail
from streamrec.streams.settings import Settings
from streamrec.streams.tools.replay import (
    Checkpoint,
    LockstepTimeoutError,
    ReplayError,
    ReplayOptions,
    ReplayResult,
    ReplayTopics,
    StreamOptions,
    replay,
    starting_point,
)

GENRES = (("Action", "Sci-Fi"), ("Comedy",), ("Drama", "Romance"), ("Horror",))
ITEMS = tuple(
    CatalogItem(str(n), f"Film Number {n} Of Ten", GENRES[n % 4], (f"fb:m.d{n % 3}",), 5400 + 60 * n, 1990 + n)
    for n in range(1, 11)
)
RATINGS = tuple(
    Rating(f"tiny:r:{n}", f"u{n % 6}", str(n % 10 + 1), float(n % 5 + 1), 1_000_000_000_000 + 60_000 * (n // 2))
    for n in range(1, 41)
)
TAGS = (Search("tiny:t:1", "u1", "robots", 1_000_000_300_000, "1"),)
DATASET = Dataset("tiny", ITEMS, RATINGS, TAGS)
STREAM = StreamOptions(plays=True, searches=True, seed=3, search_rate=0.5)
KIND_OF_ROLE = {"ratings": "ratings", "plays": "plays", "searches": "searches"}


def unique_topics() -> ReplayTopics:
    suffix = uuid.uuid4().hex[:8]
    return ReplayTopics(*(f"replay-{role}-{suffix}" for role in asdict(ReplayTopics())))


def stream_events() -> list[UserEvent]:
    return event_stream(DATASET, plays=True, searches=True, seed=STREAM.seed, search_rate=STREAM.search_rate)


# --- checkpoint rules (no broker) ---------------------------------------------------------------------------


def checkpoint(**changes: Any) -> Checkpoint:
    base = Checkpoint(
        dataset="tiny",
        options=asdict(STREAM),
        fingerprint="f",
        stream_events=100,
        catalog_sent=True,
        acknowledged=40,
        bootstrap_servers="b:9092",
        topics=asdict(ReplayTopics()),
    )
    return replace(base, **changes)


def test_checkpoint_round_trips_and_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    checkpoint().save(path)
    assert Checkpoint.load(path) == checkpoint()
    assert Checkpoint.load(tmp_path / "absent.json") is None
    path.write_text("{not json")
    with pytest.raises(ReplayError, match=r"unreadable.*--from-start"):
        Checkpoint.load(path)


def test_starting_point_rules(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    fresh = checkpoint(catalog_sent=False, acknowledged=0)
    unfinished = checkpoint()
    finished = checkpoint(acknowledged=100)
    other = checkpoint(options=asdict(replace(STREAM, seed=4)))

    assert starting_point(None, fresh, None, path) is fresh
    assert starting_point(unfinished, fresh, True, path) is unfinished
    assert starting_point(unfinished, fresh, False, path) is fresh
    assert starting_point(finished, fresh, None, path) is fresh  # a finished replay may run again
    assert starting_point(other, fresh, None, path) is fresh  # another replay's checkpoint is not ours
    with pytest.raises(ReplayError, match=r"40 of 100 events sent\): pass --resume .* or --from-start"):
        starting_point(unfinished, fresh, None, path)
    with pytest.raises(ReplayError, match=r"belongs to another replay.*--from-start"):
        starting_point(other, fresh, True, path)


def test_topics_by_event_kind_and_specs(broker_settings: Settings) -> None:
    topics = unique_topics()
    kinds = {type(e).__name__: topics.of(e) for e in stream_events()}
    assert kinds == {"Rating": topics.ratings, "Play": topics.plays, "Search": topics.searches}
    specs = {spec.name: spec for spec in topics.specs(broker_settings)}
    assert set(specs) == {
        topics.catalog,
        topics.ratings,
        topics.plays,
        topics.searches,
        topics.recommendations,
    }
    assert specs[topics.catalog].compacted and not specs[topics.ratings].compacted
    assert all(spec.partitions == broker_settings.partitions for spec in specs.values())


# --- against the broker -------------------------------------------------------------------------------------


async def run(
    settings: Settings,
    topics: ReplayTopics,
    path: Path,
    *,
    on_sent: Callable[[int], None] | None = None,
    **options: Any,
) -> ReplayResult:
    return await replay(
        DATASET,
        bootstrap=settings.bootstrap_servers,
        settings=settings,
        checkpoint_path=path,
        stream=STREAM,
        options=ReplayOptions(**options),
        topics=topics,
        on_sent=on_sent,
    )


async def events_on(bootstrap: str, topics: ReplayTopics) -> dict[str, list[Record]]:
    return {role: await read_all(bootstrap, getattr(topics, role)) for role in KIND_OF_ROLE}


def event_ids(records: dict[str, list[Record]]) -> Counter[str]:
    return Counter(r.json()["event_id"] for rs in records.values() for r in rs)


@pytest.mark.kafka
async def test_replay_delivers_catalog_and_events_keyed_and_timestamped(
    kafka_bootstrap: str, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings, topics, expected = settings_factory(), unique_topics(), stream_events()

    result = await run(settings, topics, tmp_path / "c.json")

    assert (result.total, result.skipped, result.sent, result.catalog_items) == (
        len(expected),
        0,
        len(expected),
        10,
    )
    catalog = await read_all(kafka_bootstrap, topics.catalog)
    assert sorted((r.key or b"").decode() for r in catalog) == sorted(item.item_id for item in ITEMS)
    assert {parse_catalog_item(r.value or b"") for r in catalog} == set(ITEMS)

    by_id = {e.event_id: e for e in expected}
    records = await events_on(kafka_bootstrap, topics)
    assert event_ids(records) == Counter(e.event_id for e in expected)  # every event exactly once
    for role, kind in KIND_OF_ROLE.items():
        sequence_of_user: dict[str, list[int]] = defaultdict(list)
        for record in sorted(records[role], key=lambda r: (r.partition, r.offset)):
            event = by_id[record.json()["event_id"]]
            parsed = parse_user_event(
                kind,
                record.value or b"",
                key=record.key,
                record_ts_ms=record.timestamp,
                now_ms=2_000_000_000_000,
                item_exists=lambda item_id: True,
            )
            assert parsed == event
            assert record.key == event.user_id.encode()
            assert record.timestamp > event.ts  # produce time; the event time is the payload's ts
            sequence_of_user[event.user_id].append(expected.index(event))
        assert all(seq == sorted(seq) for seq in sequence_of_user.values())  # each user's events in order
    assert sum(len(rs) for rs in records.values()) > len(RATINGS) * 2  # plays and searches went out too


@pytest.mark.kafka
async def test_resume_continues_after_the_acknowledged_events(
    kafka_bootstrap: str, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings, topics, expected = settings_factory(), unique_topics(), stream_events()
    path = tmp_path / "c.json"

    first = await run(settings, topics, path, limit=25)
    assert (first.sent, first.catalog_items) == (25, 10)
    saved = Checkpoint.load(path)
    assert saved is not None and saved.acknowledged == 25 and saved.catalog_sent
    with pytest.raises(ReplayError, match="unfinished replay"):
        await run(settings, topics, path)  # neither --resume nor --from-start

    second = await run(settings, topics, path, resume=True)

    assert (second.skipped, second.sent, second.catalog_items) == (25, len(expected) - 25, 0)
    assert event_ids(await events_on(kafka_bootstrap, topics)) == Counter(e.event_id for e in expected)
    assert len(await read_all(kafka_bootstrap, topics.catalog)) == len(ITEMS)  # the catalog was not re-sent

    path.write_text("{damaged")
    again = await run(settings, topics, path, resume=False, limit=5)  # --from-start ignores the checkpoint
    assert (again.skipped, again.sent, again.catalog_items) == (0, 5, 10)
    assert sum(event_ids(await events_on(kafka_bootstrap, topics)).values()) == len(expected) + 5


@pytest.mark.kafka
async def test_an_interrupted_replay_resumes_without_losing_events(
    kafka_bootstrap: str, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings, topics, expected = settings_factory(), unique_topics(), stream_events()
    path = tmp_path / "c.json"
    sent = 0

    def interrupt_after_ten(n: int) -> None:
        nonlocal sent
        sent += n
        if sent == 10:
            task.cancel()  # as Ctrl-C does to `asyncio.run`'s main task

    task = asyncio.ensure_future(run(settings, topics, path, rate=1000.0, on_sent=interrupt_after_ten))
    with pytest.raises(asyncio.CancelledError):
        await task
    saved = Checkpoint.load(path)
    assert saved is not None and 10 <= saved.acknowledged < len(expected)  # the pending sends were counted
    delivered = event_ids(await events_on(kafka_bootstrap, topics))
    assert all(delivered[e.event_id] == 1 for e in expected[: saved.acknowledged])  # counted = delivered

    await run(settings, topics, path, resume=True)

    delivered = event_ids(await events_on(kafka_bootstrap, topics))
    assert set(delivered) == {e.event_id for e in expected}
    assert all(delivered[e.event_id] == 1 for e in expected[: saved.acknowledged])  # not re-sent


async def answer_lists(bootstrap: str, topics: ReplayTopics, ignore: set[str], ready: asyncio.Event) -> None:
    """A stand-in worker: one `recommendations` record per rating, except for the `ignore`d event ids."""
    async with tail(bootstrap, topics.ratings) as records, JsonProducer(bootstrap) as producer:
        ready.set()
        async for record in records:
            event = record.json()
            if event["event_id"] not in ignore:
                value = {"user_id": event["user_id"], "trigger_event_id": event["event_id"], "items": []}
                await producer.send(topics.recommendations, value, key=event["user_id"])
                await producer.flush()


@pytest.mark.kafka
async def test_lockstep_waits_for_each_list_and_names_the_event_without_one(
    kafka_bootstrap: str, settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings, topics, path = settings_factory(), unique_topics(), tmp_path / "c.json"
    only_ratings = StreamOptions(plays=False, searches=False)
    silent = RATINGS[5].event_id  # e.g. a duplicate: the worker publishes no list for it
    await replay(  # creates the topics (the stand-in worker tails `ratings`), sends nothing
        DATASET,
        bootstrap=kafka_bootstrap,
        settings=settings,
        checkpoint_path=tmp_path / "setup.json",
        stream=only_ratings,
        options=ReplayOptions(limit=0),
        topics=topics,
    )
    ready = asyncio.Event()
    worker = asyncio.create_task(answer_lists(kafka_bootstrap, topics, {silent}, ready))
    try:
        await ready.wait()

        async def lockstep(**options: Any) -> ReplayResult:
            return await replay(
                DATASET,
                bootstrap=kafka_bootstrap,
                settings=settings,
                checkpoint_path=path,
                stream=only_ratings,
                options=ReplayOptions(lockstep=True, lockstep_timeout_s=3.0, **options),
                topics=topics,
            )

        with pytest.raises(LockstepTimeoutError, match=f"trigger_event_id='{silent}'.*duplicate.*--resume"):
            await lockstep()
        saved = Checkpoint.load(path)
        assert saved is not None and saved.acknowledged == 6  # the silent event was delivered: counted

        result = await lockstep(resume=True)
        assert (result.skipped, result.sent) == (6, len(RATINGS) - 6)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    lists = await read_all(kafka_bootstrap, topics.recommendations)
    assert sorted(r.json()["trigger_event_id"] for r in lists) == sorted(
        r.event_id for r in RATINGS if r.event_id != silent
    )
