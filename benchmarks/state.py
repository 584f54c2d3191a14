"""State size and rebuild time: the bytes of realistic profiles (`profile_sizes`), and how long a worker with an
empty state dir takes to serve again, its only table, `profiles`, restored from its changelog (`rebuild`).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from streamrec.benchmarks import infra
from streamrec.benchmarks.workloads import CatalogSpec, EventGenerator, EventRecord
from streamrec.models.events import CatalogItem, Limits, Rejected, UserEvent, parse_user_event
from streamrec.models.recommender import StreamParams, StreamRecommender
from streamrec.streams.kafka import TopicSpec, create_topics
from streamrec.streams.settings import Settings

PER_USER_LEVELS = (1, 10, 50, 200)
_MAX_SUB_CATALOG = 20_000  # keeps the in-process recommender's dense co-occurrence matrix under ~2 GiB


def _distribution(sizes: Sequence[int]) -> dict[str, float]:
    if not sizes:
        return {}
    ordered = sorted(sizes)
    return {
        "users": len(ordered),
        "mean": statistics.fmean(ordered),
        "median": float(statistics.median(ordered)),
        "p95": float(ordered[min(int(0.95 * len(ordered)), len(ordered) - 1)]),
        "max": float(ordered[-1]),
    }


def _parse(records: Sequence[EventRecord], items: set[str], now_ms: int) -> list[UserEvent]:
    events: list[UserEvent] = []
    for record in records:
        try:
            events.append(
                parse_user_event(
                    record.topic,
                    record.value,
                    key=record.key.encode(),
                    record_ts_ms=now_ms,
                    now_ms=now_ms,
                    item_exists=items.__contains__,
                    limits=Limits(),
                )
            )
        except Rejected:
            continue
    return events


def recommender_for(items: Sequence[CatalogItem], settings: Settings | None = None) -> StreamRecommender:
    """A content-only recommender (what a worker without a trained artifact runs) over `items`."""
    params = StreamParams()
    if settings is not None:
        params = StreamParams(top_n=settings.top_n, calibration_weight=settings.calibration_weight)
    recommender = StreamRecommender(params)
    for item in items:
        recommender.add_item(item)
    return recommender


def learn_all(items: Sequence[CatalogItem], records: Sequence[EventRecord]) -> StreamRecommender:
    """Run `records` through a recommender whose catalog is just the items they touch (profile bytes do not
    depend on the other items, and this keeps its dense co-occurrence matrix small for a large catalog)."""
    touched = {record_item for record_item in (_item_of(r) for r in records) if record_item is not None}
    sub_catalog = [item for item in items if item.item_id in touched]
    if len(sub_catalog) > _MAX_SUB_CATALOG:
        raise ValueError(f"{len(sub_catalog)} distinct items: use fewer events")
    recommender = recommender_for(sub_catalog)
    now_ms = int(time.time() * 1000)
    for event in _parse(records, {item.item_id for item in sub_catalog}, now_ms):
        recommender.learn_one(event)
    return recommender


def _item_of(record: EventRecord) -> str | None:
    obj = orjson.loads(record.value)
    value = obj.get("item_id") or obj.get("clicked_item_id")
    return value if isinstance(value, str) else None


def profile_sizes(spec: CatalogSpec, cache_dir: Path, *, seed: int = 0, stream_events: int = 40_000) -> dict[str, Any]:
    """Bytes of `UserProfile.to_bytes()` for profiles built in-process by the real `learn_one`: over the bench's
    Zipf event stream (heavy-tailed events per user), per fixed events-per-user level, and over the MovieLens
    100K replay (ratings + derived plays) when it is cached."""
    out: dict[str, Any] = {}
    # The bench's own stream: heavy-tailed events per user (same generator settings as the throughput phase).
    users = max(stream_events // 20, 100)
    generator = EventGenerator(spec.items, n_users=users, seed=seed, id_prefix="state")
    recommender = learn_all(spec.items, generator.events(stream_events))
    sizes = [profile.to_bytes() for profile in recommender.profiles.values()]
    stream = _distribution([len(raw) for raw in sizes])
    events_per_user = [p.n_events for p in recommender.profiles.values()]
    stream["mean_events_per_user"] = statistics.fmean(events_per_user) if events_per_user else 0.0
    out.update({k: stream[k] for k in ("median", "p95", "mean", "max") if k in stream})
    out["stream"] = stream
    levels: dict[str, Any] = {}
    for level in PER_USER_LEVELS:
        n_users = max(min(2_000 // level, 200), 20)
        gen = EventGenerator(spec.items, n_users=n_users, seed=seed + level, id_prefix=f"level{level}")
        rec = learn_all(spec.items, gen.events_per_user(n_users, level))
        levels[str(level)] = _distribution([len(p.to_bytes()) for p in rec.profiles.values()])
    out["per_events_per_user"] = levels
    if spec.source == "movielens":
        out["movielens_replay"] = _movielens_profile_sizes(cache_dir)
    return out


def _movielens_profile_sizes(cache_dir: Path) -> dict[str, Any]:
    """The 943 ML-100K users' profiles after the replay stream (ratings + one derived play each)."""
    from streamrec.models.simulate import event_stream
    from streamrec.streams.tools.data import load_movielens_100k

    dataset = load_movielens_100k(cache_dir, show_progress=False)
    recommender = recommender_for(dataset.items)
    for event in event_stream(dataset, plays=True):
        recommender.learn_one(event)
    out = _distribution([len(p.to_bytes()) for p in recommender.profiles.values()])
    out["mean_events_per_user"] = statistics.fmean(p.n_events for p in recommender.profiles.values())
    return out


