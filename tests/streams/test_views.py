"""Web views with two workers of one app behind a bearer token: any worker answers for any user (table_route
forwards the request, token included, to the owner); /health and /metrics stay open. The workers talk to the
broker over SASL/PLAIN (the embedded broker takes it; tests/streams/kafka/test_security.py has the rest)."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the helper importable

from worker_proc import (
    DEADLINE_S,
    WorkerProcess,
    get_json_until,
    http_get,
    next_matching,
    play,
    publish_catalog,
    run_sync,
    send,
    user_id,
    worker_settings,
)

from streamrec.streams.kafka import tail
from streamrec.streams.kafka.admin import RECOMMENDATIONS
from streamrec.streams.settings import Settings

PARTITIONS = 4
TOKEN = SecretStr(f"views-{uuid.uuid4().hex}")
SASL_PASSWORD = SecretStr(uuid.uuid4().hex)


def partition_of(user: str) -> int:
    return int(DefaultPartitioner()(user.encode(), list(range(PARTITIONS)), list(range(PARTITIONS))))


def one_user_per_partition() -> dict[int, str]:
    users: dict[int, str] = {}
    while len(users) < PARTITIONS:
        user = user_id("view")
        users.setdefault(partition_of(user), user)
    return users


@pytest.fixture(scope="module")
def workers(
    broker_settings: Settings, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerProcess, WorkerProcess]]:
    app_id = f"views-{uuid.uuid4().hex[:6]}"
    root = tmp_path_factory.mktemp("views")
    secured = {
        "http_token": TOKEN,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_username": "views",
        "sasl_password": SASL_PASSWORD,
    }
    a = WorkerProcess(worker_settings(broker_settings, root / "a", app_id=app_id, **secured), root / "a.log")
    b = WorkerProcess(worker_settings(broker_settings, root / "b", app_id=app_id, **secured), root / "b.log")
    run_sync(publish_catalog(kafka_bootstrap))
    try:
        a.start()
        run_sync(a.wait_healthy())
        run_sync(wait_until_idle(a))
        b.start()
        run_sync(wait_for_split(a, b))
        yield a, b
    finally:
        # Both at once: a lone survivor would have to rebalance while the other leaves (slow on noida-db).
        a.terminate()
        b.terminate()
        codes = (b.stop(), a.stop())
        assert codes == (0, 0), f"workers did not stop cleanly {codes}:\n{a.log_tail()}\n{b.log_tail()}"


async def wait_until_idle(worker: WorkerProcess) -> None:
    """Until the worker has handled everything already on its input topics (a new group starts at the
    beginning, i.e. with the other modules' events) and has committed it.

    Why: noida-db answers an offset commit made during a rebalance with IllegalGeneration (a real broker
    accepts it); aiokafka then rejoins under a new member id, the group waits the rebalance timeout (60 s)
    for the old id and was seen to wedge (re-joining every 60 s, no leader syncing). A worker with nothing
    left to commit sends no commit when the second worker's join triggers the rebalance.
    """
    deadline = time.monotonic() + 2 * DEADLINE_S
    text = ""
    while time.monotonic() < deadline:
        status, _, body = await http_get(f"{worker.base_url}/metrics")
        text = body.decode()
        lags = [
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("streamrec_consumer_lag{")
        ]
        if status == 200 and len(lags) >= 4 * PARTITIONS and not any(lags):
            await asyncio.sleep(6.0)  # > Faust's commit interval (2.8 s): the last offsets are committed
            return
        await asyncio.sleep(1.0)
    raise TimeoutError(f"worker never caught up with its input topics:\n{text[-2000:]}")


async def wait_for_split(a: WorkerProcess, b: WorkerProcess) -> None:
    """Both healthy and owning disjoint, non-empty partition sets that cover every partition.

    Allows two rebalance timeouts: on noida-db a join can stall for the group's rebalance timeout (60 s)."""
    deadline = time.monotonic() + 2 * DEADLINE_S
    last: Any = None
    while time.monotonic() < deadline:
        answers = [await http_get(f"{w.base_url}/health") for w in (a, b)]
        if all(status == 200 for status, _, _ in answers):
            owned = [set(orjson.loads(body)["partitions"]) for _, _, body in answers]
            last = owned
            if all(owned) and not owned[0] & owned[1] and owned[0] | owned[1] == set(range(PARTITIONS)):
                return
        await asyncio.sleep(1.0)
    raise TimeoutError(f"partitions never split between the workers (last {last}):\n{a.log_tail()}\n{b.log_tail()}")


async def test_any_worker_serves_any_users_list(
    workers: tuple[WorkerProcess, WorkerProcess], kafka_bootstrap: str
) -> None:
    users = one_user_per_partition()
    events = {user: play(user, f"syn-{10 + p:02d}") for p, user in users.items()}
    async with tail(kafka_bootstrap, RECOMMENDATIONS) as records:
        for user, event in events.items():
            await send(kafka_bootstrap, "plays", event, key=user)
        wanted = {event["event_id"] for event in events.values()}
        found = await next_matching(records, lambda r: r.json().get("trigger_event_id") in wanted, count=len(events))
    published = {record.key.decode(): record.value for record in found if record.key}
    assert set(published) == set(users.values())

    for worker in workers:
        for user, value in published.items():
            # 503 is possible while partitions move; poll until the owner answers.
            url = f"{worker.base_url}/users/{user}/recommendations"
            await get_json_until(url, lambda s, _: s == 200, token=TOKEN)
            status, headers, body = await http_get(url, token=TOKEN)
            assert status == 200 and headers["Content-Type"].startswith("application/json")
            assert body == value, f"{worker.base_url} served a different list for {user}"
            assert (await http_get(url))[0] == 401  # without the token
            _, profile = await get_json_until(
                f"{worker.base_url}/users/{user}/profile", lambda s, _: s == 200, token=TOKEN
            )
            assert profile["user_id"] == user and [h["item_id"] for h in profile["history"]] == [
                events[user]["item_id"]
            ]


async def test_unknown_user_is_404_on_every_worker(workers: tuple[WorkerProcess, WorkerProcess]) -> None:
    for _ in range(PARTITIONS * 2):  # unknown users on either worker's partitions
        user = f"nobody-{uuid.uuid4().hex}"
        for worker in workers:
            status, body = await get_json_until(
                f"{worker.base_url}/users/{user}/recommendations", lambda s, _: s in (200, 404), token=TOKEN
            )
            assert status == 404 and body == {"error": "unknown_user", "user_id": user}


async def test_health_and_metrics_on_both_without_the_token(workers: tuple[WorkerProcess, WorkerProcess]) -> None:
    for worker in workers:
        status, health = await get_json_until(f"{worker.base_url}/health", lambda s, _: s == 200)
        assert health["status"] == "ok" and health["catalog_ready"] and health["catalog_items"] >= 20
        status, headers, text = await http_get(f"{worker.base_url}/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert b"streamrec_catalog_items" in text


async def test_the_workers_use_sasl_and_never_log_the_secrets(workers: tuple[WorkerProcess, WorkerProcess]) -> None:
    for worker in workers:
        log = worker.log_text()
        assert "Sending username and password in the clear" in log  # aiokafka's SASL/PLAIN warning: SASL is on
        assert SASL_PASSWORD.get_secret_value() not in log and TOKEN.get_secret_value() not in log
