"""A batch of user events -> profile updates -> one ranked list per viewer (`EventProcessor.handle_batch`)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Protocol

from streamrec.models.deletion import UserDeletion, parse_user_deletion
from streamrec.models.events import ErrorCode, Limits, Rejected, UserEvent, parse_user_event
from streamrec.models.profile import UserProfile
from streamrec.models.recommender import StreamRecommender
from streamrec.streams.internals.routing import partition_context
from streamrec.streams.kafka.admin import USER_DELETIONS
from streamrec.streams.worker.checkpoint import Checkpoint
from streamrec.streams.worker.dlq import INTERNAL_ERROR
from streamrec.streams.worker.item_log import ItemLog
from streamrec.streams.worker.observability import Metrics
from streamrec.streams.worker.outputs import DeadLetters, ListOutput, Rekeyer, list_payload
from streamrec.streams.worker.profile_store import ProfileStore
from streamrec.streams.worker.records import Incoming, InputRecord, as_read, incoming_from, wall_clock_ms
from streamrec.streams.worker.tables import RecentLists, lists_naming

log = logging.getLogger(__name__)

YIELD_AFTER_S = 0.02  # longest stretch of record handling between two yields to the event loop
RANK_CHUNK = 256  # users ranked (and published) between two yields
SCAN_CHUNK = 2_000  # held lists searched for removed items between two yields


def _any_item(_item_id: str) -> bool:
    return True


class CatalogGate(Protocol):
    """What the processor needs of the catalog feed (`CatalogFeed`)."""

    async def wait_ready(self) -> None:
        """Until the catalog is applied up to its end as of the worker's start."""
        ...

    async def catch_up(self, timeout_s: float = ...) -> bool:
        """Until the catalog is applied up to its end as of now."""
        ...


@dataclass(frozen=True, slots=True)
class Outputs:
    """Where the processor's results go (chosen by the app)."""

    lists: ListOutput
    recent_lists: RecentLists  # the view's copy of the last lists published
    dead_letters: DeadLetters
    rekeyer: Rekeyer


@dataclass(slots=True)
class _Pending:
    """A user's events applied in this batch, waiting for the user's list."""

    partition: int  # the partition of the user's last record: the user's
    event_ids: list[str]  # none: a list republished because an item it named left the catalog
    record_ts_ms: list[int]


@dataclass(slots=True)
class _Batch:
    pending: dict[str, _Pending] = field(default_factory=dict)  # users whose list is still to be published
    owners: dict[str, InputRecord] = field(default_factory=dict)  # a record of each user learned from


