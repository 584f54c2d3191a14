"""Local table state that disagrees with its changelog is dropped and restored from the changelog, not a crash.

Faust's RocksDB store keeps, in each partition's database, the changelog offset it last applied
(`Store.offset_key`). If that offset is past the changelog's end (the broker lost acknowledged writes, or the topic
was recreated), Faust's recovery raises `ConsistencyError`, and again at every start; a partition database that
cannot be opened (a corrupt or truncated RocksDB directory) stops the worker the same way. Here either case drops
that partition's local state (its RocksDB directory, the persisted offset with it) and lets recovery read the
partition's changelog from the start, told to the app's `on_state_discarded` (a log line and a metric).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from faust.stores import STORES
from faust.stores.rocksdb import Store
from faust.tables.recovery import Recovery
from faust.types import TP

log = logging.getLogger(__name__)

HEALING_STORE_URL = "streamrec-rocksdb://"  # Faust's RocksDB store, healing itself (`HealingStore`)
AHEAD_OF_CHANGELOG = "ahead_of_changelog"
UNREADABLE = "unreadable"
UNCLEAN_STOP = "unclean_stop"  # the last worker on the data directory did not stop cleanly (`unclean_stop`)
REASONS = (AHEAD_OF_CHANGELOG, UNREADABLE, UNCLEAN_STOP)


@dataclass(frozen=True, slots=True)
class DiscardedState:
    """One table partition's local state, dropped to be restored from its changelog."""

    table: str
    partition: int
    reason: str  # one of REASONS
    detail: str


StateDiscardedHook = Callable[[DiscardedState], None]


def register_healing_store() -> str:
    """Make `HEALING_STORE_URL` name `HealingStore` for Faust (its store registry); returns the URL."""
    STORES.aliases.setdefault(HEALING_STORE_URL.split(":", 1)[0], f"{__name__}:HealingStore")
    return HEALING_STORE_URL


def tell_discarded(app: Any, discarded: DiscardedState) -> None:
    """Say that a table partition's local state was dropped: a log line, and the app's `on_state_discarded`."""
    log.warning(
        "local state of table %s partition %d discarded (%s: %s): restoring it from the changelog",
        discarded.table,
        discarded.partition,
        discarded.reason,
        discarded.detail,
    )
    hook: StateDiscardedHook | None = getattr(app, "on_state_discarded", None)
    if hook is not None:
        hook(discarded)


class HealingStore(Store):
    """Faust's RocksDB store that can drop one partition's database, and does when the database cannot be opened
    or its persisted offset cannot be read."""

    def discard_partition(self, partition: int, reason: str, detail: str) -> None:
        """Close and delete partition `partition`'s database (reopened empty on next use), and say so."""
        db = self._dbs.pop(partition, None)
        if db is not None:
            db.close()  # releases RocksDB's lock on the directory, so that it can be created again
        shutil.rmtree(self.partition_path(partition), ignore_errors=True)
        tell_discarded(self.app, DiscardedState(str(self.table_name), partition, reason, detail))

    def persisted_offset(self, tp: TP) -> int | None:
        try:
            return super().persisted_offset(tp)
        except ValueError as error:  # the offset key holds something other than a number
            self.discard_partition(tp.partition, UNREADABLE, f"persisted offset unreadable: {error}")
            return None

    def _open_for_partition(self, partition: int) -> Any:
        # `faust.stores.rocksdb.Store._open_for_partition`, retried once on an empty directory after a failure
        # that is not a lock held by another process (Faust's `_try_open_db_for_partition` retries those).
        try:
            return super()._open_for_partition(partition)
        except Exception as error:  # rocksdict raises plain Exception ("Corruption: ...", "IO error: ...")
            if "lock" in str(error).lower():
                raise
            self.discard_partition(partition, UNREADABLE, f"RocksDB open failed: {error}")
            return super()._open_for_partition(partition)


class HealingRecovery(Recovery):
    """Faust's table recovery, which drops a partition's local state whose persisted offset is past its
    changelog's end (and restores the partition from the changelog) instead of raising `ConsistencyError`."""

    async def _build_offsets(self, consumer: Any, tps: set[TP], destination: Any, title: str) -> None:
        # `faust.tables.recovery.Recovery._restart_recovery` calls this for the active partitions right after
        # building their high-water marks (`active_highwaters`, the last offset, -1 if empty), and checks
        # `offset > highwater` right after; for standbys it checks later, against high-water marks built then.
        if title == "active":
            highwaters: Mapping[TP, int | None] = self.active_highwaters
        else:
            ends = await consumer.highwaters(*tps)
            highwaters = {tp: (end - 1 if end is not None else -1) for tp, end in ends.items()}
        for tp in tps:
            offset, highwater = destination.get(tp), highwaters.get(tp)
            if offset is None or highwater is None or offset <= highwater:
                continue
            store = getattr(self.tp_to_table[tp], "data", None)
            if not isinstance(store, HealingStore):
                continue  # Faust's consistency check decides
            store.discard_partition(
                tp.partition, AHEAD_OF_CHANGELOG, f"persisted offset {offset}, changelog {tp.topic} ends at {highwater}"
            )
            destination[tp] = None  # as for a partition never seen: read from the changelog's start
        await super()._build_offsets(consumer, tps, destination, title)
