"""A hostile flood on the real broker: 10,000 bad records of many kinds, mixed with valid events, into one worker.

Every bad record must come back once on `events-dlq` with a reason (matched by where it lives: topic, partition,
offset), every valid event must be named in a published list, the worker must answer /health with 200 throughout,
and its resident memory must stay flat once warmed up (VmRSS after the second half of the flood within 15 % of
VmRSS after the first: a memory bound, not a timing one). A broker of the test's own, so its topics hold only
this flood.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the helper importable

from worker_proc import CATALOG, catalog_records, worker_settings

from streamrec.models.events import ErrorCode
from streamrec.streams.kafka import create_topics, default_topics, tail
from streamrec.streams.kafka.admin import RECOMMENDATIONS
from streamrec.streams.settings import Settings
from streamrec.streams.tools import broker
from streamrec.streams.tools.worker_process import ROOT, WorkerProcess, free_port, http_get
from streamrec.streams.worker.records import H_OFFSET, H_PARTITION, H_TOPIC, rekeyed_topic_name

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

DLQ = "events-dlq"
HOSTILE = 10_000
PHASES = (2_000, 4_000, 4_000)  # hostile records per phase: warm-up, first half, second half
VALID_EVERY = 10  # one valid event after every 10 hostile records
RSS_GROWTH_BOUND = 1.15
ITEMS = [item.item_id for item in CATALOG]
USERS = [f"flood-viewer-{n}" for n in range(60)]
OVERSIZED_BYTES = 17 << 10  # just beyond max_event_bytes (16 KiB); every HUGE_EVERY-th record far beyond
HUGE_BYTES = 600_000  # a value or a key this size: its dead letter must still fit in one Kafka record
HUGE_EVERY = 40


@dataclass(frozen=True, slots=True)
class Bad:
    """One record to send: `code` is the dead letter's expected error code, None for a valid event."""

    topic: str
    key: bytes | None
    value: bytes | None
    code: str | None
    headers: tuple[tuple[str, bytes], ...] = ()
    event_id: str | None = None  # a valid event's id


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # not orjson: it refuses the integers beyond 64 bits some records carry


def _base(kind: str, n: int, user: str = "flood-bad") -> dict[str, Any]:
    doc: dict[str, Any] = {"event_id": f"bad-{n}", "user_id": user}
    if kind == "ratings":
        doc |= {"item_id": ITEMS[n % len(ITEMS)], "rating": 4.0}
    elif kind == "plays":
        doc |= {"item_id": ITEMS[n % len(ITEMS)], "watched_seconds": 600.0}
    else:
        doc |= {"query": "zephyr canyon"}
    return doc


def _keyed(kind: str, doc: dict[str, Any], code: str, *, key: bytes | str | None = "user") -> Bad:
    raw_key = str(doc.get("user_id", "")).encode() if key == "user" else key
    assert not isinstance(raw_key, str)
    return Bad(kind, raw_key, _json(doc), code)


BAD_IDS = ["u\x00", "\x1b[2J", "u\n1", "\t", "u\u202e1", "\u200bu", "\ufeffu", "u\u2028", "u\U000e0041", "   ", "\xa0"]


