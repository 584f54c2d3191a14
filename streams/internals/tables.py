"""Faust table internals the worker needs: a table manager that starts at once and heals its tables' local state,
and a table's local key count."""

from __future__ import annotations

from typing import Any

from faust.tables import TableManager
from faust.tables.recovery import Recovery

from streamrec.streams.internals.state_healing import HealingRecovery

EXACT_COUNT_LIMIT = 100_000  # count table keys exactly below this estimate, else report the estimate


class PromptTableManager(TableManager):
    """Faust's table manager without the fixed 1 s sleep it starts with (a grace period for tables defined
    late, e.g. by agents starting with the app): streamrec defines its one table with the app, so the sleep was
    a second of every worker start, restore included, spent waiting."""

    async def on_start(self) -> None:
        # A copy of `faust.tables.manager.TableManager.on_start` after its `await self.sleep(1.0)`.
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    @property
    def recovery(self) -> Recovery:
        """The table recovery, healing local state that is ahead of its changelog
        (`streams.internals.state_healing`); `faust.tables.manager.TableManager.recovery` with that class."""
        if self._recovery is None:
            self._recovery = HealingRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


def local_key_count(table: Any) -> int:
    """Keys in the local RocksDB partitions (active + standby) of a Faust table: RocksDB's estimate when large,
    else exact. Reads `faust.stores.rocksdb.Store._dbs` (partition -> rocksdict.Rdict, opened raw), skipping the
    key under which the store keeps each partition's changelog offset (`Store.offset_key`)."""
    store = table.data
    dbs = getattr(store, "_dbs", None)  # absent on other stores (memory://)
    if not dbs:
        return 0
    estimate = 0
    for db in dbs.values():
        try:
            estimate += int(db.property_int_value("rocksdb.estimate-num-keys") or 0)
        except Exception:
            estimate = 0
            break
    if estimate > EXACT_COUNT_LIMIT:
        return estimate
    offset_key = store.offset_key
    # Rdict.__iter__ is refused in raw mode (faust opens the DBs raw); keys() works.
    return sum(1 for db in dbs.values() for key in db.keys() if key != offset_key)  # noqa: SIM118
