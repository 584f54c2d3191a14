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
    time; a tombstone, keyed by the item id, removes the item: `remove([item_id, ...])`, in the records' order).
    `wait_ready()` gates every user event; `catch_up()` runs before an event is rejected as `unknown_item`, so
    an item published just before its first viewer's event is not lost to a race. Invalid records and keyless
    tombstones are skipped here; dead-lettering them is the catalog validation agent's job (in the consumer group:
    each bad record is reported once, not once per worker). noida-db never compacts, so a start re-reads every
    version of every item (the last wins via `add_item`'s upsert, or the removal)."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        apply: Callable[[Sequence[tuple[CatalogItem, int]]], None],
        *,
        remove: Callable[[Sequence[str]], None] | None = None,
        limits: Limits | None = None,
        client_id: str = "streamrec-catalog-feed",
    ) -> None:
        super().__init__(bootstrap_servers, topic, client_id=client_id)
        self._apply = apply
        self._remove = remove
        self.removed = 0  # tombstones applied
        self._limits = limits or Limits()

    def _apply_records(self, messages: list[Any]) -> None:
        items: list[tuple[CatalogItem, int]] = []
        removals: list[str] = []
        for message in messages:
            if message.value is None:
                key = message.key.decode("utf-8", "replace") if message.key else ""
                if not key or self._remove is None:
                    self.skipped += 1
                    continue
                self._apply_items(items)  # what came before the tombstone goes first
                removals.append(key)
                continue
            try:
                item = parse_catalog_item(message.value, key=message.key, limits=self._limits)
            except Rejected:
                self.skipped += 1
                continue
            self._remove_items(removals)
            items.append((item, int(message.timestamp)))
        self._apply_items(items)
        self._remove_items(removals)

    def _remove_items(self, removals: list[str]) -> None:
        """Remove the items of the tombstones collected (then forget them)."""
        if not removals or self._remove is None:
            return
        try:
            self._remove(list(removals))
            self.removed += len(removals)
        except Exception:
            log.exception("catalog feed: removing %d items failed", len(removals))
            self.skipped += len(removals)
        removals.clear()

    def _apply_items(self, items: list[tuple[CatalogItem, int]]) -> None:
        """Apply the items collected (then forget them)."""
        if not items:
            return
        self._apply_batch(list(items))
        items.clear()

    def _apply_batch(self, items: list[tuple[CatalogItem, int]]) -> None:
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
