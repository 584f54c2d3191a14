"""Table recovery a fetch at a time: changelog records written to RocksDB in batches, not one by one through
Faust's per-record path (consumer callback, conductor, a queue, then `Recovery._slurp_changelogs` per record)."""

from __future__ import annotations

from typing import Any

from faust.types import TP, Message


class _ChangelogEvent:
    """What a store's `apply_changelog_batch` reads from an event: `.message`."""

    __slots__ = ("message",)

    def __init__(self, message: Message) -> None:
        self.message = message


class ChangelogRestorer:
    """Does per fetch what `faust.tables.recovery.Recovery._slurp_changelogs` does per record.

    Takes the records of partitions under *active* recovery straight from the batching consumer's fetches and
    writes each fetch's worth with the table's own `apply_changelog_batch` (one RocksDB write batch per partition;
    the store records the persisted offset as Faust's path does), then notes the progress in
    `Recovery.active_offsets`. The last record of each partition still goes through Faust's path: Faust sees its
    offset as applied already and skips it, but checks whether recovery is complete, so recovery ends (buffers
    flushed, flow resumed) exactly as before. Order is kept: a partition's records are applied in offset order,
    anything Faust's path buffered for the table is flushed first, records at or below the offset Faust applied
    are skipped. Standby partitions, tables with an `on_changelog_event` callback (`_on_changelog_event`) and
    records outside recovery take Faust's path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._pending: dict[TP, list[Message]] = {}

    def takes(self, tp: TP) -> bool:
        """A record of `tp` is for this restorer: a partition of a table under active recovery."""
        if not self.app.in_recovery:
            return False
        recovery = self.app.tables.recovery
        if tp not in recovery.active_tps:
            return False
        table = recovery.tp_to_table.get(tp)
        return table is not None and table._on_changelog_event is None

    def add(self, message: Message) -> None:
        self._pending.setdefault(message.tp, []).append(message)

    def apply(self) -> list[Message]:
        """Write the records taken so far to their tables; return the last record of each partition, to be
        handed to Faust's recovery (which then checks for the end of recovery)."""
        if not self._pending:
            return []
        recovery = self.app.tables.recovery
        if any(recovery.buffers.values()):
            recovery.flush_buffers()  # records Faust's path holds are older: they go first
        offsets = recovery.active_offsets
        last: list[Message] = []
        for tp, messages in self._pending.items():
            seen = offsets.get(tp)
            fresh = [m for m in messages if seen is None or m.offset > seen]
            if fresh:
                recovery.tp_to_table[tp].apply_changelog_batch([_ChangelogEvent(m) for m in fresh])
                offsets[tp] = fresh[-1].offset
            last.append(messages[-1])
        self._pending.clear()
        return last
