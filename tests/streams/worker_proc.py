"""Test helpers for the Faust worker: run `python -m streamrec.streams.cli worker` as a real subprocess, a small
synthetic catalog, event builders, and waiting for records / HTTP answers with generous deadlines (no timing asserts).

Imported by tests/streams/test_{pipeline,recovery,views}.py (pytest runs with --import-mode=importlib, so they
put this directory on sys.path first).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import SecretStr

from streamrec.models.events import CatalogItem, event_to_dict
from streamrec.streams.kafka import JsonProducer, Record
from streamrec.streams.kafka.consumer import TopicTail
from streamrec.streams.settings import Settings
from streamrec.streams.tools.worker_process import WorkerProcess as WorkerProcess  # re-exported for the test modules
from streamrec.streams.tools.worker_process import free_port
from streamrec.streams.tools.worker_process import http_get as sync_http_get
from streamrec.streams.tools.worker_process import settings_env as settings_env

_T = TypeVar("_T")
DEADLINE_S = 120.0  # generous: a worker start includes a group join and table recovery

# A small synthetic catalog, the same in every module that uses it (the catalog topic is shared and compacted).
_GENRES = ("Drama", "Comedy", "Sci-Fi", "Thriller", "Documentary", "Animation")
_CREATORS = ("Ada Reyes", "Bo Lindqvist", "Chidi Okafor", "Dana Mirza", "Eli Novak", "Fumiko Sato")
_TITLES = (
    "Zephyr Canyon",
    "Zephyr Canyon Returns",
    "Glass Orchard",
    "Copper Lanterns",
    "Midnight Harbor",
    "Harbor of Salt",
    "The Quiet Engine",
    "Paper Comets",
    "Velvet Static",
    "A Map of Rain",
    "Iron Meadow",
    "Small Hours",
    "Kettle and Crow",
    "Northern Gauge",
    "The Lost Almanac",
    "Bright Machinery",
    "Saltwater Choir",
    "Hollow Lantern",
    "Amber Signal",
    "Tin Orchestra",
)
CATALOG: tuple[CatalogItem, ...] = tuple(
    CatalogItem(
        item_id=f"syn-{n:02d}",
        title=title,
        genres=(_GENRES[n % 6],) if n % 3 else (_GENRES[n % 6], _GENRES[(n + 1) % 6]),
        creators=(_CREATORS[n % 6],),
        duration_seconds=3600 + 120 * n,
        year=1990 + n,
    )
    for n, title in enumerate(_TITLES)
)
ITEM_IDS = frozenset(item.item_id for item in CATALOG)


def run_sync(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine from sync code (fixtures) on a private loop in a helper thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def worker_settings(broker_settings: Settings, root: Path, *, app_id: str | None = None, **overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "bootstrap_servers": broker_settings.bootstrap_servers,
        "broker_dir": broker_settings.broker_dir,
        "partitions": broker_settings.partitions,
        "app_id": app_id or f"streamrec-worker-test-{uuid.uuid4().hex[:8]}",
        "data_dir": root / "data",
        "model_dir": root / "models",
        "cache_dir": root / "cache",
        "web_port": free_port(),
        "profile_view": True,  # the tests compare stored profiles over HTTP
        **overrides,
    }
    return Settings(_env_file=None, **fields)


async def http_get(
    url: str, timeout_s: float = 10.0, *, token: SecretStr | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body); status 0 when nothing answers; `token`: the worker's STREAMREC_HTTP_TOKEN."""
    return await asyncio.to_thread(functools.partial(sync_http_get, url, timeout_s, token=token))


async def get_json_until(
    url: str, accept: Callable[[int, Any], bool], timeout_s: float = DEADLINE_S, *, token: SecretStr | None = None
) -> tuple[int, Any]:
    """Poll `url` until `accept(status, json)`; returns the accepted answer (TimeoutError otherwise)."""
    deadline = time.monotonic() + timeout_s
    last: tuple[int, Any] = (0, None)
    while time.monotonic() < deadline:
        status, _, body = await http_get(url, token=token)
        try:
            last = (status, orjson.loads(body) if body else None)
        except orjson.JSONDecodeError:
            last = (status, body)
        if accept(*last):
            return last
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{url}: last answer {last!r}")


# -- producing ------------------------------------------------------------------------------------------------


def catalog_records(items: Iterable[CatalogItem] = CATALOG) -> list[tuple[str, bytes]]:
    return [(item.item_id, orjson.dumps(event_to_dict(item))) for item in items]


async def publish_catalog(bootstrap: str, items: Iterable[CatalogItem] = CATALOG) -> None:
    async with JsonProducer(bootstrap) as producer:
        for key, value in catalog_records(items):
            await producer.send("catalog", value, key=key)


async def send(bootstrap: str, topic: str, value: dict[str, Any] | bytes, key: str | None) -> None:
    async with JsonProducer(bootstrap) as producer:
        await producer.send(topic, value, key=key)


def rating(user: str, item: str, stars: float, *, event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id or uuid.uuid4().hex, "user_id": user, "item_id": item, "rating": stars, **extra}


def play(user: str, item: str, seconds: float = 3000.0, *, event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "user_id": user,
        "item_id": item,
        "watched_seconds": seconds,
        **extra,
    }


def search(user: str, query: str, *, event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id or uuid.uuid4().hex, "user_id": user, "query": query, **extra}


def user_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- waiting for records ------------------------------------------------------------------------------------------


async def next_matching(
    records: TopicTail, accept: Callable[[Record], bool], *, count: int = 1, timeout_s: float = DEADLINE_S
) -> list[Record]:
    """The next `count` records of a started tail that satisfy `accept` (TimeoutError otherwise)."""
    found: list[Record] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(found) < count:
                record = await anext(records)
                if accept(record):
                    found.append(record)
    except TimeoutError:
        raise TimeoutError(f"got {len(found)} of {count} matching records in {timeout_s:.0f} s") from None
    return found


async def drain(records: TopicTail, accept: Callable[[Record], bool], quiet_s: float) -> list[Record]:
    """Matching records arriving until nothing has come for `quiet_s` (used to show that something did NOT
    happen after a later marker event was already seen, not as a timing assertion)."""
    found: list[Record] = []
    while True:
        try:
            async with asyncio.timeout(quiet_s):
                record = await anext(records)
        except TimeoutError:
            return found
        if accept(record):
            found.append(record)


def keyed(user: str) -> Callable[[Record], bool]:
    key = user.encode()
    return lambda record: record.key == key