def _hostile_makers() -> list[Callable[[str, int], Bad]]:
    """Each maker: (a user-event topic, a counter) -> one hostile record of its kind."""

    def not_json(kind: str, n: int) -> Bad:
        raw = [b'{"event_id": "x", "user_id": ', b"garbage", b"", b'{"rating": NaN}', b"[" * 2_000][n % 5]
        return Bad(kind, b"flood-bad", raw, ErrorCode.NOT_JSON)

    def not_utf8(kind: str, n: int) -> Bad:
        return Bad(kind, None if n % 2 else b"flood-bad", b"\xff\xfe\x00" + n.to_bytes(4, "big"), ErrorCode.NOT_JSON)

    def tombstone(kind: str, n: int) -> Bad:
        return Bad(kind, b"flood-bad", None, ErrorCode.NOT_JSON)

    def not_object(kind: str, n: int) -> Bad:
        return Bad(kind, None, [b"[1, 2]", b'"text"', b"42", b"null", b"true"][n % 5], ErrorCode.NOT_OBJECT)

    def missing(kind: str, n: int) -> Bad:
        doc = _base(kind, n)
        del doc[list(doc)[n % len(doc)]]
        return _keyed(kind, doc, ErrorCode.MISSING_FIELD, key=b"flood-bad" if "user_id" not in doc else "user")

    def wrong_type(kind: str, n: int) -> Bad:
        field_name, value = [
            ("event_id", 1.5),
            ("user_id", ["u"]),
            ("event_id", {"id": 1}),
            ("user_id", True),
            ("ts", "now"),
            ("ts", 1.5),
            ("event_id", 2**64),  # beyond 64 bits: decoded as a float
        ][n % 7]
        return _keyed(kind, _base(kind, n) | {field_name: value}, ErrorCode.WRONG_TYPE, key=None)

    def out_of_range(kind: str, n: int) -> Bad:
        doc = _base(kind, n)
        if kind == "ratings":
            doc["rating"] = [-1.0, 99, 1e308, 0.0][n % 4]
        elif kind == "plays":
            doc["watched_seconds"] = [-5.0, 1e300][n % 2]
        else:
            doc["query"] = ["q" * 201, "   "][n % 2]
        if n % 3 == 0:
            doc = _base(kind, n) | {"ts": -1}
        if n % 5 == 0:
            doc = _base(kind, n) | {"event_id": ["", "e" * 65][n % 2]}
        return _keyed(kind, doc, ErrorCode.OUT_OF_RANGE)

    def unprintable_id(kind: str, n: int) -> Bad:
        names = ["event_id", "user_id", "item_id" if kind != "searches" else "clicked_item_id"]
        doc = _base(kind, n) | {names[n % 3]: BAD_IDS[n % len(BAD_IDS)]}
        return _keyed(kind, doc, ErrorCode.INVALID_ID, key=None if n % 2 else "user")

    def oversized(kind: str, n: int) -> Bad:
        size = HUGE_BYTES if n % HUGE_EVERY == 0 else OVERSIZED_BYTES + (n % 8) * 4096
        return _keyed(kind, _base(kind, n) | {"padding": "x" * size}, ErrorCode.OVERSIZED)

    def unknown_item(kind: str, n: int) -> Bad:
        doc = _base(kind, n) | ({"clicked_item_id": f"nope-{n}"} if kind == "searches" else {"item_id": f"nope-{n}"})
        return _keyed(kind, doc, ErrorCode.UNKNOWN_ITEM, key=None if n % 2 else "user")

    def future(kind: str, n: int) -> Bad:
        return _keyed(kind, _base(kind, n) | {"ts": int(time.time() * 1000) + 86_400_000}, ErrorCode.FUTURE_EVENT)

    def key_mismatch(kind: str, n: int) -> Bad:
        key = b"k" * HUGE_BYTES if n % HUGE_EVERY == 0 else [b"someone-else", b"\xff\xfe"][n % 2]
        user = "\ufffd" if key == b"\xff\xfe" else "flood-bad"  # a lenient decode of the key would match it
        return _keyed(kind, _base(kind, n, user=user), ErrorCode.KEY_MISMATCH, key=key)

    def unknown_kind(kind: str, n: int) -> Bad:
        # Another kind's shape, or a kind of its own ("like"): a required field of this topic is missing.
        other = {"ratings": "searches", "plays": "searches", "searches": "ratings"}[kind]
        doc = _base(other, n) if n % 2 else {"kind": "like", "event_id": f"bad-{n}", "user_id": "flood-bad"}
        return _keyed(kind, doc, ErrorCode.MISSING_FIELD)

    return [
        not_json,
        not_utf8,
        tombstone,
        not_object,
        missing,
        wrong_type,
        out_of_range,
        unprintable_id,
        oversized,
        unknown_item,
        future,
        key_mismatch,
        unknown_kind,
    ]


def _catalog_hostile(n: int) -> Bad:
    item = {"item_id": f"bad-item-{n}", "title": "A Title"}
    doc, code, key = [
        (item | {"title": ""}, ErrorCode.OUT_OF_RANGE, None),
        ({"item_id": f"bad-item-{n}"}, ErrorCode.MISSING_FIELD, None),
        (item | {"year": "1999"}, ErrorCode.WRONG_TYPE, None),
        (item | {"genres": "Drama"}, ErrorCode.WRONG_TYPE, None),
        (item | {"item_id": f"bad\x00{n}"}, ErrorCode.INVALID_ID, f"bad\x00{n}".encode()),
        (item, ErrorCode.KEY_MISMATCH, b"another-item"),
    ][n % 6]
    return Bad("catalog", key or str(doc.get("item_id", "x")).encode(), _json(doc), code)


