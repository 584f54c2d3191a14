"""The catalog as a broadcast stream: every worker reads *all* partitions of `catalog` from the beginning.

`catalog` is partitioned by item id, but every worker ranks over the whole catalog, so it can't be read through the
consumer group: a group-less aiokafka consumer is assigned every partition; nothing is committed, each start
re-reads the compacted topic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from streamrec.models.events import CatalogItem, Limits, Rejected, parse_catalog_item
from streamrec.streams.internals.batching import gc_paused
from streamrec.streams.worker.broadcast_feed import RECORDS_PER_TURN, BroadcastFeed

log = logging.getLogger(__name__)

__all__ = ["RECORDS_PER_TURN", "CatalogFeed"]


class CatalogFeed(BroadcastFeed):
    """The catalog's records applied to the worker's catalog (`apply([(item, record_ts_ms), ...])`, a fetch at a
    time). `wait_ready()` gates every user event; `catch_up()` runs before an event is rejected as `unknown_item`, so
    an item published just before its first viewer's event is not lost to a race. Invalid records and tombstones
    are skipped here; dead-lettering them is the catalog validation agent's job (in the consumer group: each bad
    record is reported once, not once per worker). noida-db never compacts, so a start re-reads every version of
    every item (the last wins via `add_item`'s upsert)."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        apply: Callable[[Sequence[tuple[CatalogItem, int]]], None],
        *,
        limits: Limits | None = None,
        client_id: str = "streamrec-catalog-feed",
    ) -> None:
        super().__init__(bootstrap_servers, topic, client_id=client_id)
        self._apply = apply
        self._limits = limits or Limits()

    def _apply_records(self, messages: list[Any]) -> None:
        items: list[tuple[CatalogItem, int]] = []
        for message in messages:
            if message.value is None:
                self.skipped += 1  # a tombstone: models.Catalog can't remove items (yet)
                continue
            try:
                parsed = parse_catalog_item(message.value, key=message.key, limits=self._limits)
                items.append((parsed, int(message.timestamp)))
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
