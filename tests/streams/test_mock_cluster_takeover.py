"""Two workers on librdkafka's mock cluster (`mock_kafka.py`), one SIGKILLed mid-replay: the mock expires it after
the session timeout (noida-db 0.2.3 never does, see `test_chaos_recovery`), and the survivor takes all partitions
over, without being restarted or told, and names every event in some published list.

The takeover is measured from the kill to the survivor's /health answering 200 with every partition (printed with
what /health and /ready said meanwhile, `pytest -s`). Its bound is the chain the mock runs, with a margin for the
worker: the member expires `SESSION_TIMEOUT_S` after its last heartbeat (the mock checks every second), then the
mock's JoinGroup waits `SESSION_TIMEOUT_S - 1` s for the remaining members whoever has joined (Kafka completes the
join once the remaining members have joined), then Faust assigns and recovers the table partitions it took over.

Opt-in (`STREAMREC_CHAOS=1`, about a minute); skipped when the mock cannot start (no confluent-kafka, or its
library lacks the mock API). docs/scaling.md, "A worker killed mid-stream on librdkafka's mock cluster".
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: make the helpers importable

from mock_kafka import MockCluster, MockClusterUnavailable, worker_topics
from test_chaos import ITEMS, paced, stream, worker_settings
from test_chaos import _outcome as outcome_of

from streamrec.models.events import UserEvent, event_to_dict
from streamrec.models.profile import UserProfile
from streamrec.streams.kafka import JsonProducer
from streamrec.streams.kafka.admin import CATALOG
from streamrec.streams.kafka.consumer import read_all
from streamrec.streams.settings import Settings
from streamrec.streams.tools.worker_process import WorkerProcess

pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(os.environ.get("STREAMREC_CHAOS") != "1", reason="chaos runs are opt-in: STREAMREC_CHAOS=1"),
]

PARTITIONS = 4
SESSION_TIMEOUT_S = 10.0
MOCK_EXPIRY_CHECK_S = 1.0  # the mock looks for expired members once a second
MOCK_JOIN_WAIT_S = SESSION_TIMEOUT_S - 1.0  # the mock's JoinGroup wait after a member expired
WORKER_MARGIN_S = 30.0  # Faust's assignment and table recovery, on a shared 2-core machine
TAKEOVER_BOUND_S = SESSION_TIMEOUT_S + MOCK_EXPIRY_CHECK_S + MOCK_JOIN_WAIT_S + WORKER_MARGIN_S
RATE = 1_000.0  # events a second: a live stream, so the kill lands mid-stream
HEALTHY_DEADLINE_S = 180.0  # generous: a wait, not a timing assertion


@dataclass(frozen=True)
class Seen:
    """What the survivor's /health said, `at_s` after the kill."""

    at_s: float
    status: int
    state: str
    partitions: tuple[int, ...]


@dataclass
class Takeover:
    seconds: float | None = None  # kill to /health 200 with every partition; None: not within the bound
    seen: list[Seen] | None = None
    ready_before: str = ""
    ready_after: str = ""
    partitions_before: tuple[int, ...] = ()


async def health(worker: WorkerProcess) -> tuple[int, str, tuple[int, ...]]:
    status, body = await worker.get("/health", timeout_s=5.0)
    parsed = orjson.loads(body) if body else {}
    return status, str(parsed.get("status", "")), tuple(parsed.get("partitions", ()))


async def ready_state(worker: WorkerProcess) -> str:
    status, body = await worker.get("/ready", timeout_s=5.0)
    return f"{status} {orjson.loads(body)['status'] if body else 'no answer'}"


async def kill_and_watch(victim: WorkerProcess, survivor: WorkerProcess) -> Takeover:
    """SIGKILL `victim`; watch the survivor's /health until it answers 200 with every partition."""
    takeover = Takeover(ready_before=await ready_state(survivor), partitions_before=(await health(survivor))[2])
    assert victim.proc is not None
    victim.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    await asyncio.to_thread(victim.proc.wait)
    victim.stop()  # forgets the dead process
    seen: list[Seen] = []
    everything = tuple(range(PARTITIONS))
    while (at := time.monotonic() - killed) < TAKEOVER_BOUND_S:
        status, state, partitions = await health(survivor)
        if not seen or (seen[-1].status, seen[-1].state, seen[-1].partitions) != (status, state, partitions):
            seen.append(Seen(round(at, 1), status, state, partitions))
        if status == 200 and partitions == everything:
            takeover.seconds = at
            break
        await asyncio.sleep(0.25)
    takeover.seen = seen
    takeover.ready_after = await ready_state(survivor)
    return takeover


