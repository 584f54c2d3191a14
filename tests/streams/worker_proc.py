"""Test helpers for the Faust worker: run `python -m streams.cli worker` as a real subprocess, a small synthetic
catalog, event builders, and waiting for records / HTTP answers with generous deadlines (no timing asserts).

Imported by tests/streams/test_{pipeline,recovery,views}.py (pytest runs with --import-mode=importlib, so they
put this directory on sys.path first).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from models.events import CatalogItem, event_to_dict
from streams.kafka import JsonProducer, Record
from streams.kafka.consumer import TopicTail
from streams.settings import Settings

_T = TypeVar("_T")
ROOT = Path(__file__).resolve().parents[2]
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
        **overrides,
    }
    return Settings(_env_file=None, **fields)  # type: ignore[call-arg]


def settings_env(settings: Settings) -> dict[str, str]:
    """The STREAMREC_* environment that makes a subprocess see `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    for name, value in settings.model_dump().items():
        env[f"STREAMREC_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class WorkerProcess:
    """`python -m streams.cli worker` in a subprocess; always stopped with SIGTERM (never SIGKILL first)."""

    settings: Settings
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    _log: Any = field(default=None, repr=False)
    _terminated: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--log-level", "info"],
            cwd=ROOT,
            env=settings_env(self.settings),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    async def wait_healthy(self, timeout_s: float = DEADLINE_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}; log:\n{self.log_tail()}")
            last = await http_get(self.base_url + "/health")
            if last[0] == 200:
                return dict(orjson.loads(last[2]))
            await asyncio.sleep(0.5)
        raise TimeoutError(f"worker not healthy after {timeout_s:.0f} s (last {last!r}); log:\n{self.log_tail()}")

    def terminate(self) -> None:
        """Send SIGTERM without waiting (to stop several workers at once; then call `stop`)."""
        if self.proc is not None and self.proc.poll() is None and not self._terminated:
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, timeout_s: float = 150.0) -> int:
        """SIGTERM, then wait; a second SIGTERM if it hangs; SIGKILL only as the very last resort.

        The wait is long on purpose: on noida-db a worker stopping during a rebalance can need the group's
        rebalance timeout (60 s) before its consumer leaves (see streams/app.py).
        """
        proc = self.proc
        if proc is None:
            return 0
        try:
            if proc.poll() is None:
                # Only one SIGTERM: a second one arriving after the worker closed its loop (and with it the
                # signal handlers) would kill it mid-shutdown.
                self.terminate()
                try:
                    proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            return int(proc.returncode)
        finally:
            self.proc = None
            self._terminated = False
            if self._log is not None:
                self._log.close()
                self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


async def http_get(url: str, timeout_s: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body); status 0 when nothing answers."""

    def fetch() -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()
        except (urllib.error.URLError, OSError):
            return 0, {}, b""

    return await asyncio.to_thread(fetch)


async def get_json_until(
    url: str, accept: Callable[[int, Any], bool], timeout_s: float = DEADLINE_S
) -> tuple[int, Any]:
    """Poll `url` until `accept(status, json)`; returns the accepted answer (TimeoutError otherwise)."""
    deadline = time.monotonic() + timeout_s
    last: tuple[int, Any] = (0, None)
    while time.monotonic() < deadline:
        status, _, body = await http_get(url)
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
