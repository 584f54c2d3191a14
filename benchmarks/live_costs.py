"""What one event costs the worker's code on a live stream, in-process: parse, learn, rank, publish.

No Kafka, no Faust: the worker adds its consumer, table and producer costs on top (`docs/bench/profile.md`).
"""

from __future__ import annotations

import gc
import hashlib
import time
from collections.abc import Callable
from typing import Any

from streamrec.benchmarks.workloads import CatalogSpec, EventGenerator, EventRecord
from streamrec.models.events import parse_user_event
from streamrec.models.recommender import StreamParams, StreamRecommender
from streamrec.streams.worker.outputs import list_payload
from streamrec.streams.worker.processor import RANK_CHUNK

STEPS = ("parse", "learn", "rank", "publish")
CLOCK_MS = 1_765_000_000_000  # the events' and lists' time: a fixed clock makes every payload reproducible


def run_live_costs(
    spec: CatalogSpec,
    *,
    n_events: int = 40_000,
    n_users: int = 10_000,
    batch: int = 250,
    seed: int = 0,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """µs per event per step for the freshness phase's workload (the same generator) in batches of `batch` events
    through the worker's own calls (`parse_user_event`, `learn_one` in a `learning_batch`, `rank_lists` on chunks
    of `RANK_CHUNK` viewers, `list_payload`), one thread, after `gc.freeze()` as the worker does. A live stream
    gives the worker small batches of mostly distinct viewers, so nearly every event costs its own list. The
    first half of the events warms the state up; the second is timed. Side by side, the same lists published from
    `Recommendation` objects (`rank_many`) instead of the ranker's compact lists (`RankedLists.json_items`),
    payloads compared byte for byte, and hashed (`lists_sha256`: every list published, warm-up included, in order):
    a change to ranking that must leave the lists alone leaves this hash alone."""
    records = EventGenerator(spec.items, n_users=n_users, seed=seed + 7, id_prefix="live").events(n_events)
    results: dict[str, Any] = {"status": "ok", "catalog": spec.name, "items": spec.size, "events": n_events // 2}
    results.update({"users": n_users, "batch": batch})
    payloads: dict[str, list[bytes]] = {}
    now = CLOCK_MS  # one clock for both paths: their payloads are compared byte for byte
    for path in ("json", "objects"):
        if on_progress is not None:
            on_progress(f"{path}: loading {spec.size:,} items")
        system = StreamRecommender(StreamParams())
        for item in spec.items:
            system.add_item(item)
        system.prepare_ranking()
        half = n_events // 2
        if on_progress is not None:
            on_progress(f"{path}: warming up on {half:,} events")
        warm: list[bytes] = []
        _replay(system, records[:half], batch, now, path, {}, warm)
        gc.freeze()  # as the worker does once its catalog is loaded
        try:
            if on_progress is not None:
                on_progress(f"{path}: timing {n_events - half:,} events")
            seconds = dict.fromkeys(STEPS, 0.0)
            published: list[bytes] = []
            lists = _replay(system, records[half:], batch, now, path, seconds, published)
        finally:
            gc.unfreeze()
        timed = n_events - half
        results[path] = {
            "lists": lists,
            "events_per_list": timed / lists if lists else None,
            "us_per_event": {step: seconds[step] / timed * 1e6 for step in STEPS},
            "us_per_event_total": sum(seconds.values()) / timed * 1e6,
        }
        payloads[path] = warm + published
    results["identical_payloads"] = payloads["json"] == payloads["objects"]
    results["lists_sha256"] = _digest(payloads["json"])
    results["speedup"] = results["objects"]["us_per_event_total"] / results["json"]["us_per_event_total"]
    return results


def _replay(
    system: StreamRecommender,
    records: list[EventRecord],
    batch: int,
    now: int,
    path: str,
    seconds: dict[str, float],
    published: list[bytes],
) -> int:
    """Feed `records` a batch at a time as the worker does; adds each step's seconds; returns the lists made."""
    lists = 0
    clock = time.perf_counter
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        t0 = clock()
        events = [
            parse_user_event(r.topic, r.value, key=r.key.encode(), record_ts_ms=now, now_ms=now, item_exists=_known)
            for r in chunk
        ]
        t1 = clock()
        pending: dict[str, list[str]] = {}
        with system.learning_batch():  # as the worker learns a batch
            for event in events:
                if system.learn_one(event):
                    pending.setdefault(event.user_id, []).append(event.event_id)
        t2 = clock()
        users = list(pending)
        items: list[Any] = []
        for k in range(0, len(users), RANK_CHUNK):
            profiles = [system.profiles.get(user) for user in users[k : k + RANK_CHUNK]]
            if path == "json":
                items += system.rank_lists(profiles).json_items()
            else:
                items += system.rank_many(profiles)
        t3 = clock()
        for user, user_items in zip(users, items, strict=True):
            published.append(list_payload(user, pending[user], "bench", user_items, now))
        t4 = clock()
        if seconds:
            for step, spent in zip(STEPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                seconds[step] += spent
        lists += len(users)
    return lists


def _digest(payloads: list[bytes]) -> str:
    digest = hashlib.sha256()
    for payload in payloads:
        digest.update(len(payload).to_bytes(8, "little"))
        digest.update(payload)
    return digest.hexdigest()[:16]


def _known(_item_id: str) -> bool:
    return True
