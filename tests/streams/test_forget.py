"""Erasing a viewer (`user-deletions`) and removing items (catalog tombstones): the processor's decisions in-process
with fakes, then end to end through the broker and a worker subprocess (its own app id; fresh user and item ids).

The shared topics (`catalog`, `recommendations`) see only what these tests add: an item published and then removed,
and lists and tombstones keyed by their own users.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the helpers importable

from test_pipeline import FakeMessage, FakeTopic, incoming, make_processor
from worker_proc import (
    WorkerProcess,
    get_json_until,
    next_matching,
    play,
    publish_catalog,
    rating,
    run_sync,
    search,
    send,
    user_id,
    worker_settings,
)

from streamrec.models.events import CatalogItem, Limits
from streamrec.streams.kafka import JsonProducer, read_all, tail
from streamrec.streams.kafka.admin import RECOMMENDATIONS, USER_DELETIONS
from streamrec.streams.kafka.consumer import Record
from streamrec.streams.settings import Settings
from streamrec.streams.worker.catalog_validation import CatalogValidator
from streamrec.streams.worker.observability import Metrics
from streamrec.streams.worker.outputs import DeadLetters, list_payload
from streamrec.streams.worker.tables import RecentLists, lists_naming

DLQ = "events-dlq"


def deletion(user: str | None, **extra: Any) -> dict[str, Any]:
    return {"user_id": user, **extra} if user is not None else dict(extra)


def sent_to(fakes: Any, user: str) -> list[bytes | None]:
    """Every value sent to `recommendations` for `user`, in order (None: a tombstone)."""
    return [s["value"] for s in fakes.lists.sends if s["key"] == user.encode()]


# -- in-process, with fakes ---------------------------------------------------------------------------------------


async def test_a_deletion_erases_the_profile_and_ends_the_viewers_lists_with_a_tombstone() -> None:
    processor, fakes = make_processor()
    await processor.handle_batch([incoming("plays", play(u, "syn-01"), u) for u in ("gone", "kept")])
    kept_before = processor.profiles.stored.get_raw("kept")
    # An event of theirs in the same batch, before the request: learnt, then erased; its list is never published.
    await processor.handle_batch(
        [
            incoming("ratings", rating("gone", "syn-02", 4.0), "gone"),
            incoming(USER_DELETIONS, deletion("gone", request_id="r-1"), "gone"),
        ]
    )
    assert processor.profiles.stored.get_raw("gone") is None
    assert processor.profiles.stored.get_raw("kept") == kept_before
    values = sent_to(fakes, "gone")
    assert len(values) == 2 and values[0] is not None and values[-1] is None  # its first list, then the tombstone
    assert processor.outputs.recent_lists.get("gone") is None and processor.outputs.recent_lists.get("kept")
    assert not fakes.dlq.sent and len(fakes.offsets.acked) == 4
    # Their next event starts afresh.
    await processor.handle_batch([incoming("plays", play("gone", "syn-03"), "gone")])
    profile = processor.recommender.profile("gone")
    assert profile is not None and profile.n_events == 1 and [h.item_id for h in profile.history] == ["syn-03"]
    assert orjson.loads(sent_to(fakes, "gone")[-1] or b"")["items"]


async def test_an_event_after_the_deletion_in_the_same_batch_gets_a_list_after_the_tombstone() -> None:
    processor, fakes = make_processor()
    later = play("again", "syn-04")
    await processor.handle_batch(
        [
            incoming("plays", play("again", "syn-01"), "again"),
            FakeMessage(USER_DELETIONS, b"again", None),
            incoming("plays", later, "again"),
        ]
    )
    values = sent_to(fakes, "again")
    assert values[0] is None and len(values) == 2  # a tombstone (keyed request without a value), then the new list
    assert orjson.loads(values[1] or b"")["event_ids"] == [later["event_id"]]
    profile = processor.recommender.profile("again")
    assert profile is not None and [h.item_id for h in profile.history] == ["syn-04"]


async def test_bad_deletion_requests_are_dead_lettered_with_a_reason() -> None:
    processor, fakes = make_processor()
    await processor.handle_batch(
        [
            incoming(USER_DELETIONS, b"{not json", "u1"),
            incoming(USER_DELETIONS, {"request_id": "r-2"}, "u1"),
            FakeMessage(USER_DELETIONS, None, None),  # a tombstone without a key names nobody
            incoming(USER_DELETIONS, deletion("u2"), "u1"),
        ]
    )
    letters = [orjson.loads(sent["value"]) for sent in fakes.dlq.sent]
    assert [letter["error_code"] for letter in letters] == [
        "not_json",
        "missing_field",
        "missing_field",
        "key_mismatch",
    ]
    assert {letter["source_topic"] for letter in letters} == {USER_DELETIONS}
    assert not fakes.lists.sends and len(fakes.offsets.acked) == 4


async def test_an_unkeyed_deletion_request_is_rekeyed_by_its_user_id() -> None:
    processor, fakes = make_processor()
    await processor.handle_batch([incoming(USER_DELETIONS, deletion("u9"), None)])
    [copy] = fakes.rekeyed.sent
    assert copy["key"] == b"u9" and not fakes.lists.sends and not fakes.dlq.sent


async def test_held_lists_naming_a_removed_item_are_republished_without_it() -> None:
    processor, fakes = make_processor()
    await processor.handle_batch([incoming("plays", play(u, "syn-00"), u) for u in ("h1", "h2")])
    listed = [item["item_id"] for item in orjson.loads(fakes.lists[b"h1"])["items"]]
    removed = listed[0]
    processor.recommender.remove_items([removed])
    processor.note_removed([removed])
    await processor.handle_batch([incoming("plays", play("h3", "syn-01"), "h3")])  # a batch meanwhile: no matter
    assert await processor.refresh_lists() == 2
    for user in ("h1", "h2"):
        body = orjson.loads(fakes.lists[user.encode()])
        assert body["event_ids"] == [] and body["trigger_event_id"] is None
        assert removed not in {item["item_id"] for item in body["items"]}
    assert processor.metrics.registry.get_sample_value("streamrec_lists_refreshed_total") == 2
    assert await processor.refresh_lists() == 0  # done once
    # Only the viewers of the partitions the worker holds now: the others' lists are their worker's.
    processor.owned_partitions = lambda: set()
    processor.recommender.remove_items([listed[1]])
    processor.note_removed([listed[1]])
    sends = len(fakes.lists.sends)
    assert await processor.refresh_lists() == 0 and len(fakes.lists.sends) == sends
    assert len(fakes.offsets.acked) == 3  # a refresh acknowledges no record


# -- end to end: the broker and a worker subprocess ------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings(broker_settings: Settings, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return worker_settings(broker_settings, tmp_path_factory.mktemp("forget"), app_id=f"forget-{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def worker(settings: Settings, kafka_bootstrap: str) -> Iterator[WorkerProcess]:
    run_sync(publish_catalog(kafka_bootstrap))
    proc = WorkerProcess(settings, settings.data_dir.parent / "worker.log").start()
    try:
        run_sync(proc.wait_healthy())
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"worker did not stop cleanly ({code}):\n{proc.log_tail()}"


def _list_of(user: str, event_id: str | None = None) -> Any:
    key = user.encode()
    return lambda r: (
        r.key == key and r.value is not None and (event_id is None or r.json()["trigger_event_id"] == event_id)
    )


def _ends_in_tombstone(records: list[Record]) -> bool:
    return bool(records) and records[-1].value is None


async def _changelog(bootstrap: str, settings: Settings, user: str) -> list[Record]:
    records = await read_all(bootstrap, f"{settings.app_id}-profiles-changelog", timeout_s=60)
    return [r for r in records if r.key == user.encode()]


async def test_a_deleted_viewer_is_erased_end_to_end(
    worker: WorkerProcess, kafka_bootstrap: str, settings: Settings
) -> None:
    gone, kept = user_id("gone"), user_id("kept")
    async with tail(kafka_bootstrap, RECOMMENDATIONS) as lists, tail(kafka_bootstrap, DLQ) as letters:
        for user in (gone, kept):
            await send(kafka_bootstrap, "plays", play(user, "syn-05"), key=user)
            await send(kafka_bootstrap, "searches", search(user, "glass orchard"), key=user)
        last = rating(gone, "syn-06", 4.5)
        await send(kafka_bootstrap, "ratings", last, key=gone)
        await next_matching(lists, _list_of(gone, last["event_id"]))
        await send(kafka_bootstrap, USER_DELETIONS, deletion(gone, request_id="r-e2e"), key=gone)
        await send(kafka_bootstrap, USER_DELETIONS, b"{oops", key=gone)
        await send(kafka_bootstrap, USER_DELETIONS, {"request_id": "no-user"}, key=kept)
        [tombstone] = await next_matching(lists, lambda r: r.key == gone.encode())
        assert tombstone.value is None
        found = await next_matching(letters, lambda r: r.json()["source_topic"] == USER_DELETIONS, count=2)
        assert sorted(letter.json()["error_code"] for letter in found) == ["missing_field", "not_json"]  # two keys
    # The profiles changelog ends in a tombstone for them; the other viewer's profile is untouched.
    gone_log = await _changelog(kafka_bootstrap, settings, gone)
    assert gone_log[0].value is not None and _ends_in_tombstone(gone_log)
    assert (await _changelog(kafka_bootstrap, settings, kept))[-1].value is not None
    await get_json_until(f"{worker.base_url}/users/{gone}/profile", lambda s, _: s == 404)
    _, profile = await get_json_until(f"{worker.base_url}/users/{kept}/profile", lambda s, _: s == 200)
    assert [h["item_id"] for h in profile["history"]] == ["syn-05"] and profile["searches"]
    # A later event of theirs starts a fresh profile.
    async with tail(kafka_bootstrap, RECOMMENDATIONS) as lists:
        again = play(gone, "syn-07")
        await send(kafka_bootstrap, "plays", again, key=gone)
        [fresh] = await next_matching(lists, _list_of(gone, again["event_id"]))
    assert fresh.json()["event_ids"] == [again["event_id"]]
    _, profile = await get_json_until(f"{worker.base_url}/users/{gone}/profile", lambda s, _: s == 200)
    assert [h["item_id"] for h in profile["history"]] == ["syn-07"] and not profile["searches"]


async def test_a_catalog_tombstone_removes_the_item_from_every_later_list(
    worker: WorkerProcess, kafka_bootstrap: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    item = CatalogItem(f"gone-{tag}", f"Quillwort {tag}", ("Drama",), ("Ada Reyes",), 3600, 2001)
    first, viewer, other = user_id("removal-first"), user_id("removal"), user_id("removal-other")
    await publish_catalog(kafka_bootstrap, [item])
    async with tail(kafka_bootstrap, RECOMMENDATIONS) as lists, tail(kafka_bootstrap, DLQ) as letters:
        # A first viewer's play makes sure the worker has the item (an unknown item makes it catch up with the
        # catalog); then searching its title puts it on the viewer's list.
        watched = play(first, item.item_id)
        await send(kafka_bootstrap, "plays", watched, key=first)
        await next_matching(lists, _list_of(first, watched["event_id"]))
        query = search(viewer, f"quillwort {tag}")
        await send(kafka_bootstrap, "searches", query, key=viewer)
        [held] = await next_matching(lists, _list_of(viewer, query["event_id"]))
        assert item.item_id in {i["item_id"] for i in held.json()["items"]}
        async with JsonProducer(kafka_bootstrap) as producer:
            await producer.send("catalog", None, key=item.item_id)
        # The held list is republished without it, with no event of the viewer's.
        [republished] = await next_matching(lists, _list_of(viewer))
        body = republished.json()
        assert body["event_ids"] == [] and item.item_id not in {i["item_id"] for i in body["items"]}
        # Later lists never name it, not even for the very search that found it; its events are dead-lettered.
        again = search(other, f"quillwort {tag}")
        await send(kafka_bootstrap, "searches", again, key=other)
        await send(kafka_bootstrap, "plays", play(viewer, item.item_id), key=viewer)
        [later] = await next_matching(lists, _list_of(other, again["event_id"]))
        assert item.item_id not in {i["item_id"] for i in later.json()["items"]}
        [letter] = await next_matching(letters, lambda r: r.key == viewer.encode())
        assert letter.json()["error_code"] == "unknown_item"


async def test_a_catalog_tombstone_without_a_key_is_dead_lettered() -> None:
    dlq = FakeTopic()
    validator = CatalogValidator(
        dead_letters=DeadLetters(dlq),  # type: ignore[arg-type]
        metrics=Metrics(),
        limits=Limits(),
        last_offsets={},
    )
    await validator.validate_batch([FakeMessage("catalog", b"m1", None), FakeMessage("catalog", None, None)])
    [letter] = [orjson.loads(sent["value"]) for sent in dlq.sent]
    assert letter["error_code"] == "missing_field" and letter["source_topic"] == "catalog"


@pytest.mark.parametrize("extra", [0, 10], ids=["one-by-one", "one-pass"])
def test_held_lists_are_found_by_the_items_they_name(extra: int) -> None:
    """As an item or as a reason's evidence; ids as JSON writes them (a quote in an id), never by a prefix."""
    lists = RecentLists(10)

    def put(user: str, items: list[str], evidence: str, partition: int) -> None:
        reasons = [{"kind": "watched", "text": "t", "item_id": evidence}]
        ranked = [{"item_id": i, "rank": 1, "score": 1.0, "reasons": reasons} for i in items]
        lists.put(user, list_payload(user, ["e"], "v", ranked, 0), partition)

    put("a", ["m1", 'm"2'], "m9", 0)
    put("b", ["m10"], "m1", 1)  # names m1 as evidence
    put("c", ["m11"], "m12", 2)
    put("d", ['m"2'], "m3", 3)
    others = [f"x{n}" for n in range(extra)]
    assert lists_naming(lists.held(), ["m1", *others]) == [("a", 0), ("b", 1)]
    assert lists_naming(lists.held(), ['m"2', *others]) == [("a", 0), ("d", 3)]
    assert lists_naming(lists.held(), ["m", *others]) == []
    lists.forget("a")
    assert lists.get("a") is None and lists_naming(lists.held(), ["m1", *others]) == [("b", 1)]


