"""ChangelogRestorer's bookkeeping against a stand-in for Faust's recovery state (the worker-level rebuild is
tests/streams/test_recovery.py; its speed is the bench's `state` phase)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from streamrec.streams.internals.changelog_restore import ChangelogRestorer

CHANGELOG = "app-profiles-changelog"


@dataclass(frozen=True)
class Msg:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes | None

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)


@dataclass(eq=False)  # hashable by identity, as Faust's tables are (recovery.buffers is keyed by table)
class Table:
    store: dict[bytes, bytes] = field(default_factory=dict)
    applied: list[int] = field(default_factory=list)  # offsets, in the order they were written
    _on_changelog_event: Any = None

    def apply_changelog_batch(self, events: list[Any]) -> None:
        for event in events:
            message = event.message
            self.applied.append(message.offset)
            if message.value is None:
                self.store.pop(message.key, None)
            else:
                self.store[message.key] = message.value


class Recovery:
    def __init__(self, table: Table, tps: set[TP]) -> None:
        self.active_tps = set(tps)
        self.tp_to_table = {tp: table for tp in tps}
        self.active_offsets: Counter[TP] = Counter()
        self.buffers: defaultdict[Table, list[Any]] = defaultdict(list)

    def flush_buffers(self) -> None:
        for table, buffer in self.buffers.items():
            table.apply_changelog_batch(buffer)
            buffer.clear()


class App:
    def __init__(self, recovery: Recovery) -> None:
        self.in_recovery = True
        self.tables = type("Tables", (), {"recovery": recovery})()


def _restorer(tps: set[TP]) -> tuple[ChangelogRestorer, App, Table]:
    table = Table()
    app = App(Recovery(table, tps))
    return ChangelogRestorer(app), app, table


def test_takes_only_partitions_under_active_recovery_of_plain_tables() -> None:
    active, standby = TP(CHANGELOG, 0), TP(CHANGELOG, 1)
    restorer, app, table = _restorer({active})
    assert restorer.takes(active)
    assert not restorer.takes(standby)
    table._on_changelog_event = object()  # a callback per record: Faust's path calls it
    assert not restorer.takes(active)
    table._on_changelog_event = None
    app.in_recovery = False
    assert not restorer.takes(active)


def test_the_newest_version_wins_across_fetches_and_faust_sees_the_progress() -> None:
    tp = TP(CHANGELOG, 0)
    restorer, app, table = _restorer({tp})
    recovery = app.tables.recovery
    first = [Msg(CHANGELOG, 0, n, b"u%d" % (n % 3), b"v%d" % n) for n in range(6)]
    for message in first:
        restorer.add(message)
    assert restorer.apply() == [first[-1]]  # the last record goes on through Faust's path
    assert recovery.active_offsets[tp] == 5
    second = [Msg(CHANGELOG, 0, n, b"u%d" % (n % 3), b"v%d" % n) for n in range(6, 8)]
    second.append(Msg(CHANGELOG, 0, 8, b"u1", None))  # a tombstone deletes
    for message in second:
        restorer.add(message)
    restorer.apply()
    assert table.store == {b"u0": b"v6", b"u2": b"v5"}
    assert table.applied == list(range(9))
    assert recovery.active_offsets[tp] == 8
    assert restorer.apply() == []  # nothing pending


def test_records_faust_applied_or_buffered_are_not_reordered() -> None:
    tp = TP(CHANGELOG, 2)
    restorer, app, table = _restorer({tp})
    recovery = app.tables.recovery
    buffered = Msg(CHANGELOG, 2, 3, b"u", b"buffered")  # taken by Faust's path before: older, written first
    recovery.buffers[table].append(type("Event", (), {"message": buffered})())
    recovery.active_offsets[tp] = 3
    stale = Msg(CHANGELOG, 2, 2, b"u", b"stale")  # at or below what Faust applied: skipped
    newer = Msg(CHANGELOG, 2, 4, b"u", b"newer")
    restorer.add(stale)
    restorer.add(newer)
    assert restorer.apply() == [newer]
    assert table.applied == [3, 4]
    assert table.store == {b"u": b"newer"}
