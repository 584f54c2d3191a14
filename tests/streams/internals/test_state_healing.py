"""The healing RocksDB store on disk (no broker): a partition directory that cannot be opened, or whose persisted
offset is not a number, is dropped and reported; a sound one is kept. The recovery side (an offset past the
changelog's end) is run on the real broker: tests/streams/test_chaos_recovery.py."""

from __future__ import annotations

from pathlib import Path

import faust
import rocksdict
from faust.types import TP

from streamrec.streams.internals.state_healing import (
    UNREADABLE,
    DiscardedState,
    HealingStore,
    register_healing_store,
)

OFFSET_KEY = b"__faust\0offset__"


def store_in(tmp_path: Path, told: list[DiscardedState]) -> tuple[HealingStore, str]:
    app = faust.App("heal-test", store=register_healing_store(), datadir=str(tmp_path), autodiscover=False)
    app.on_state_discarded = told.append  # type: ignore[attr-defined]  # what BatchingApp declares
    table = app.Table("profiles", key_type=bytes, value_type=bytes, partitions=2)
    store = table.data
    assert isinstance(store, HealingStore)
    return store, table.changelog_topic.get_topic_name()


def test_a_partition_directory_that_cannot_be_opened_is_dropped_and_reported(tmp_path: Path) -> None:
    told: list[DiscardedState] = []
    store, changelog = store_in(tmp_path, told)
    store.set_persisted_offset(TP(changelog, 0), 41)  # creates partition 0's directory
    store.set_persisted_offset(TP(changelog, 1), 7)
    path = store.partition_path(1)
    store.discard_partition(1, UNREADABLE, "test: closed to garble it")  # closes it (told, once)
    told.clear()
    path.mkdir()
    (path / "CURRENT").write_text("garbled")

    assert store.persisted_offset(TP(changelog, 1)) is None  # opened afresh, empty
    assert [(d.table, d.partition, d.reason) for d in told] == [("profiles", 1, UNREADABLE)]
    assert "Corruption" in told[0].detail
    assert store.persisted_offset(TP(changelog, 0)) == 41  # the sound partition is kept


def test_a_persisted_offset_that_is_not_a_number_drops_the_partition(tmp_path: Path) -> None:
    told: list[DiscardedState] = []
    store, changelog = store_in(tmp_path, told)
    path = store.partition_path(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
    db.put(OFFSET_KEY, b"not a number")
    db.put(b"viewer", b"profile")
    db.close()

    assert store.persisted_offset(TP(changelog, 0)) is None
    assert [(d.partition, d.reason) for d in told] == [(0, UNREADABLE)]
    store.set_persisted_offset(TP(changelog, 0), 3)  # the partition works again, emptied
    assert store.persisted_offset(TP(changelog, 0)) == 3
