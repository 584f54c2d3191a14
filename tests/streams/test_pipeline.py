"""The worker end to end, as a real subprocess against the session broker: events in, lists and dead letters out.

One worker (its own app id, data and model dirs) serves the whole module; each test uses fresh user ids, so
tests don't see each other's lists. Waiting is by polling with generous deadlines, never a timing assertion.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the helper importable

from worker_proc import (
    CATALOG,
    ITEM_IDS,
    WorkerProcess,
    drain,
    get_json_until,
    http_get,
    keyed,
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

from streamrec.models.events import CatalogItem, event_to_dict
from streamrec.models.item_model import ItemModel
from streamrec.streams.kafka import tail
from streamrec.streams.kafka.admin import RECOMMENDATIONS
from streamrec.streams.settings import Settings
from streamrec.streams.worker.dlq import MAX_PAYLOAD_BYTES, Source, dead_letter
from streamrec.streams.worker.model_store import ModelStore

DLQ = "events-dlq"
START_MODEL = "test-model-a"


def tiny_model(version: str) -> ItemModel:
    """A hand-made artifact over the synthetic catalog (no training needed to test loading and hot swap)."""
    rng = np.random.default_rng(len(version))
    factors = rng.normal(size=(len(CATALOG), 8)).astype(np.float32)
    factors /= np.linalg.norm(factors, axis=1, keepdims=True)
    return ItemModel(version, tuple(item.item_id for item in CATALOG), factors, 100, int(time.time() * 1000))


def user_partition(user: str, partitions: int = 4) -> int:
    return int(DefaultPartitioner()(user.encode(), list(range(partitions)), list(range(partitions))))


@pytest.fixture(scope="module")
def settings(broker_settings: Settings, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return worker_settings(
        broker_settings, tmp_path_factory.mktemp("pipeline"), app_id=f"pipeline-{uuid.uuid4().hex[:6]}"
    )


@pytest.fixture(scope="module")
def worker(settings: Settings, kafka_bootstrap: str) -> Iterator[WorkerProcess]:
    run_sync(publish_catalog(kafka_bootstrap))
    ModelStore(settings.model_dir).save(tiny_model(START_MODEL))  # the worker must load this at start
    proc = WorkerProcess(settings, settings.data_dir.parent / "worker.log").start()
    try:
        run_sync(proc.wait_healthy())
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"worker did not stop cleanly ({code}):\n{proc.log_tail()}"


async def list_for(bootstrap: str, user: str, topic: str, value: dict[str, Any], key: str | None = "same") -> Any:
    """Send one event and return the list it triggered (matched by trigger_event_id)."""
    async with tail(bootstrap, RECOMMENDATIONS) as records:
        await send(bootstrap, topic, value, key=user if key == "same" else key)
        event_id = value["event_id"]
        [record] = await next_matching(
            records, lambda r: r.key == user.encode() and r.json()["trigger_event_id"] == event_id
        )
    return record


# -- lists ------------------------------------------------------------------------------------------------------


async def test_rating_play_and_search_each_publish_a_fresh_list(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    user = user_id("fresh")
    seen_at: list[int] = []
    for topic, event in (
        ("ratings", rating(user, "syn-03", 4.5)),
        ("plays", play(user, "syn-04", 2500)),
        ("searches", search(user, "glass orchard")),
    ):
        record = await list_for(kafka_bootstrap, user, topic, event)
        body = record.json()
        assert record.partition == user_partition(user)  # keyed like every producer keys it: murmur2(user id)
        assert body["user_id"] == user and body["model_version"] == START_MODEL
        assert body["items"], "a list must not be empty with a 20-item catalog"
        assert [item["rank"] for item in body["items"]] == list(range(1, len(body["items"]) + 1))
        watched = {"syn-03"} if topic == "ratings" else {"syn-03", "syn-04"}
        assert watched.isdisjoint(item["item_id"] for item in body["items"])  # what they watched is excluded
        seen_at.append(body["generated_at"])
    assert seen_at == sorted(seen_at) and len(set(seen_at)) == 3


async def test_unkeyed_event_is_routed_by_user_id(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    user = user_id("nokey")
    record = await list_for(kafka_bootstrap, user, "plays", play(user, "syn-07"), key=None)
    assert record.key == user.encode() and record.partition == user_partition(user)
    _, profile = await get_json_until(f"{worker.base_url}/users/{user}/profile", lambda s, _: s == 200)
    assert [h["item_id"] for h in profile["history"]] == ["syn-07"]


async def test_search_moves_matching_titles_up(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    user = user_id("search")
    before = (await list_for(kafka_bootstrap, user, "plays", play(user, "syn-12"))).json()
    after = (await list_for(kafka_bootstrap, user, "searches", search(user, "zephyr canyon"))).json()
    matching = {"syn-00", "syn-01"}  # "Zephyr Canyon", "Zephyr Canyon Returns"

    def ranks(body: dict[str, Any]) -> dict[str, int]:
        return {item["item_id"]: item["rank"] for item in body["items"]}

    def scores(body: dict[str, Any]) -> dict[str, float]:
        return {item["item_id"]: item["score"] for item in body["items"]}

    # Ranks can only be compared one way: other tests' events (the worker is shared) may have put these titles
    # near the top already. The search adds intent to their scores, whatever else the world learned.
    worst = len(before["items"]) + 1
    for item_id in matching:
        assert item_id in ranks(after)
        assert ranks(after)[item_id] <= ranks(before).get(item_id, worst)
        assert scores(after)[item_id] > scores(before).get(item_id, float("-inf"))
    for item in after["items"]:
        if item["item_id"] in matching:
            assert {"kind": "search", "query": "zephyr canyon"}.items() <= next(
                r for r in item["reasons"] if r["kind"] == "search"
            ).items()
    top = [item["item_id"] for item in after["items"][:3]]
    assert matching & set(top), f"a matching title should be near the top, got {top}"


async def test_every_item_has_a_reason_and_watched_reasons_are_true(
    worker: WorkerProcess, kafka_bootstrap: str
) -> None:
    # Background viewers make syn-10 co-watched with syn-11/syn-13, so "Because you watched" has evidence.
    for n in range(3):
        other = user_id(f"bg{n}")
        for item in ("syn-10", "syn-11", "syn-13"):
            await list_for(kafka_bootstrap, other, "plays", play(other, item))
    user = user_id("reasons")
    watched = ["syn-10", "syn-15"]
    bodies = [(await list_for(kafka_bootstrap, user, "plays", play(user, item))).json() for item in watched]
    watched_reasons = 0
    for body in bodies:
        for item in body["items"]:
            assert item["reasons"], f"{item['item_id']} has no reason"
            for reason in item["reasons"]:
                assert reason["kind"] and reason["text"]
                if reason["kind"] == "watched":
                    watched_reasons += 1
                    assert reason["item_id"] in watched, reason
    assert watched_reasons > 0, "expected at least one 'watched' reason (the check above would be vacuous)"


async def test_duplicate_event_is_applied_once(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    user = user_id("dup")
    event = rating(user, "syn-05", 4.0)
    await list_for(kafka_bootstrap, user, "ratings", event)
    marker = rating(user, "syn-06", 3.0)  # same topic and key as the duplicate: handled after it
    async with tail(kafka_bootstrap, RECOMMENDATIONS) as records:
        await send(kafka_bootstrap, "ratings", event, key=user)  # the same event_id again
        await send(kafka_bootstrap, "ratings", marker, key=user)
        await next_matching(
            records, lambda r: r.key == user.encode() and r.json()["trigger_event_id"] == marker["event_id"]
        )
    _, profile = await get_json_until(f"{worker.base_url}/users/{user}/profile", lambda s, _: s == 200)
    assert profile["n_events"] == 2 and profile["rating_count"] == 2
    assert [h["item_id"] for h in profile["history"]] == ["syn-05", "syn-06"]
    triggers = [r.json()["trigger_event_id"] for r in await user_lists(kafka_bootstrap, user)]
    assert triggers == [event["event_id"], marker["event_id"]]  # no list for the duplicate
    text = await metrics_text(worker)
    assert metric(text, "streamrec_events_duplicate_total", topic="ratings") >= 1


async def test_item_published_just_before_its_first_viewer_is_not_rejected(
    worker: WorkerProcess, kafka_bootstrap: str
) -> None:
    item = CatalogItem(f"syn-new-{uuid.uuid4().hex[:8]}", "Lighthouse Cartography", ("Drama",), ("Ada Reyes",), 4000)
    user = user_id("race")
    event = play(user, item.item_id)
    async with tail(kafka_bootstrap, RECOMMENDATIONS) as records:
        await send(kafka_bootstrap, "catalog", orjson.dumps(event_to_dict(item)), key=item.item_id)
        await send(kafka_bootstrap, "plays", event, key=user)  # no wait in between: the race
        [record] = await next_matching(records, lambda r: r.key == user.encode())
    assert record.json()["trigger_event_id"] == event["event_id"]
    _, profile = await get_json_until(f"{worker.base_url}/users/{user}/profile", lambda s, _: s == 200)
    assert [h["item_id"] for h in profile["history"]] == [item.item_id]


# -- dead letters --------------------------------------------------------------------------------------------------


async def test_malformed_events_are_dead_lettered_and_the_worker_keeps_going(
    worker: WorkerProcess, kafka_bootstrap: str
) -> None:
    user = user_id("bad")
    now = int(time.time() * 1000)
    cases: list[tuple[str, bytes, str]] = [
        ("ratings", b'{"event_id": "x1", "user_id": "' + user.encode() + b'", not json', "not_json"),
        ("ratings", b"\xff\xfe binary " + user.encode(), "not_json"),
        (
            "plays",
            orjson.dumps({k: v for k, v in play(user, "syn-01").items() if k != "watched_seconds"}),
            "missing_field",
        ),
        ("ratings", orjson.dumps(rating(user, "syn-01", 4.0) | {"rating": "five"}), "wrong_type"),
        ("ratings", orjson.dumps(rating(user, "syn-01", 9.0)), "out_of_range"),
        ("plays", orjson.dumps(play(user, "no-such-item-anywhere")), "unknown_item"),
        ("searches", orjson.dumps(search(user, "orchard") | {"padding": "x" * 20_000}), "oversized"),
        ("ratings", orjson.dumps(rating(user, "syn-01", 3.0, ts=now + 24 * 3_600_000)), "future_event"),
    ]
    valid = rating(user, "syn-02", 4.0)
    async with tail(kafka_bootstrap, DLQ) as letters, tail(kafka_bootstrap, RECOMMENDATIONS) as lists:
        for topic, raw, _ in cases:
            await send(kafka_bootstrap, topic, raw, key=user)
        await send(kafka_bootstrap, "ratings", valid, key=user)
        dead = await next_matching(letters, keyed(user), count=len(cases))
        [good] = await next_matching(lists, keyed(user))
    assert good.json()["trigger_event_id"] == valid["event_id"]  # the worker kept going
    # Same key -> same partition of each topic; order across topics is not defined, so match by payload.
    by_payload: dict[bytes, dict[str, Any]] = {}
    for record in dead:
        letter = record.json()
        payload = (
            letter["payload"].encode()
            if letter["payload"] is not None
            else __import__("base64").b64decode(letter["payload_base64"])
        )
        by_payload[payload] = letter
    for topic, raw, code in cases:
        letter = by_payload[raw]
        assert letter["error_code"] == code, letter
        assert letter["source_topic"] == topic and letter["key"] == user
        assert letter["partition"] == user_partition(user) and letter["offset"] >= 0
        assert letter["error_message"] and isinstance(letter["rejected_at"], int)
    assert by_payload[cases[1][1]]["payload_base64"] is not None  # not UTF-8
    text = await metrics_text(worker)
    for _, _, code in cases:
        assert metric(text, "streamrec_events_rejected_total", reason=code) >= 1, code


async def test_invalid_catalog_record_is_dead_lettered_once(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    key = f"bad-item-{uuid.uuid4().hex[:8]}"
    async with tail(kafka_bootstrap, DLQ) as letters:
        await send(kafka_bootstrap, "catalog", {"item_id": key, "title": ""}, key=key)
        [record] = await next_matching(letters, keyed(key))
        extra = await drain(letters, keyed(key), quiet_s=3.0)
    letter = record.json()
    assert letter["source_topic"] == "catalog" and letter["error_code"] == "out_of_range"
    assert extra == []
    _, health = await get_json_until(f"{worker.base_url}/health", lambda s, _: s == 200)
    assert health["catalog_items"] >= len(ITEM_IDS)


def test_dead_letter_layout() -> None:
    source = Source("plays", 2, 41)
    text = dead_letter(source, error_code="not_json", error_message="m", key=b"u", payload=b"{", rejected_at_ms=5)
    assert text == {
        "source_topic": "plays",
        "partition": 2,
        "offset": 41,
        "error_code": "not_json",
        "error_message": "m",
        "key": "u",
        "payload": "{",
        "payload_base64": None,
        "rejected_at": 5,
    }
    binary = dead_letter(source, error_code="not_json", error_message="m", key=None, payload=b"\xff", rejected_at_ms=5)
    assert binary["payload_base64"] == "/w==" and binary["key"] is None and binary["payload"] is None
    big = dead_letter(
        source,
        error_code="oversized",
        error_message="m",
        key=None,
        payload=b"a" * (MAX_PAYLOAD_BYTES + 9),
        rejected_at_ms=5,
    )
    assert big["payload_truncated"] is True and len(big["payload"]) == MAX_PAYLOAD_BYTES


# -- web, metrics, model ----------------------------------------------------------------------------------------


async def test_views_return_the_last_list_and_404_for_unknown_users(
    worker: WorkerProcess, kafka_bootstrap: str
) -> None:
    user = user_id("view")
    await list_for(kafka_bootstrap, user, "plays", play(user, "syn-08"))
    last = await list_for(kafka_bootstrap, user, "ratings", rating(user, "syn-09", 5.0))
    status, headers, body = await http_get(f"{worker.base_url}/users/{user}/recommendations")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert body == last.value  # byte for byte the record on `recommendations`
    status, _, body = await http_get(f"{worker.base_url}/users/nobody-{uuid.uuid4().hex}/recommendations")
    assert status == 404 and orjson.loads(body)["error"] == "unknown_user"


async def test_metrics_move(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    status, headers, _ = await http_get(f"{worker.base_url}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    before = await metrics_text(worker)
    user = user_id("metrics")
    await list_for(kafka_bootstrap, user, "plays", play(user, "syn-14"))

    def moved(text: str) -> bool:
        return (
            metric(text, "streamrec_events_consumed_total", topic="plays")
            > metric(before, "streamrec_events_consumed_total", topic="plays")
            and metric(text, "streamrec_lists_published_total") > metric(before, "streamrec_lists_published_total")
            and metric(text, "streamrec_freshness_seconds_count") > metric(before, "streamrec_freshness_seconds_count")
            and metric(text, "streamrec_ranking_seconds_count") > metric(before, "streamrec_ranking_seconds_count")
            and metric(text, "streamrec_processing_seconds_count", topic="plays") > 0
            and all(
                metric(text, "streamrec_batch_phase_seconds_count", phase=phase)
                > metric(before, "streamrec_batch_phase_seconds_count", phase=phase)
                for phase in ("learn", "item_log", "publish", "commit")
            )
            and metric(text, "streamrec_table_keys", table="profiles") >= 1  # periodic
            and metric(text, "streamrec_catalog_items") >= len(ITEM_IDS)
            and "streamrec_consumer_lag{" in text  # periodic
            and metric(text, "streamrec_records_read_total", topic="plays")
            > metric(before, "streamrec_records_read_total", topic="plays")
        )

    text = await poll_metrics(worker, moved)
    for topic in ("ratings", "plays", "searches", "catalog"):  # read first, then held for their turn, then consumed
        read = metric(text, "streamrec_records_read_total", topic=topic)
        assert read >= metric(text, "streamrec_events_consumed_total", topic=topic), topic
    assert "\nstreamrec_item_index_builds 0.0\n" in text  # a small catalog: every item scored, no index
    assert metric(text, "streamrec_model_info", model_version=START_MODEL) == 1 or "test-model-b" in text


async def test_newer_model_artifact_is_hot_swapped(
    worker: WorkerProcess, settings: Settings, kafka_bootstrap: str
) -> None:
    ModelStore(settings.model_dir).save(tiny_model("test-model-b"))
    await get_json_until(
        f"{worker.base_url}/health", lambda s, b: s == 200 and b["model_version"] == "test-model-b"
    )  # the check runs every 30 s
    user = user_id("model")
    record = await list_for(kafka_bootstrap, user, "plays", play(user, "syn-16"))
    assert record.json()["model_version"] == "test-model-b"
    text = await metrics_text(worker)
    assert metric(text, "streamrec_model_info", model_version="test-model-b") == 1
    assert f'model_version="{START_MODEL}"' not in text


# -- helpers -------------------------------------------------------------------------------------------------------


async def user_lists(bootstrap: str, user: str) -> list[Any]:
    from streamrec.streams.kafka import read_all

    return [r for r in await read_all(bootstrap, RECOMMENDATIONS, timeout_s=120) if r.key == user.encode()]


async def metrics_text(worker: WorkerProcess) -> str:
    status, _, body = await http_get(f"{worker.base_url}/metrics")
    assert status == 200
    return body.decode()


async def poll_metrics(worker: WorkerProcess, accept: Any, timeout_s: float = 120.0) -> str:
    import asyncio

    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = await metrics_text(worker)
        if accept(text):
            return text
        await asyncio.sleep(1.0)
    raise AssertionError(f"metrics did not move in {timeout_s:.0f} s:\n{text}")


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(\{{(?P<labels>[^}}]*)\}})? (?P<value>\S+)$")
    for line in text.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match["value"])
    return total


# -- the processor's decisions, in-process with fakes (deterministic; no broker) ---------------------------------


class FakeTopic:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)

    def send_soon(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


_OFFSETS = itertools.count(7)


@dataclass
class FakeMessage:
    """The fields of a Faust message the processor reads."""

    topic: str
    key: bytes | None
    value: bytes | None
    partition: int = 1
    offset: int = field(default_factory=lambda: next(_OFFSETS))  # each record its own, as on a partition
    timestamp: float = field(default_factory=time.time)
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class FakeFeed:
    """Ready at once; `catch_up` delivers items that were 'published' but not yet applied."""

    ready = True

    def __init__(self, recommender: Any, pending: list[CatalogItem]) -> None:
        self.recommender, self.pending, self.catch_ups = recommender, pending, 0

    async def wait_ready(self) -> None:
        return None

    async def catch_up(self, timeout_s: float = 10.0) -> bool:
        self.catch_ups += 1
        for item in self.pending:
            self.recommender.add_item(item, 1)
        self.pending.clear()
        return True


class Published(dict[bytes, bytes]):
    """The lists a processor published, by user key (the last one per user), and every send in order."""

    def __init__(self) -> None:
        super().__init__()
        self.sends: list[dict[str, Any]] = []

    def send_soon(self, **kwargs: Any) -> None:
        self.sends.append(kwargs)
        self[kwargs["key"]] = kwargs["value"]


class FakeProducer:
    """The worker producer's two sending calls; `send_pending` acknowledges at once unless told otherwise."""

    def __init__(self, lists: Published) -> None:
        self.lists = lists
        self.sent_after: list[int] = []  # lists queued when each send_pending ran
        self.acknowledgements: list[asyncio.Future[None]] = []
        self.acknowledge_at_once = True
        self.flushes: list[str] = []
        self.flush_gate: asyncio.Event | None = None  # a flush waits for it, if set
        self.failing = False

    async def send_pending(self) -> asyncio.Future[None]:
        self.sent_after.append(len(self.lists.sends))
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.failing:
            acknowledged.set_exception(RuntimeError("broker gone"))
        elif self.acknowledge_at_once:
            acknowledged.set_result(None)
        self.acknowledgements.append(acknowledged)
        return acknowledged

    async def flush(self) -> None:
        self.flushes.append("started")
        if self.failing:
            raise RuntimeError("broker gone")
        if self.flush_gate is not None:
            await self.flush_gate.wait()
        self.flushes.append("acknowledged")