def _forged_copy(app_id: str, n: int) -> Bad:
    """A record on the internal re-keyed topic whose origin headers the worker did not write."""
    origin = [
        ((H_TOPIC, b"likes"), (H_PARTITION, b"0"), (H_OFFSET, b"1")),
        ((H_TOPIC, b"plays"), (H_PARTITION, b"x"), (H_OFFSET, b"1")),
        ((H_TOPIC, b"plays"),),
        (),
    ][n % 4]
    doc = _base("plays", n, user="flood-bad")
    return Bad(rekeyed_topic_name(app_id), b"flood-bad", _json(doc), ErrorCode.INTERNAL_ERROR, origin)


def _valid(n: int) -> Bad:
    user = USERS[n % len(USERS)]
    kind = ("plays", "ratings", "searches")[n % 3]
    event_id = f"ok-{n}"
    doc: dict[str, Any] = {"event_id": event_id, "user_id": user}
    if kind == "plays":
        doc |= {"item_id": ITEMS[(n * 7) % len(ITEMS)], "watched_seconds": 300.0 + n % 3000}
    elif kind == "ratings":
        doc |= {"item_id": ITEMS[(n * 11) % len(ITEMS)], "rating": float(1 + n % 5)}
    else:
        doc |= {"query": ["zephyr", "harbor", "glass orchard"][n % 3]}
    key = None if n % 10 == 0 else user.encode()  # some arrive unkeyed: routed through the re-keyed topic
    return Bad(kind, key, _json(doc), None, event_id=event_id)


def flood(app_id: str, seed: int = 23) -> Iterator[list[Bad]]:
    """The phases' records: hostile ones of every kind in a shuffled mix, a valid event after every tenth."""
    rng = random.Random(seed)
    makers = _hostile_makers()
    counter = itertools.count()
    valid = itertools.count()
    for size in PHASES:
        records: list[Bad] = []
        for _ in range(size):
            n = next(counter)
            pick = rng.random()
            if pick < 0.06:
                records.append(_catalog_hostile(n))
            elif pick < 0.08:
                records.append(_forged_copy(app_id, n))
            else:
                records.append(makers[n % len(makers)](("ratings", "plays", "searches")[rng.randrange(3)], n))
            if n % VALID_EVERY == VALID_EVERY - 1:
                records.append(_valid(next(valid)))
        yield records


@dataclass
class Seen:
    """What the test read back while the flood ran."""

    letters: list[dict[str, Any]] = field(default_factory=list)
    named: set[str] = field(default_factory=set)  # event ids named in some list
    viewers: set[str] = field(default_factory=set)  # user ids that got a list
    health: collections.Counter[int] = field(default_factory=collections.Counter)  # /health answers by status


async def _read_letters(bootstrap: str, seen: Seen) -> None:
    async with tail(bootstrap, DLQ, from_end=False) as letters:
        async for record in letters:
            seen.letters.append(orjson.loads(record.value or b"null"))


async def _read_lists(bootstrap: str, seen: Seen) -> None:
    async with tail(bootstrap, RECOMMENDATIONS, from_end=False) as lists:
        async for record in lists:
            body = orjson.loads(record.value or b"null")
            seen.named.update(body["event_ids"])
            seen.viewers.add(body["user_id"])


async def _poll_health(worker: WorkerProcess, seen: Seen) -> None:
    while True:
        status, _, _ = await asyncio.to_thread(http_get, worker.base_url + "/health", 20.0)
        seen.health[status] += 1
        await asyncio.sleep(0.25)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


async def _send(producer: AIOKafkaProducer, records: list[Bad]) -> list[tuple[str, int, int]]:
    """Send, wait for every acknowledgement; where each record landed, in order."""
    futures = [await producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers) or None) for r in records]
    await producer.flush()
    return [(m.topic, m.partition, m.offset) for m in await asyncio.gather(*futures)]