async def test_an_erased_viewer_stays_erased_when_the_state_is_rebuilt_from_the_changelog(
    worker: WorkerProcess, settings: Settings, kafka_bootstrap: str
) -> None:
    """The module's worker loses its state and restores the profiles from the changelog: the tombstone deletes the
    profile. (Restarted in its own consumer group, it has nothing else to catch up with.)"""
    gone, kept = user_id("rebuild-gone"), user_id("rebuild-kept")
    async with tail(kafka_bootstrap, RECOMMENDATIONS) as lists:
        for user in (gone, kept):
            watched = play(user, "syn-08")
            await send(kafka_bootstrap, "plays", watched, key=user)
            await next_matching(lists, _list_of(user, watched["event_id"]))
        async with JsonProducer(kafka_bootstrap) as producer:
            await producer.send(USER_DELETIONS, None, key=gone)  # a tombstone keyed by the user is a request
        [tombstone] = await next_matching(lists, lambda r: r.key == gone.encode())
        assert tombstone.value is None
    deadline = time.monotonic() + 60
    while not _ends_in_tombstone(await _changelog(kafka_bootstrap, settings, gone)):
        assert time.monotonic() < deadline, "no tombstone on the changelog"
        await asyncio.sleep(0.5)
    assert await worker.stop_async() == 0, worker.log_tail()
    shutil.rmtree(settings.data_dir)
    worker.start()
    await worker.wait_healthy()
    _, profile = await get_json_until(f"{worker.base_url}/users/{kept}/profile", lambda s, _: s == 200)
    assert [h["item_id"] for h in profile["history"]] == ["syn-08"]
    status, _ = await get_json_until(f"{worker.base_url}/users/{gone}/profile", lambda s, _: s in (200, 404))
    assert status == 404