class FakeOffsets:
    def __init__(self) -> None:
        self.acked: list[Any] = []

    def acknowledge(self, records: Any) -> None:
        self.acked += records


@dataclass
class Fakes:
    lists: Published
    dlq: FakeTopic
    rekeyed: FakeTopic
    feed: FakeFeed
    producer: FakeProducer
    offsets: FakeOffsets


def make_processor(
    pending: list[CatalogItem] | None = None, *, coalesce: bool = True, background_flush_min: int = 10_000
) -> tuple[Any, Fakes]:
    from streamrec.models.events import Limits
    from streamrec.models.profile import EncodedProfiles
    from streamrec.models.recommender import StreamRecommender
    from streamrec.streams.worker.checkpoint import Checkpoint
    from streamrec.streams.worker.observability import Metrics
    from streamrec.streams.worker.outputs import DeadLetters, Rekeyer, SentLists
    from streamrec.streams.worker.processor import EventProcessor, Outputs
    from streamrec.streams.worker.profile_store import ProfileStore
    from streamrec.streams.worker.tables import RecentLists

    profiles = ProfileStore(EncodedProfiles())
    recommender = StreamRecommender(profiles=profiles)
    for item in CATALOG[:5]:
        recommender.add_item(item, 1)
    lists = Published()
    fakes = Fakes(
        lists, FakeTopic(), FakeTopic(), FakeFeed(recommender, list(pending or [])), FakeProducer(lists), FakeOffsets()
    )
    list_output = SentLists(lists)  # type: ignore[arg-type]
    processor = EventProcessor(
        recommender=recommender,
        profiles=profiles,
        feed=fakes.feed,
        metrics=Metrics(),
        outputs=Outputs(list_output, RecentLists(10), DeadLetters(fakes.dlq), Rekeyer(fakes.rekeyed)),  # type: ignore[arg-type]
        checkpoint=Checkpoint(
            lists=list_output,
            profiles=profiles,
            producer=fakes.producer,
            offsets=fakes.offsets,
            background_flush_min=background_flush_min,
        ),
        limits=Limits(),
        coalesce=coalesce,
    )
    return processor, fakes