class EventProcessor:
    """Per record, in order (a batch is in time order across the input topics, `streams.worker.time_order`):
    validate; on `unknown_item` first catch the catalog feed up with the catalog's current end and validate again
    (an item published just before its first viewer's event is not rejected by a race); re-key a record without a
    key; learn (`learn_one`; a duplicate is only counted). What can't be handled is dead-lettered: the worker never
    crashes and never drops silently. Then one list per viewer with new events (`event_ids` names them all), ranked
    for all of them together, and the batch's `Checkpoint`. With `coalesce=False` every event gets its own list,
    ranked right after it is learned (as the prequential protocol has it).

    A deletion request (`user-deletions`, in the same time order) erases the viewer (`_forget`). Items removed from
    the catalog (`note_removed`) leave every list ranked afterwards; the lists the view holds that name one are
    ranked again and republished by `refresh_lists` (a timer's)."""

    def __init__(
        self,
        *,
        recommender: StreamRecommender,
        profiles: ProfileStore,  # the recommender's
        feed: CatalogGate,
        metrics: Metrics,
        outputs: Outputs,
        checkpoint: Checkpoint,
        limits: Limits,
        coalesce: bool = True,
        clock_ms: Callable[[], int] = wall_clock_ms,
        item_log: ItemLog | None = None,
        owned_partitions: Callable[[], Collection[int]] | None = None,
    ) -> None:
        """`item_log`: where the item side's lessons go and come back from (`streams.worker.item_log`); without
        it the recommender's item side learns in place. `owned_partitions`: the input partitions this worker holds
        now (whose viewers' lists it may republish); None: all."""
        self.recommender = recommender
        self.profiles = profiles
        self.feed = feed
        self.metrics = metrics
        self.outputs = outputs
        self.checkpoint = checkpoint
        self.limits = limits
        self.coalesce = coalesce
        self.clock_ms = clock_ms
        self.item_log = item_log
        self.owned_partitions = owned_partitions
        self.last_offsets: dict[tuple[str, int], int] = {}  # consumer lag: last handled offset per partition
        self._prepared = False
        self._removed_items: set[str] = set()  # removed from the catalog since the held lists were last checked
        self._lock = asyncio.Lock()  # a batch and a refresh of lists never interleave

    def note_removed(self, item_ids: Iterable[str]) -> None:
        """Items just removed from the catalog: the lists held that name one are to be ranked again (none is held
        while a worker starts: its catalog feed reads every removal of the past then)."""
        if len(self.outputs.recent_lists):
            self._removed_items.update(item_ids)

    async def refresh_lists(self) -> int:
        """Rank again and republish the held lists that name an item removed since the last call; returns how many.
        The scan of the held lists goes a chunk at a time beside the batches; ranking and publishing wait for the
        batch in hand and are committed like one."""
        if not self._removed_items or not self._prepared:
            return 0
        removed = set(self._removed_items)
        held = self.outputs.recent_lists.held()
        stale: list[tuple[str, int]] = []
        for start in range(0, len(held), SCAN_CHUNK):
            stale += lists_naming(held[start : start + SCAN_CHUNK], removed)
            await asyncio.sleep(0)
        async with self._lock:
            owned = None if self.owned_partitions is None else set(self.owned_partitions())
            self.checkpoint.begin()
            try:
                pending = {
                    user: _Pending(partition, [], [])
                    for user, partition in stale
                    if (owned is None or partition in owned) and user in self.profiles
                }
                await self._publish(pending, {user: self.profiles.get(user) for user in pending})
                await self.checkpoint.commit([], {})
            except BaseException:
                self.checkpoint.abandon()
                raise
        self._removed_items -= removed
        self.metrics.lists_refreshed.inc(len(pending))
        log.info("%d item(s) removed from the catalog: %d held list(s) ranked again", len(removed), len(pending))
        return len(pending)

    async def handle_batch(self, records: Sequence[InputRecord]) -> None:
        """Records of the input topics and of the re-keyed topic, in time order; never raises (except
        cancellation): what can't be handled is dead-lettered."""
        if not self._prepared:
            await self._prepare()
        async with self._lock:
            await self._handle_batch(records)

    async def _handle_batch(self, records: Sequence[InputRecord]) -> None:
        started = time.perf_counter()
        checkpoint = self.checkpoint
        checkpoint.begin()
        if self.item_log is not None:
            self.item_log.drop()
        batch = _Batch()
        per_topic: Counter[str] = Counter()  # for the processing-time histogram
        unreported: Counter[str] = Counter()  # handled, not yet in `events_consumed` (reported as the batch goes)
        try:
            try:
                yielded = started
                # The batch's embedding updates are applied together when it ends (the same profiles, bit for bit).
                with self.recommender.learning_batch():
                    for record in records:
                        unreported[record.topic] += 1
                        self.last_offsets[(record.topic, record.partition)] = record.offset
                        await self._handle_record(record, batch)
                        if time.perf_counter() - yielded > YIELD_AFTER_S:
                            self._report_consumed(unreported, per_topic)
                            await asyncio.sleep(0)  # let the web views, timers and the consumer's callbacks run
                            yielded = time.perf_counter()
            finally:
                self._report_consumed(unreported, per_topic)
            phases = self.metrics.batch_phase_seconds
            learnt = time.perf_counter()
            phases.labels(phase="learn").observe(learnt - started)
            if self.item_log is not None:
                await self.item_log.publish()
            logged = time.perf_counter()
            phases.labels(phase="item_log").observe(logged - learnt)
            await self._publish(batch.pending, {user: self.profiles.get(user) for user in batch.pending})
            published = time.perf_counter()
            phases.labels(phase="publish").observe(published - logged)
            await checkpoint.commit(records, batch.owners)
            phases.labels(phase="commit").observe(time.perf_counter() - published)
        except BaseException:
            checkpoint.abandon()
            if self.item_log is not None:
                self.item_log.drop()
            raise
        per_record = (time.perf_counter() - started) / max(len(records), 1)
        for topic in per_topic:
            self.metrics.processing_seconds.labels(topic=topic).observe(per_record)

    async def _prepare(self) -> None:
        """Before the first batch: the catalog as of the start, and a large catalog's item index."""
        await self.feed.wait_ready()
        if self.item_log is not None:
            await self.item_log.wait_ready()
        # Built in a thread (faiss trains without the GIL), so the event loop goes on (health, heartbeats, reading,
        # the catalog feed) meanwhile.
        vectors = self.recommender.item_vectors  # taken here: the feed changes the catalog on this thread
        await asyncio.to_thread(self.recommender.prepare_ranking, vectors)
        self.metrics.item_index_builds.set(self.recommender.index_builds)
        # The catalog, models and Faust's own objects live as long as the worker: keep them out of every garbage
        # collection from now on (the collector walks all tracked objects of a generation it scans).
        gc.freeze()
        self._prepared = True

    def _report_consumed(self, unreported: Counter[str], reported: Counter[str]) -> None:
        for topic, count in unreported.items():
            self.metrics.events_consumed.labels(topic=topic).inc(count)
        reported.update(unreported)
        unreported.clear()

    async def _handle_record(self, record: InputRecord, batch: _Batch) -> None:
        try:
            incoming = incoming_from(record)
        except Exception as exc:  # unreadable origin headers on the internal topic: still a dead letter
            log.exception("cannot read %s[%d]@%d", record.topic, record.partition, record.offset)
            await self._dead_letter(as_read(record), INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
            return
        try:
            if incoming.kind == USER_DELETIONS:
                request = parse_user_deletion(incoming.value, key=incoming.key, limits=self.limits)
                if incoming.key:
                    self._forget(request, record, batch)
                else:
                    self.outputs.rekeyer.forward(incoming, request.user_id)
                return
            if not incoming.key:
                # Structure only: the catalog check happens on the owning worker, after the hop.
                self.outputs.rekeyer.forward(incoming, self._parse(incoming, item_exists=_any_item).user_id)
                return
            try:
                event = self._parse(incoming, item_exists=self.recommender.catalog.__contains__)
            except Rejected as rejected:
                if rejected.code != ErrorCode.UNKNOWN_ITEM:
                    raise
                event = await self._validated_after_catch_up(incoming)
            self._learn(event, incoming, record, batch)
        except Rejected as rejected:
            self.metrics.events_rejected.labels(topic=incoming.kind, reason=str(rejected.code)).inc()
            await self._dead_letter(incoming, str(rejected.code), rejected.message)
        except Exception as exc:
            src = incoming.source
            log.exception("internal error on %s[%d]@%d", src.topic, src.partition, src.offset)
            self.metrics.events_rejected.labels(topic=incoming.kind, reason=INTERNAL_ERROR).inc()
            await self._dead_letter(incoming, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")

    def _learn(self, event: UserEvent, incoming: Incoming, record: InputRecord, batch: _Batch) -> None:
        user = event.user_id
        if self.item_log is not None:
            self.item_log.at(record)
        origin = (record.topic, record.partition, record.offset)
        if self.profiles.holds(user):
            learned = self.recommender.learn_one(event, origin)
        else:
            with partition_context(record):  # the first read of the profile: from the user's partition
                learned = self.recommender.learn_one(event, origin)
        if not learned:
            self.metrics.events_duplicate.labels(topic=incoming.kind).inc()
            if not self.recommender.applied(user, origin):
                return  # the same event in another record: applied once, listed once
            # The same record again (a batch handled again after a crash or a rebalance): not learnt again, but
            # named in the viewer's next list, in case the list that named it first was lost with the crash.
        else:
            batch.owners[user] = record
        entry = batch.pending.get(user)
        if entry is None:
            batch.pending[user] = _Pending(record.partition, [event.event_id], [incoming.timestamp_ms])
        else:
            entry.partition = record.partition
            entry.event_ids.append(event.event_id)
            entry.record_ts_ms.append(incoming.timestamp_ms)
        if not self.coalesce:
            # One list per event, ranked right after it is learned (as the prequential protocol has it).
            self._publish_chunk([user], batch.pending, {user: self.recommender.profile(user)})
            del batch.pending[user]

    def _forget(self, request: UserDeletion, record: InputRecord, batch: _Batch) -> None:
        """Erase a viewer: their profile (deleted from the table: a tombstone on its changelog when the batch
        commits), the list their events of this batch were waiting for, the list the view holds, and their list on
        `recommendations` (a tombstone after every list of theirs). Their next event starts a fresh profile."""
        user = request.user_id
        with nullcontext() if self.profiles.holds(user) else partition_context(record):
            existed = self.recommender.forget(user)
        batch.owners[user] = record  # the profile's delete goes to the user's partition of the changelog
        batch.pending.pop(user, None)
        self.outputs.lists.put(record.partition, user, None)
        self.outputs.recent_lists.forget(user)
        self.metrics.users_deleted.labels(had_profile=str(existed).lower()).inc()
        log.info("deletion request %s: viewer erased (had a profile: %s)", request.request_id or "-", existed)

    async def _validated_after_catch_up(self, incoming: Incoming) -> UserEvent:
        # The item may have been published a moment ago: catch up with the catalog's end, then retry.
        await self.feed.catch_up()
        event = self._parse(incoming, item_exists=self.recommender.catalog.__contains__)
        log.info("%s %s: its item arrived while catching up with the catalog", incoming.kind, event.event_id)
        return event

    def _parse(self, incoming: Incoming, item_exists: Callable[[str], bool]) -> UserEvent:
        return parse_user_event(
            incoming.kind,
            incoming.value or b"",  # a tombstone is "not JSON"
            key=incoming.key,
            record_ts_ms=incoming.timestamp_ms,
            now_ms=self.clock_ms(),
            item_exists=item_exists,
            limits=self.limits,
        )

    async def _publish(self, pending: dict[str, _Pending], profiles: dict[str, UserProfile | None]) -> None:
        """One list per user with new events, ranked a chunk of users at a time, each on the user's partition."""
        users = list(pending)
        for start in range(0, len(users), RANK_CHUNK):
            self._publish_chunk(users[start : start + RANK_CHUNK], pending, profiles)
            await asyncio.sleep(0)

    def _publish_chunk(
        self, users: list[str], pending: dict[str, _Pending], profiles: dict[str, UserProfile | None]
    ) -> None:
        recommender = self.recommender
        outputs = self.outputs
        started = time.perf_counter()
        lists = recommender.rank_lists([profiles[user] for user in users]).json_items()
        self.metrics.ranking_seconds.observe((time.perf_counter() - started) / len(users))
        self.metrics.item_index_builds.set(recommender.index_builds)
        now_ms = self.clock_ms()
        version = recommender.item_model.version
        for user_id, items in zip(users, lists, strict=True):
            entry = pending[user_id]
            payload = list_payload(user_id, entry.event_ids, version, items, now_ms)
            outputs.lists.put(entry.partition, user_id, payload)
            outputs.recent_lists.put(user_id, payload, entry.partition)
            for ts in entry.record_ts_ms:
                self.metrics.freshness_seconds.observe(max(0.0, (now_ms - ts) / 1000.0))
        self.metrics.lists_published.inc(len(users))

    async def _dead_letter(self, incoming: Incoming, code: str, message: str) -> None:
        await self.outputs.dead_letters.send(incoming, code, message, rejected_at_ms=self.clock_ms())
