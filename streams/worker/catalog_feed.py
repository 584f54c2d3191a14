"""The catalog as a broadcast stream: every worker reads *all* partitions of `catalog` from the beginning.

`catalog` is partitioned by item id, but every worker ranks over the whole catalog, so it can't be read through the
consumer group: a group-less aiokafka consumer is assigned every partition; nothing is committed, each start
re-reads the compacted topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamrec.models.events import CatalogItem, Limits, Rejected, parse_catalog_item
from streamrec.streams.internals.batching import gc_paused
from streamrec.streams.kafka.admin import describe_topics

log = logging.getLogger(__name__)

_METADATA_TIMEOUT_S = 30.0
IDLE_POLL_S = 1.0
# Records applied per turn of the event loop: Faust's start waits for turns while a catalog loads.
RECORDS_PER_TURN = 500


class CatalogFeed:
    """Applies the catalog's records to the worker's catalog, following the topic for as long as the worker runs.

    Two catch-up guarantees for the agent: `wait_ready()`: the end offsets seen at start have been applied (gate
    before any user event); `catch_up()`: the end offsets as of *now* have been applied (called before rejecting an
    event as `unknown_item`, so an item published just before its first viewer's event is not lost to a race).

    Records are applied a fetch at a time, `apply([(item, record_ts_ms), ...])`, yielding to the event loop every
    `RECORDS_PER_TURN` records, so the rest of the worker (Faust's start, the group join, table recovery) goes on
    while a large catalog loads. Invalid records and tombstones are skipped here; dead-lettering them is the
    catalog validation agent's job (in the consumer group: each bad record is reported once, not once per worker).

    Once caught up the feed pauses its partitions and looks at the end offsets every `IDLE_POLL_S` (or at once when
    `catch_up()` asks): an idle fetcher would otherwise spin, as noida-db answers an empty fetch at once. noida-db
    never compacts, so a start re-reads every version of every item (the last wins via `add_item`'s upsert).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        apply: Callable[[Sequence[tuple[CatalogItem, int]]], None],
        *,
        limits: Limits | None = None,
        client_id: str = "streamrec-catalog-feed",
    ) -> None:
        self.topic = topic
        self._bootstrap = bootstrap_servers
        self._apply = apply
        self._limits = limits or Limits()
        self._client_id = client_id
        self._consumer: Any = None
        self._partitions: list[Any] = []
        self._positions: dict[Any, int] = {}  # next offset to apply, per partition
        self._progress = asyncio.Condition()
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()  # catch_up() wants the current end now
        self._initial_ends: dict[Any, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.applied = 0
        self.skipped = 0

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=None,  # broadcast: no group, no commits, every partition
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        try:
            partitions = await self._wait_for_partitions()
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            self._positions = {tp: await consumer.position(tp) for tp in partitions}
            self._initial_ends = await consumer.end_offsets(partitions)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer, self._partitions = consumer, partitions
        log.info("catalog feed: %d partitions, catching up to %s", len(partitions), self._initial_ends)
        self._check_ready()
        self._task = asyncio.create_task(self._run(), name="catalog-feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def wait_ready(self) -> None:
        """Return once the catalog is applied up to the end offsets seen at start."""
        await self._ready.wait()

    async def catch_up(self, timeout_s: float = 10.0) -> bool:
        """Apply the catalog up to its end offsets as of now; False if that did not happen in `timeout_s`."""
        if self._consumer is None:
            return False
        try:
            async with asyncio.timeout(timeout_s):
                ends: dict[Any, int] = await self._consumer.end_offsets(self._partitions)
                self._wake.set()
                async with self._progress:
                    await self._progress.wait_for(lambda: self._reached(ends))
            return True
        except TimeoutError:
            log.warning("catalog feed did not reach the catalog's end within %.1f s", timeout_s)
            return False

    def _reached(self, ends: dict[Any, int]) -> bool:
        return all(self._positions.get(tp, 0) >= end for tp, end in ends.items())

    def _check_ready(self) -> None:
        if not self._ready.is_set() and self._reached(self._initial_ends):
            log.info("catalog feed ready: %d items applied, %d skipped", self.applied, self.skipped)
            self._ready.set()

    async def _run(self) -> None:
        consumer = self._consumer
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=RECORDS_PER_TURN)
                self._apply_records([message for messages in batches.values() for message in messages])
                # Positions move past transaction markers and compacted gaps too, so read them back.
                for tp in self._partitions:
                    self._positions[tp] = await consumer.position(tp)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep following the catalog; a transient broker error must not stop it
                log.exception("catalog feed: fetch failed, retrying")
                await asyncio.sleep(1.0)
                continue
            self._check_ready()
            async with self._progress:
                self._progress.notify_all()
            if not batches and self.ready:
                await self._idle(consumer)
            elif batches:
                await asyncio.sleep(0)  # getmany doesn't yield while records are buffered

    async def _idle(self, consumer: Any) -> None:
        """Paused until the catalog has new records (checked every IDLE_POLL_S, or when woken)."""
        consumer.pause(*self._partitions)
        try:
            while True:
                self._wake.clear()
                try:
                    ends: dict[Any, int] = await consumer.end_offsets(self._partitions)
                except Exception:
                    log.exception("catalog feed: end offsets failed, fetching instead")
                    return
                if not self._reached(ends):
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(IDLE_POLL_S):
                        await self._wake.wait()
        finally:
            consumer.resume(*self._partitions)

    def _apply_records(self, messages: list[Any]) -> None:
        items: list[tuple[CatalogItem, int]] = []
        for message in messages:
            if message.value is None:
                self.skipped += 1  # a tombstone: models.Catalog can't remove items (yet)
                continue
            try:
                items.append((parse_catalog_item(message.value, limits=self._limits), int(message.timestamp)))
            except Rejected:
                self.skipped += 1
        if not items:
            return
        try:
            with gc_paused():  # no cycles here, and every collection would walk the growing catalog
                self._apply(items)
            self.applied += len(items)
        except Exception:
            log.exception("catalog feed: applying %d items at once failed; applying them one by one", len(items))
            for item in items:  # an upsert again is harmless: the last version wins either way
                try:
                    self._apply([item])
                    self.applied += 1
                except Exception:
                    self.skipped += 1
                    log.exception("catalog feed: applying item %r failed", item[0].item_id)

    async def _wait_for_partitions(self) -> list[Any]:
        # Asking the admin API (all-topics metadata) never auto-creates a missing topic.
        deadline = time.monotonic() + _METADATA_TIMEOUT_S
        while True:
            counts = await describe_topics(self._bootstrap, [self.topic])
            if self.topic in counts:
                return [TopicPartition(self.topic, p) for p in range(counts[self.topic])]
            if time.monotonic() >= deadline:
                raise RuntimeError(f"topic {self.topic!r} does not exist (create it: `streamrec topics create`)")
            await asyncio.sleep(0.5)
