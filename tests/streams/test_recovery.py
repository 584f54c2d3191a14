"""Worker state across restarts: local RocksDB after a graceful restart, the changelogs after losing the state dir.

Profiles are compared by the SHA-256 of the stored bytes (`/users/{id}/profile`), so "equal" means exactly equal.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import rocksdict

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the helper importable

from worker_proc import (
    WorkerProcess,
    get_json_until,
    http_get,
    keyed,
    next_matching,
    play,
    publish_catalog,
    rating,
    search,
    send,
    user_id,
    worker_settings,
)

from streamrec.streams.kafka import tail
from streamrec.streams.kafka.admin import RECOMMENDATIONS
from streamrec.streams.kafka.consumer import read_all
from streamrec.streams.settings import Settings


@pytest.fixture(scope="module")
def settings(broker_settings: Settings, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return worker_settings(
        broker_settings, tmp_path_factory.mktemp("recovery"), app_id=f"recovery-{uuid.uuid4().hex[:6]}"
    )


class Running:
    """`async with Running(settings, log)`: a healthy worker, stopped gracefully (exit status 0) on exit."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.proc = WorkerProcess(settings, log)

    async def __aenter__(self) -> WorkerProcess:
        self.proc.start()
        try:
            await self.proc.wait_healthy()
        except BaseException:
            self.proc.stop()
            raise
        return self.proc

    async def __aexit__(self, *exc: object) -> None:
        code = self.proc.stop()
        assert code == 0, f"worker did not stop cleanly ({code}):\n{self.proc.log_tail()}"


async def profile_of(worker: WorkerProcess, user: str) -> dict[str, Any]:
    _, body = await get_json_until(f"{worker.base_url}/users/{user}/profile", lambda status, _: status == 200)
    return dict(body)


async def current_list(worker: WorkerProcess, user: str) -> bytes:
    await get_json_until(f"{worker.base_url}/users/{user}/recommendations", lambda status, _: status == 200)
    status, _, raw = await http_get(f"{worker.base_url}/users/{user}/recommendations")
    assert status == 200
    return raw


async def send_and_wait(bootstrap: str, user: str, events: list[tuple[str, dict[str, Any]]]) -> bytes:
    """Send events for `user`, wait until lists reflecting all of them are out; returns the last list's bytes.

    A batch holding several of the user's events publishes one list naming them all (`event_ids`), and
    records of different topics have no defined processing order, so the events are compared as a set; all
    of a user's lists are in one partition, so the last one found is the last one written."""
    wanted = {e["event_id"] for _, e in events}
    covered: list[str] = []
    async with tail(bootstrap, RECOMMENDATIONS) as records:
        for topic, event in events:
            await send(bootstrap, topic, event, key=user)
        found: list[Any] = []
        while set(covered) != wanted:
            [record] = await next_matching(records, keyed(user))
            found.append(record)
            covered += record.json()["event_ids"]
    assert sorted(covered) == sorted(wanted)  # each event reflected by exactly one list
    value = found[-1].value
    assert value is not None
    return value


async def assert_ranked_from_profile(worker: WorkerProcess, user: str, watched: set[str]) -> None:
    """After a restart the view has no published list in memory: it ranks from the (restored) profile."""
    body = orjson.loads(await current_list(worker, user))
    assert body["user_id"] == user and body["event_ids"] == [] and body["trigger_event_id"] is None
    assert body["items"] and not {item["item_id"] for item in body["items"]} & watched


async def test_state_survives_restart_and_is_rebuilt_from_the_changelogs(
    settings: Settings, kafka_bootstrap: str
) -> None:
    await publish_catalog(kafka_bootstrap)
    log = settings.data_dir.parent / "worker.log"
    user = user_id("restart")

    async with Running(settings, log) as worker:
        events = [
            ("plays", play(user, "syn-01")),
            ("ratings", rating(user, "syn-02", 4.5)),
            ("searches", search(user, "amber")),
        ]
        last_list = await send_and_wait(kafka_bootstrap, user, events)
        before = await profile_of(worker, user)
        assert before["n_events"] == 3 and sorted(h["item_id"] for h in before["history"]) == ["syn-01", "syn-02"]
        assert await current_list(worker, user) == last_list

    tables_dir = settings.data_dir / settings.app_id
    assert any(p.name.startswith("profiles-") for p in tables_dir.rglob("*.db")), "no RocksDB files on disk"

    # 1) Graceful restart: the local RocksDB state is reused.
    async with Running(settings, log) as worker:
        assert await profile_of(worker, user) == before
        await assert_ranked_from_profile(worker, user, {"syn-01", "syn-02"})
        last_list = await send_and_wait(kafka_bootstrap, user, [("plays", play(user, "syn-03"))])
        assert await current_list(worker, user) == last_list
        after = await profile_of(worker, user)
        # Offsets were committed at shutdown: nothing was applied twice, the new event exactly once.
        assert after["n_events"] == 4 and sorted(h["item_id"] for h in after["history"]) == [
            "syn-01",
            "syn-02",
            "syn-03",
        ]

    # 2) Local state lost: the profiles table is rebuilt from its changelog.
    shutil.rmtree(settings.data_dir)
    async with Running(settings, log) as worker:
        assert await profile_of(worker, user) == after
        await assert_ranked_from_profile(worker, user, {"syn-01", "syn-02", "syn-03"})
        # ... and the rebuilt state keeps working.
        await send_and_wait(kafka_bootstrap, user, [("ratings", rating(user, "syn-04", 3.0))])
        assert (await profile_of(worker, user))["n_events"] == 5
    assert "Traceback" not in log.read_text(errors="replace")


async def test_the_changelog_and_the_persisted_offsets_cover_every_profile_written(
    settings: Settings, kafka_bootstrap: str
) -> None:
    """A batch's profiles go to RocksDB and the changelog at once (`streams.internals.table_writes`): after a
    graceful stop each partition's persisted offset (what a restart reads the changelog from) is its changelog's
    last record, and the changelog's last record of each viewer is the profile the worker holds."""
    await publish_catalog(kafka_bootstrap)
    log = settings.data_dir.parent / "changelog-worker.log"
    users = [user_id(f"changelog-{k}") for k in range(6)]
    async with Running(settings, log) as worker:
        for k, user in enumerate(users):
            await send_and_wait(kafka_bootstrap, user, [("plays", play(user, f"syn-0{1 + k % 5}"))])
        held = {user: (await profile_of(worker, user))["bytes_sha256"] for user in users}

    changelog = await read_all(kafka_bootstrap, f"{settings.app_id}-profiles-changelog")
    last: dict[int, int] = {}
    latest: dict[bytes, bytes | None] = {}
    for record in changelog:
        last[record.partition] = record.offset
        assert record.key is not None
        latest[record.key] = record.value
    for user in users:
        value = latest[user.encode()]
        assert value is not None and hashlib.sha256(value).hexdigest() == held[user]
    databases = {
        int(path.name.split("-")[-1].split(".")[0]): path for path in (settings.data_dir).rglob("profiles-*.db")
    }
    assert set(last) <= set(databases)
    for partition, offset in last.items():
        db = rocksdict.Rdict(
            str(databases[partition]),
            options=rocksdict.Options(raw_mode=True),
            access_type=rocksdict.AccessType.read_only(),
        )
        try:
            assert int(db[b"__faust\0offset__"]) == offset
        finally:
            db.close()