async def _until_handled(
    seen: Seen, hostile: int, valid: set[str], worker: WorkerProcess, timeout_s: float = 180.0
) -> None:
    """Wait (generously: not a timing assertion) for the worker to have handled what was sent."""
    deadline = time.monotonic() + timeout_s
    while len(seen.letters) < hostile or not valid <= seen.named:
        assert worker.alive(), f"worker exited:\n{worker.log_tail()}"
        status = f"{len(seen.letters)} of {hostile} dead letters, {len(valid - seen.named)} valid events unnamed"
        assert time.monotonic() < deadline, f"{status} after {timeout_s:.0f} s:\n{worker.log_tail(20)}"
        await asyncio.sleep(0.2)


async def run_flood(root: Path) -> None:
    broker_settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        broker_dir=root / "broker",
        partitions=2,
    )
    bootstrap = broker_settings.bootstrap_servers
    settings = worker_settings(broker_settings, root, app_id=f"flood-{uuid.uuid4().hex[:6]}")
    worker = WorkerProcess(settings, root / "worker.log", log_level="warning")
    seen = Seen()
    await asyncio.to_thread(broker.up, broker_settings, timeout_s=60.0)
    readers: list[asyncio.Task[None]] = []
    try:
        await create_topics(bootstrap, default_topics(settings))
        async with AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 << 20, linger_ms=5) as producer:
            await _send(producer, [Bad("catalog", k.encode(), v, None) for k, v in catalog_records()])
            settings.model_dir.mkdir(parents=True)
            worker.start()
            await worker.wait_healthy(180.0)
            readers = [
                asyncio.create_task(_read_letters(bootstrap, seen)),
                asyncio.create_task(_read_lists(bootstrap, seen)),
                asyncio.create_task(_poll_health(worker, seen)),
            ]
            where: dict[tuple[str, int, int], Bad] = {}
            rss: list[int] = []
            for phase in list(flood(settings.app_id)):
                where.update(zip(await _send(producer, phase), phase, strict=True))
                hostile = sum(1 for r in where.values() if r.code is not None)
                valid = {r.event_id for r in where.values() if r.event_id is not None}
                await _until_handled(seen, hostile, valid, worker)
                rss.append(rss_kib(worker.pid or 0))
        assert worker.alive()
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        code = await worker.stop_async()
        await asyncio.to_thread(broker.down, broker_settings)
    assert code == 0, worker.log_tail()
    check(where, seen, rss)


def check(where: dict[tuple[str, int, int], Bad], seen: Seen, rss: list[int]) -> None:
    hostile = {spot: r for spot, r in where.items() if r.code is not None}
    valid = {r.event_id for r in where.values() if r.event_id is not None}
    letters = collections.Counter((x["source_topic"], x["partition"], x["offset"]) for x in seen.letters)
    print(
        f"\nhostile flood: {len(hostile)} hostile records, {len(valid)} valid events; {len(seen.letters)} dead letters;"
        f" VmRSS after warm-up {rss[0]} KiB, after the first half {rss[1]} KiB, after the second half {rss[2]} KiB;"
        f" /health answers {dict(seen.health)}"
    )
    assert len(hostile) == HOSTILE
    assert set(letters) == set(hostile), "every hostile record dead-lettered, and nothing else"
    assert max(letters.values()) == 1, "each once"
    schema = jsonschema.Draft202012Validator(
        orjson.loads((ROOT / "deploy/schemas/events-dlq.schema.json").read_bytes())
    )
    assert [x for x in seen.letters if not schema.is_valid(x)][:3] == []
    by_spot = {(x["source_topic"], x["partition"], x["offset"]): x for x in seen.letters}
    wrong = {
        spot: (r.code, by_spot[spot]["error_code"], by_spot[spot]["error_message"])
        for spot, r in hostile.items()
        if by_spot[spot]["error_code"] != r.code or not by_spot[spot]["error_message"]
    }
    assert wrong == {}, list(wrong.items())[:5]
    assert valid <= seen.named, f"{len(valid - seen.named)} valid events named in no list"
    assert seen.viewers <= set(USERS), "a list for a viewer no valid event named"
    assert set(seen.health) == {200} and seen.health[200] > 0, seen.health
    assert rss[2] <= rss[1] * RSS_GROWTH_BOUND, f"VmRSS grew from {rss[1]} to {rss[2]} KiB"


def test_a_hostile_flood_is_dead_lettered_whole_while_the_worker_stays_healthy_and_flat(tmp_path: Path) -> None:
    asyncio.run(run_flood(tmp_path))
