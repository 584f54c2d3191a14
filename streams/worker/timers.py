"""The worker's timers: item model hot swap, table key count, consumer lag, lists naming removed items. An exception
escaping a Faust timer crashes the whole app, hence the guards."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import faust

from streamrec.models.item_model import ItemModel
from streamrec.streams.internals.consumer_state import committed_offsets, started_consumer
from streamrec.streams.internals.tables import local_key_count
from streamrec.streams.kafka.admin import CATALOG, PLAYS, RATINGS, SEARCHES, USER_DELETIONS
from streamrec.streams.worker.progress import PartitionSample
from streamrec.streams.worker.records import rekeyed_topic_name
from streamrec.streams.worker.runtime import Runtime
from streamrec.streams.worker.tables import PROFILES_TABLE, BytesTable

log = logging.getLogger(__name__)

MODEL_CHECK_INTERVAL_S = 30.0
TABLE_KEYS_INTERVAL_S = 15.0
LAG_INTERVAL_S = 10.0
REFRESH_INTERVAL_S = 1.0  # lists naming an item removed from the catalog are republished about this often

_LAG_TOPICS = frozenset({RATINGS, PLAYS, SEARCHES, USER_DELETIONS, CATALOG})


def register_timers(
    app: faust.App, rt: Runtime, profiles_table: BytesTable, refresh_lists: Callable[[], Awaitable[int]]
) -> None:
    """`refresh_lists`: republish the held lists that name an item removed since (`EventProcessor.refresh_lists`)."""

    @app.timer(MODEL_CHECK_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def refresh_model() -> None:
        with _logged("model refresh"):
            check_for_new_model(rt)

    @app.timer(TABLE_KEYS_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def count_table_keys() -> None:
        with _logged("table key count"):
            rt.metrics.table_keys.labels(table=PROFILES_TABLE).set(local_key_count(profiles_table))

    @app.timer(LAG_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def consumer_lag() -> None:
        with _logged("consumer lag"):
            update_consumer_lag(app, rt)

    @app.timer(REFRESH_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def lists_naming_removed_items() -> None:
        with _logged("refreshing lists naming removed items"):
            await refresh_lists()


@contextmanager
def _logged(what: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        log.exception("%s failed", what)


def check_for_new_model(rt: Runtime) -> bool:
    """Hot-swap the item model if a newer artifact was saved; True if swapped."""
    latest = rt.models.latest_path()
    if latest is None or latest == rt.model_path:
        return False
    try:
        model: ItemModel = rt.models.load(latest)
    except Exception:
        log.exception("cannot load model artifact %s; keeping %s", latest, rt.recommender.item_model.version)
        rt.model_path = latest  # don't retry the same broken file every interval
        return False
    rt.recommender.set_item_model(model)
    rt.model_path = latest
    rt.metrics.set_model(model.version)
    log.info("item model hot-swapped to %s (%s)", model.version, latest)
    return True


def update_consumer_lag(app: faust.App, rt: Runtime) -> None:
    """Lag per owned input partition: the high watermark of the last fetch minus the next offset to handle
    (after the last handled record, else the committed offset). Uses what the consumer already knows: no
    broker round trip; partitions not fetched from yet have no series. The same samples feed `rt.progress`
    (`/ready`, `streamrec_partition_stuck`)."""
    consumer = started_consumer(app)
    if consumer is None:
        return
    committed = committed_offsets(consumer)
    rt.metrics.consumer_lag.clear()
    samples: list[PartitionSample] = []
    for tp in consumer.assignment():
        if tp.topic not in _LAG_TOPICS and tp.topic != rekeyed_topic_name(rt.settings.app_id):
            continue
        try:
            highwater = consumer.highwater(tp)
        except Exception:
            continue
        last = rt.last_offsets.get((tp.topic, tp.partition))
        # Nothing handled or committed yet: a new group starts at the log start (0 unless retention deleted some).
        next_offset = last + 1 if last is not None else committed.get(tp) or 0
        samples.append(PartitionSample(tp.topic, tp.partition, next_offset, highwater))
        if highwater is None:
            continue
        rt.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(max(highwater - next_offset, 0))
    judge_progress(app, rt, samples)


def judge_progress(app: faust.App, rt: Runtime, samples: list[PartitionSample]) -> None:
    """Feed the progress tracker, except while partitions are paused on purpose (a rebalance, a table recovery:
    the clocks start again after it)."""
    recovery = getattr(app.tables, "recovery", None)
    settled = recovery is not None and recovery.completed.is_set() and not app.in_recovery and not app.rebalancing
    if settled:
        readiness = rt.progress.observe(time.monotonic(), [*samples, *_doubly_assigned(app)])
    else:
        readiness = rt.progress.reset()
    rt.metrics.partition_stuck.clear()
    for status in readiness.partitions:
        if status.topic in _LAG_TOPICS or status.topic == rekeyed_topic_name(rt.settings.app_id):
            rt.metrics.partition_stuck.labels(topic=status.topic, partition=str(status.partition)).set(status.stuck)


def _doubly_assigned(app: faust.App) -> list[PartitionSample]:
    """A changelog partition given to this worker both to serve (active) and to replicate (standby): Faust's
    assignor must never do this (the standby's reads would race the active's writes), so it is reported twice."""
    both = app.assignor.assigned_actives() & app.assignor.assigned_standbys()
    return [PartitionSample(tp.topic, tp.partition, 0, None) for tp in sorted(both) for _ in range(2)]