def incoming(topic: str, value: dict[str, Any] | bytes, key: str | None) -> FakeMessage:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return FakeMessage(topic, None if key is None else key.encode(), raw)


async def test_a_batch_ends_with_lists_then_changelogs_then_the_producer_then_its_offsets() -> None:
    from streamrec.models.profile import EncodedProfiles
    from streamrec.streams.worker.outputs import HandedOverLists

    steps: list[str] = []
    processor, fakes = make_processor()

    class Changelogged(dict[bytes, bytes]):
        def __setitem__(self, key: bytes, value: bytes) -> None:
            steps.append(f"profile {key.decode()}")
            super().__setitem__(key, value)

    processor.profiles.stored = EncodedProfiles(Changelogged())
    lists = HandedOverLists("recommendations", lambda topic, records: steps.append(f"lists {sorted(records)}"))
    processor.outputs = dataclasses.replace(processor.outputs, lists=lists)
    processor.checkpoint.lists = lists
    sent = fakes.producer.send_pending

    async def send_pending() -> asyncio.Future[None]:
        steps.append("send")
        return await sent()

    fakes.producer.send_pending = send_pending  # type: ignore[method-assign]
    fakes.offsets.acknowledge = lambda records: steps.append(f"ack {len(records)}")  # type: ignore[method-assign]
    batch = [incoming("plays", play(u, "syn-01"), u) for u in ("c1", "c2")]
    await processor.handle_batch(batch)
    assert steps == ["lists [1]", "profile c1", "profile c2", "send", "ack 2"]