async def replay(root: Path, events: Sequence[UserEvent]) -> tuple[Takeover, collections.Counter[str], int, str]:
    cluster = MockCluster()
    app_id = f"mock-{uuid.uuid4().hex[:6]}"
    try:
        cluster.create_topics(worker_topics(app_id, PARTITIONS))
        base = Settings(_env_file=None)  # type: ignore[call-arg]
        workers = [
            WorkerProcess(
                worker_settings(
                    base,
                    root,
                    n,
                    app_id=app_id,
                    bootstrap_servers=cluster.bootstrap,
                    partitions=PARTITIONS,
                    session_timeout_s=SESSION_TIMEOUT_S,
                ),
                root / f"worker-{n}.log",
                log_level="info",
            )
            for n in range(2)
        ]
        try:
            async with JsonProducer(cluster.bootstrap, client_id="mock-catalog") as producer:
                for item in ITEMS:
                    await producer.send(CATALOG, event_to_dict(item), key=item.item_id)
            (root / "models").mkdir()
            for process in workers:
                process.start()
            for process in workers:
                await process.wait_healthy(HEALTHY_DEADLINE_S)
            takeover = await send(cluster.bootstrap, events, victim=workers[1], survivor=workers[0])
            outcome = await outcome_of(cluster.bootstrap, app_id, events)
            applied = await applied_per_viewer(
                cluster.bootstrap, app_id, collections.Counter(e.user_id for e in events)
            )
            return takeover, applied, outcome.lost, workers[0].log_tail(40)
        finally:
            for process in workers:
                process.terminate()
            for process in workers:
                process.stop(150.0)
    finally:
        cluster.close()


async def send(
    bootstrap: str, events: Sequence[UserEvent], *, victim: WorkerProcess, survivor: WorkerProcess
) -> Takeover:
    takeover = Takeover()
    async with JsonProducer(bootstrap, client_id="mock-replay", linger_ms=5, order_keys=True) as producer:
        async for n in paced(producer, events, RATE):
            if n == len(events) // 2:
                await producer.flush()
                takeover = await kill_and_watch(victim, survivor)
        await producer.flush()
    return takeover


async def applied_per_viewer(bootstrap: str, app_id: str, wanted: collections.Counter[str]) -> collections.Counter[str]:
    """Each viewer's learnt-event count in their last changelog record, once it matches `wanted` (or after a
    generous wait: a batch's lists leave before its changelog records)."""
    applied: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:
        applied = collections.Counter(
            {
                record.key.decode(): UserProfile.from_bytes(record.value).n_events
                for record in await read_all(bootstrap, f"{app_id}-profiles-changelog", timeout_s=120.0)
                if record.key is not None and record.value is not None
            }
        )
        if applied == wanted:
            break
        await asyncio.sleep(2.0)
    return applied


def test_the_survivor_of_two_workers_takes_over_a_killed_workers_partitions_within_the_session_timeout(
    tmp_path: Path,
) -> None:
    try:
        MockCluster().close()
    except MockClusterUnavailable as error:
        pytest.skip(f"librdkafka's mock cluster cannot start here: {error}")
    events = stream(users=80, per_user=24)  # 1,920 events
    takeover, applied, lost, survivor_log = asyncio.run(replay(tmp_path, events))
    print(
        f"\n[mock-cluster] session timeout {SESSION_TIMEOUT_S:g} s, takeover "
        f"{'none' if takeover.seconds is None else f'{takeover.seconds:.1f} s'} (bound {TAKEOVER_BOUND_S:g} s); "
        f"survivor's partitions before {list(takeover.partitions_before)}, /ready before: {takeover.ready_before}, "
        f"after: {takeover.ready_after}; /health meanwhile: "
        + ", ".join(f"{s.at_s} s {s.status} {s.state} {list(s.partitions)}" for s in takeover.seen or ())
        + f"; events not named in any list {lost}"
    )
    assert takeover.seconds is not None, f"no takeover within {TAKEOVER_BOUND_S:g} s; survivor:\n{survivor_log}"
    assert 0 < len(takeover.partitions_before) < PARTITIONS  # it had only its share before the kill
    assert lost == 0
    wanted = collections.Counter(event.user_id for event in events)
    assert applied == wanted  # each viewer's events learnt once: none lost with the killed worker, none twice
