"""Worker state across restarts: local RocksDB after a graceful restart, the changelogs after losing the state dir.

Profiles are compared by the SHA-256 of the stored bytes (`/users/{id}/profile`), so "equal" means exactly equal.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

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

from streams.kafka import tail
from streams.kafka.admin import RECOMMENDATIONS
from streams.settings import Settings


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
    """Send events for `user`, wait for their lists; returns the bytes of the list published last.

    Records of different topics have no defined processing order (a fresh group may be catching up on a
    backlog), so the triggers are compared as a set; all of a user's lists are in one partition, so the last
    one found is the last one written."""
    async with tail(bootstrap, RECOMMENDATIONS) as records:
        for topic, event in events:
            await send(bootstrap, topic, event, key=user)
        found = await next_matching(records, keyed(user), count=len(events))
    assert sorted(r.json()["trigger_event_id"] for r in found) == sorted(e["event_id"] for _, e in events)
    value = found[-1].value
    assert value is not None
    return value


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
        assert await current_list(worker, user) == last_list
        last_list = await send_and_wait(kafka_bootstrap, user, [("plays", play(user, "syn-03"))])
        after = await profile_of(worker, user)
        # Offsets were committed at shutdown: nothing was applied twice, the new event exactly once.
        assert after["n_events"] == 4 and sorted(h["item_id"] for h in after["history"]) == [
            "syn-01",
            "syn-02",
            "syn-03",
        ]

    # 2) Local state lost: both tables are rebuilt from their changelogs (profiles-changelog, recommendations).
    shutil.rmtree(settings.data_dir)
    async with Running(settings, log) as worker:
        assert await profile_of(worker, user) == after
        assert await current_list(worker, user) == last_list
        # ... and the rebuilt state keeps working.
        await send_and_wait(kafka_bootstrap, user, [("ratings", rating(user, "syn-04", 3.0))])
        assert (await profile_of(worker, user))["n_events"] == 5
    assert "Traceback" not in log.read_text(errors="replace")