async def test_each_batch_sends_its_output_after_its_lists_and_acks_its_records() -> None:
    processor, fakes = make_processor()
    first = [incoming("plays", play(u, "syn-01"), u) for u in ("f1", "f2", "f3")]
    await processor.handle_batch(first)
    assert fakes.producer.sent_after == [3]  # once, after the batch's three lists were queued
    assert fakes.offsets.acked == first
    await processor.handle_batch([incoming("plays", play("f1", "syn-02"), "f1")])
    assert fakes.producer.sent_after == [3, 4] and len(fakes.offsets.acked) == 4


async def test_a_large_batch_does_not_wait_for_its_output_but_the_next_batch_does() -> None:
    processor, fakes = make_processor(background_flush_min=2)
    producer, lists = fakes.producer, fakes.lists
    producer.flush_gate = asyncio.Event()
    async with asyncio.timeout(10):  # a guard: the large batch must not wait for the acknowledgement
        await processor.handle_batch([incoming("plays", play(u, "syn-01"), u) for u in ("w1", "w2")])
    assert producer.flushes == ["started"] and b"w2" in lists and len(fakes.offsets.acked) == 2
    small = asyncio.ensure_future(processor.handle_batch([incoming("plays", play("w3", "syn-01"), "w3")]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not small.done() and b"w3" in lists  # handled and published, waiting for the large batch's output
    assert producer.sent_after == [] and len(fakes.offsets.acked) == 2
    producer.flush_gate.set()
    async with asyncio.timeout(10):
        await small
    assert producer.flushes == ["started", "acknowledged"] and producer.sent_after == [3]
    assert len(fakes.offsets.acked) == 3


async def test_a_live_batch_sends_its_output_and_the_next_batch_waits_for_the_acknowledgement() -> None:
    processor, fakes = make_processor()
    producer, lists = fakes.producer, fakes.lists
    producer.acknowledge_at_once = False
    async with asyncio.timeout(10):  # a guard: the batch must not wait for its acknowledgement
        await processor.handle_batch([incoming("plays", play(u, "syn-01"), u) for u in ("s1", "s2")])
    assert producer.sent_after == [2]
    second = asyncio.ensure_future(processor.handle_batch([incoming("plays", play("s3", "syn-01"), "s3")]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not second.done() and b"s3" in lists and producer.sent_after == [2]  # not sent before the first's ack
    producer.acknowledgements[0].set_result(None)
    async with asyncio.timeout(10):
        await second
    assert producer.sent_after == [2, 3]


@pytest.mark.parametrize("large", [False, True])
async def test_a_failed_send_is_logged_and_the_batch_still_completes(
    caplog: pytest.LogCaptureFixture, large: bool
) -> None:
    processor, fakes = make_processor(background_flush_min=1 if large else 10_000)
    fakes.producer.failing = True
    await processor.handle_batch([incoming("plays", play("f4", "syn-01"), "f4")])
    await processor.handle_batch([incoming("plays", play("f5", "syn-01"), "f5")])  # waits for the first's sending
    assert b"f4" in fakes.lists and b"f5" in fakes.lists and not fakes.dlq.sent
    assert "next commit flushes again" in caplog.text


async def test_a_batch_that_does_not_finish_writes_and_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    processor, fakes = make_processor()

    def cancelled(*args: Any, **kwargs: Any) -> None:
        raise asyncio.CancelledError

    monkeypatch.setattr(processor, "_publish_chunk", cancelled)
    with pytest.raises(asyncio.CancelledError):
        await processor.handle_batch([incoming("plays", play("x1", "syn-01"), "x1")])
    assert "x1" not in processor.profiles.stored and not processor.profiles.holds("x1")
    assert fakes.producer.sent_after == [] and fakes.offsets.acked == []
    monkeypatch.undo()
    await processor.handle_batch([incoming("plays", play("x1", "syn-01"), "x1")])  # handled again: learnt anew
    assert b"x1" in fakes.lists and processor.profiles.stored["x1"].n_events == 1


async def test_unknown_item_waits_for_the_catalog_to_catch_up_before_rejecting() -> None:
    late = CatalogItem("late-item", "Late Arrival", ("Drama",))
    processor, fakes = make_processor(pending=[late])
    lists, dlq, feed = fakes.lists, fakes.dlq, fakes.feed
    await processor.handle_batch([incoming("plays", play("u1", "late-item"), "u1")])
    assert feed.catch_ups == 1 and not dlq.sent and b"u1" in lists

    await processor.handle_batch([incoming("plays", play("u1", "never-published"), "u1")])
    assert feed.catch_ups == 2 and len(dlq.sent) == 1
    assert orjson.loads(dlq.sent[0]["value"])["error_code"] == "unknown_item"


async def test_an_unexpected_error_is_dead_lettered_as_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    processor, fakes = make_processor()
    lists, dlq = fakes.lists, fakes.dlq

    def broken(event: Any, origin: Any = None) -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr(processor.recommender, "learn_one", broken)
    record = incoming("ratings", rating("u2", "syn-01", 4.0), "u2")
    await processor.handle_batch([record])
    [sent] = dlq.sent
    letter = orjson.loads(sent["value"])
    assert letter["error_code"] == "internal_error" and "boom" in letter["error_message"]
    assert letter["source_topic"] == "ratings" and letter["offset"] == record.offset and sent["key"] == b"u2"
    assert not lists


async def test_unkeyed_event_is_forwarded_keyed_by_user_not_applied() -> None:
    processor, fakes = make_processor()
    lists, dlq, rekeyed = fakes.lists, fakes.dlq, fakes.rekeyed
    event = play("u3", "syn-02")
    record = incoming("plays", event, None)
    await processor.handle_batch([record])
    assert not lists and not dlq.sent
    [forward] = rekeyed.sent
    assert forward["key"] == b"u3" and forward["value"] == orjson.dumps(event)
    assert forward["timestamp"] == round(record.timestamp * 1000) / 1000.0  # the producer's time survives the hop
    assert forward["headers"] == {
        "streamrec-source-topic": b"plays",
        "streamrec-source-partition": b"1",
        "streamrec-source-offset": str(record.offset).encode(),
    }
    # An unkeyed record that is broken is dead-lettered where it is, not forwarded.
    await processor.handle_batch([incoming("plays", b"{oops", None)])
    assert len(rekeyed.sent) == 1 and orjson.loads(dlq.sent[0]["value"])["key"] is None


async def test_rejected_rekeyed_copy_names_the_original_record() -> None:
    processor, fakes = make_processor()
    lists, dlq = fakes.lists, fakes.dlq
    origin = [
        ("streamrec-source-topic", b"plays"),
        ("streamrec-source-partition", b"3"),
        ("streamrec-source-offset", b"99"),
    ]
    copy = FakeMessage("streamrec-rekeyed-events", b"u4", orjson.dumps(play("u4", "not-in-catalog")), headers=origin)
    await processor.handle_batch([copy])
    [sent] = dlq.sent
    letter = orjson.loads(sent["value"])
    assert (letter["source_topic"], letter["partition"], letter["offset"]) == ("plays", 3, 99)
    assert letter["error_code"] == "unknown_item" and letter["key"] is None  # the producer sent no key
    assert sent["key"] == b"u4" and not lists


@pytest.mark.parametrize("key", ["u\x005", None])
async def test_an_unprintable_user_id_is_dead_lettered_never_forwarded_nor_a_viewer(key: str | None) -> None:
    processor, fakes = make_processor()
    await processor.handle_batch([incoming("plays", play("u\x005", "syn-01"), key)])
    [sent] = fakes.dlq.sent
    letter = orjson.loads(sent["value"])
    assert letter["error_code"] == "invalid_id" and letter["error_message"].startswith("'user_id' must be printable")
    assert not fakes.rekeyed.sent and not fakes.lists and not processor.profiles.holds("u\x005")


@pytest.mark.parametrize(
    "origin",
    [
        [("streamrec-source-topic", b"likes"), ("streamrec-source-partition", b"0"), ("streamrec-source-offset", b"1")],
        [
            ("streamrec-source-topic", b"plays"),
            ("streamrec-source-partition", b"-1"),
            ("streamrec-source-offset", b"1"),
        ],
        [("streamrec-source-topic", b"plays"), ("streamrec-source-partition", b"x"), ("streamrec-source-offset", b"1")],
        [("streamrec-source-topic", b"\xff"), ("streamrec-source-partition", b"0"), ("streamrec-source-offset", b"1")],
        [("streamrec-source-topic", b"plays")],
        [],
    ],
)
async def test_a_rekeyed_copy_with_a_foreign_origin_is_dead_lettered_where_it_is(origin: list[Any]) -> None:
    processor, fakes = make_processor()
    copy = FakeMessage("streamrec-rekeyed-events", b"u5", orjson.dumps(play("u5", "syn-01")), headers=origin)
    await processor.handle_batch([copy])
    [sent] = fakes.dlq.sent
    letter = orjson.loads(sent["value"])
    assert letter["error_code"] == "internal_error"
    assert (letter["source_topic"], letter["offset"]) == ("streamrec-rekeyed-events", copy.offset)
    assert not fakes.lists and not processor.profiles.holds("u5")


async def test_origin_headers_on_an_input_topic_are_ignored() -> None:
    processor, fakes = make_processor()
    origin = [("streamrec-source-topic", b"ratings"), ("streamrec-source-partition", b"0")]
    record = FakeMessage("plays", b"u6", orjson.dumps(play("u6", "syn-01")), headers=origin)
    await processor.handle_batch([record])
    assert not fakes.dlq.sent and b"u6" in fakes.lists


async def test_a_batch_publishes_one_list_per_user_reflecting_all_of_its_events() -> None:
    processor, fakes = make_processor()
    lists, dlq = fakes.lists, fakes.dlq
    writes: list[bytes] = []
    backing = processor.profiles.stored.backing
    original = type(backing).__setitem__

    class Counting(dict[bytes, bytes]):
        def __setitem__(self, key: bytes, value: bytes) -> None:
            writes.append(key)
            original(self, key, value)

    processor.profiles.stored.backing = Counting(backing)
    u1 = [play("u1", "syn-01"), rating("u1", "syn-02", 5.0), play("u1", "syn-03")]
    u2 = rating("u2", "syn-01", 2.0)
    batch = [incoming("plays", u1[0], "u1"), incoming("ratings", u1[1], "u1"), incoming("ratings", u2, "u2")]
    batch.append(incoming("plays", u1[2], "u1"))
    batch.append(incoming("plays", u1[0], "u1"))  # a redelivery inside the batch: a duplicate
    await processor.handle_batch(batch)
    assert not dlq.sent
    assert [send["key"] for send in lists.sends] == [b"u1", b"u2"]  # one list each, in first-event order
    first = orjson.loads(lists[b"u1"])
    assert first["event_ids"] == [e["event_id"] for e in u1] and first["trigger_event_id"] == u1[-1]["event_id"]
    assert sorted(writes) == [b"u1", b"u2"]  # each profile written (changelogged) once
    watched = {item["item_id"] for item in first["items"]}
    assert not watched & {"syn-01", "syn-02", "syn-03"}  # the list reflects all three events
    assert processor.outputs.recent_lists.get("u1") == lists[b"u1"]


async def test_without_coalescing_every_event_gets_its_own_list_in_order() -> None:
    processor, fakes = make_processor(coalesce=False)
    lists, dlq = fakes.lists, fakes.dlq
    u1 = [play("u1", "syn-01"), rating("u1", "syn-02", 5.0), play("u1", "syn-03")]
    u2 = rating("u2", "syn-01", 2.0)
    batch = [incoming("plays", u1[0], "u1"), incoming("ratings", u1[1], "u1"), incoming("ratings", u2, "u2")]
    batch.append(incoming("plays", u1[2], "u1"))
    await processor.handle_batch(batch)
    assert not dlq.sent
    bodies = [orjson.loads(send["value"]) for send in lists.sends]
    assert [b["event_ids"] for b in bodies if b["user_id"] == "u1"] == [[e["event_id"]] for e in u1]
    assert [b["event_ids"] for b in bodies if b["user_id"] == "u2"] == [[u2["event_id"]]]
    first, second = (b for b in bodies if b["user_id"] == "u1" and b["event_ids"] != [u1[2]["event_id"]])
    assert "syn-02" in {item["item_id"] for item in first["items"]}  # not yet rated when the first list was made
    assert "syn-02" not in {item["item_id"] for item in second["items"]}


async def test_a_redelivered_record_is_not_learnt_again_but_named_in_the_next_list() -> None:
    """A batch handled again after a crash: its records are known by their offsets (not learnt twice, however many
    events the viewer had since), and each is named again in a list, in case the list naming it was lost."""
    processor, fakes = make_processor()
    first = [incoming("ratings", rating("u1", item, 4.0), "u1") for item in ("syn-01", "syn-02", "syn-03", "syn-04")]
    await processor.handle_batch(first)
    assert not fakes.dlq.sent
    profile = processor.profiles.get("u1")
    assert profile is not None and profile.n_events == 4
    await processor.handle_batch(first[2:])  # the crash came after the profile was written, before the commit
    again = orjson.loads(fakes.lists[b"u1"])
    assert again["event_ids"] == [orjson.loads(r.value)["event_id"] for r in first[2:]]
    profile = processor.profiles.get("u1")
    assert profile is not None and (profile.n_events, profile.rating_count) == (4, 4)