# -- the worker: rebuild from changelogs -------------------------------------------------------------------------


def choose_mode(mode: str, users: int, per_user: int, pipeline_rate: float | None, cap_s: float) -> str:
    """`auto`: events when the measured pipeline rate processes users×per_user events within 80% of the cap."""
    if mode != "auto":
        return mode
    if pipeline_rate is None or pipeline_rate <= 0:
        return "changelog"
    return "events" if users * per_user <= 0.8 * pipeline_rate * cap_s else "changelog"


def profiles_changelog(app_id: str) -> str:
    return f"{app_id}-profiles-changelog"  # Faust: <app id>-<table name>-changelog


async def seed_changelogs(
    base: Settings,
    spec: CatalogSpec,
    app_id: str,
    users: int,
    per_user: int,
    *,
    seed: int,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Write what a worker would have written to its only changelog for `users` users: their profiles, built
    in-process with the real `learn_one`, to `<app_id>-profiles-changelog` (keys partitioned by murmur2, as
    Faust's changelog writes are). Lists are not state, so nothing goes to `recommendations`."""
    from streamrec.streams.kafka import JsonProducer

    generator = EventGenerator(spec.items, n_users=users, seed=seed, id_prefix="seed")
    recommender = recommender_for(spec.items, base)
    now_ms = int(time.time() * 1000)
    item_ids = {item.item_id for item in spec.items}
    records = generator.events_per_user(users, per_user)
    for begin in range(0, len(records), 20_000):
        for event in _parse(records[begin : begin + 20_000], item_ids, now_ms):
            recommender.learn_one(event)
        if on_progress is not None:
            on_progress("building profiles in-process", min(begin + 20_000, len(records)), len(records))
        await asyncio.sleep(0)
    await create_topics(
        base.bootstrap_servers,
        [
            TopicSpec(
                profiles_changelog(app_id), base.partitions, compacted=True, replication_factor=base.replication_factor
            )
        ],
    )
    profile_bytes = 0
    async with JsonProducer(base.bootstrap_servers, linger_ms=20, client_id="streamrec-bench-seed") as producer:
        for n, (user_id, profile) in enumerate(recommender.profiles.items(), start=1):
            raw = profile.to_bytes()
            profile_bytes += len(raw)
            await producer.send(profiles_changelog(app_id), raw, key=user_id)
            if n % 5_000 == 0:
                await producer.flush()
                if on_progress is not None:
                    on_progress("writing the profiles changelog", n, len(recommender.profiles))
    return {
        "users": len(recommender.profiles),
        "profile_changelog_bytes": profile_bytes,
        "mean_profile_bytes": profile_bytes / max(len(recommender.profiles), 1),
    }


async def _table_keys(run: infra.BenchWorker) -> float | None:
    return infra.metric_sum(await run.metrics(), "streamrec_table_keys", table="profiles")


async def _wait_keys(run: infra.BenchWorker, users: int, timeout_s: float) -> float | None:
    """Seconds until the profiles gauge (refreshed every 15 s by the worker) shows `users` keys; None if not."""

    async def all_keys() -> bool:
        keys = await _table_keys(run)
        return keys is not None and keys >= users

    try:
        return await infra.wait_for(all_keys, timeout_s=timeout_s, interval_s=0.5, alive=run.alive, what="keys")
    except (TimeoutError, RuntimeError):
        return None


async def _spot_check(run: infra.BenchWorker, user_ids: Sequence[str]) -> int:
    found = 0
    for user_id in user_ids:
        status, _ = await run.get(f"/users/{user_id}/profile", timeout_s=5.0)
        found += status == 200
    return found


def _state_sizes(settings: Settings) -> dict[str, int]:
    """The worker's state dir, and the part of it that is the profiles table's RocksDB (its only table)."""
    app_dir = settings.data_dir / settings.app_id
    tables = [p for p in app_dir.rglob("*") if p.is_dir() and p.name.endswith(".db")]
    profiles = sum(infra.dir_bytes(p) for p in tables if p.name.startswith("profiles"))
    return {"state_dir_bytes": infra.dir_bytes(app_dir), "profiles_db_bytes": profiles}


async def rebuild(
    base: Settings,
    spec: CatalogSpec,
    root: Path,
    *,
    users: int,
    per_user: int,
    mode: str,
    max_seconds: float,
    start_timeout_s: float,
    memory_limit_bytes: int | None,
    exact_catalog: bool,
    seed: int = 0,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """State for `users` users in the profiles table (lists are not a table: they go straight to
    `recommendations`), then the time until a worker with an empty state dir serves again (/health 200: the table
    recovered from its changelog, the catalog loaded) and until its `streamrec_table_keys` gauge shows every
    user; plus the RocksDB dir size per user. `mode` says how the changelog is filled: `events` produces the
    users' events and lets a worker process them (every event in a published list, its offset committed), stops
    it gracefully and deletes its state dir; `changelog` writes the same records directly (`seed_changelogs`).
    `choose_mode` picks one for `auto`."""
    app_id = f"bench-state-{uuid.uuid4().hex[:8]}"
    # the spot check reads profiles over HTTP
    settings = infra.worker_settings(base, root / app_id, app_id).model_copy(update={"profile_view": True})
    log = root / "logs" / f"{app_id}.log"
    out: dict[str, Any] = {"mode": mode, "app_id": app_id, "users_requested": users, "events_per_user": per_user}
    sample_users = [f"u{n:07d}" for n in np.linspace(0, users - 1, num=min(users, 20), dtype=int)]

    async def start() -> tuple[infra.BenchWorker, float]:
        started = time.perf_counter()
        run, _ = await infra.launch_worker(
            settings,
            log,
            catalog_size=spec.size,
            exact_catalog=exact_catalog,
            timeout_s=start_timeout_s,
            memory_limit_bytes=memory_limit_bytes,
        )
        await infra.wait_for(run.healthy, timeout_s=start_timeout_s, alive=run.alive, what="/health 200")
        return run, time.perf_counter() - started

    if mode == "events":
        generator = EventGenerator(spec.items, n_users=users, seed=seed, id_prefix="state")
        records = generator.events_per_user(users, per_user)
        await infra.produce(
            base.bootstrap_servers,
            records,
            on_progress=None if on_progress is None else (lambda n: on_progress("producing events", n, len(records))),
        )
        run, out["empty_start_seconds"] = await start()
        try:
            # Until every event is in a published list and committed: a worker stopped while it still handles a
            # batch leaves that batch uncommitted (at least once), and the restart would handle it again during
            # the rebuild being measured (taken in is not done: a batch of 100,000 takes a while to rank).
            deadline = time.monotonic() + max_seconds
            while time.monotonic() < deadline and run.alive():
                covered = await run.covered() or 0.0
                if on_progress is not None:
                    on_progress("worker processing", int(covered), len(records))
                if covered >= len(records) and await infra.all_committed(settings):
                    break
                await asyncio.sleep(1.0)
            out["events_processed"] = await run.covered()
            out["keys_before_stop"] = await _table_keys(run)
            if out["events_processed"] is not None and out["events_processed"] < len(records):
                out["note"] = f"time cap {max_seconds:.0f} s reached: only part of the users have profiles"
        finally:
            out["stop_exit_code"] = await run.stop_async()
        out.update(_state_sizes(settings))
        expected_users = min(users, int(out.get("events_processed") or 0))
        infra.clean_dir(settings.data_dir)  # the local state is gone: the next start rebuilds from the changelog
    else:
        # The same start with nothing to recover, for comparison (it also lets Faust create its changelog topic).
        run, out["empty_start_seconds"] = await start()
        await run.stop_async()
        infra.clean_dir(settings.data_dir)
        seeded = await seed_changelogs(base, spec, app_id, users, per_user, seed=seed, on_progress=on_progress)
        out["seeded"] = seeded
        expected_users = int(seeded["users"])
    if on_progress is not None:
        on_progress("rebuilding the profiles table from its changelog", 0, 1)
    run, healthy_s = await start()
    try:
        keys_s = await _wait_keys(run, expected_users, timeout_s=45.0)
        keys_now = await _table_keys(run)
        found = await _spot_check(run, sample_users[: max(min(expected_users, 20), 0)])
    finally:
        code = await run.stop_async()
    if mode != "events":
        out.update(_state_sizes(settings))
    out["users"] = expected_users
    rebuild_result: dict[str, Any] = {
        "status": "ok" if code == 0 else f"exit code {code}",
        "users": expected_users,
        "seconds": healthy_s,
        "over_empty_start_s": healthy_s - float(out["empty_start_seconds"]),
        "all_keys_seen_after_s": None if keys_s is None else healthy_s + keys_s,
        "table_keys": keys_now,
        "spot_check_found": found,
        "spot_check_of": min(expected_users, 20),
    }
    out["rebuild"] = rebuild_result
    out["rocksdb_bytes_per_user"] = out["state_dir_bytes"] / expected_users if expected_users else None
    out["profiles_db_bytes_per_user"] = out["profiles_db_bytes"] / expected_users if expected_users else None
    out["status"] = "ok"
    return out
