from __future__ import annotations

from pathlib import Path

import pytest

from streamrec.streams.internals.state_healing import UNCLEAN_STOP
from streamrec.streams.internals.unclean_stop import LocalStateClaim, StateInUse


def table_state(datadir: Path, *, stopped_cleanly: bool | None) -> Path:
    """A data directory as Faust's RocksDB store leaves it (partition databases and a backups directory) after a
    worker that stopped cleanly, or not, or one that left no marker (None)."""
    tabledir = datadir / "v1" / "tables"
    if stopped_cleanly is not None:
        worker = LocalStateClaim(datadir, tabledir)
        worker.claim()
        worker.release(clean=stopped_cleanly)
    for name in ("profiles-0.db", "profiles-3.db", "items-1.db"):
        (tabledir / name).mkdir(parents=True)
        (tabledir / name / "CURRENT").write_text("MANIFEST-000001\n")
    (tabledir / "profiles-backups").mkdir()
    return tabledir


def test_a_new_data_directory_drops_nothing(tmp_path: Path) -> None:
    claim = LocalStateClaim(tmp_path / "app", tmp_path / "app" / "v1" / "tables")
    assert claim.claim() == []
    claim.release(clean=True)


def test_state_left_by_a_worker_that_stopped_cleanly_is_kept(tmp_path: Path) -> None:
    tabledir = table_state(tmp_path, stopped_cleanly=True)
    assert LocalStateClaim(tmp_path, tabledir).claim() == []
    kept = sorted(p.name for p in tabledir.iterdir())
    assert kept == ["items-1.db", "profiles-0.db", "profiles-3.db", "profiles-backups"]


def test_state_left_by_a_worker_that_did_not_stop_cleanly_is_dropped_partition_by_partition(tmp_path: Path) -> None:
    tabledir = table_state(tmp_path, stopped_cleanly=False)  # as a SIGKILL leaves it: the marker says running
    dropped = LocalStateClaim(tmp_path, tabledir).claim()
    assert sorted((d.table, d.partition, d.reason) for d in dropped) == [
        ("items", 1, UNCLEAN_STOP),
        ("profiles", 0, UNCLEAN_STOP),
        ("profiles", 3, UNCLEAN_STOP),
    ]
    assert [p.name for p in tabledir.iterdir()] == ["profiles-backups"]


def test_state_without_a_marker_is_not_trusted(tmp_path: Path) -> None:
    tabledir = table_state(tmp_path, stopped_cleanly=None)
    assert len(LocalStateClaim(tmp_path, tabledir).claim()) == 3


def test_a_second_worker_on_the_same_data_directory_is_refused_and_drops_nothing(tmp_path: Path) -> None:
    tabledir = table_state(tmp_path, stopped_cleanly=True)
    running = LocalStateClaim(tmp_path, tabledir)
    running.claim()
    with pytest.raises(StateInUse, match="another worker is running"):
        LocalStateClaim(tmp_path, tabledir).claim()
    running.release(clean=True)
    assert LocalStateClaim(tmp_path, tabledir).claim() == []
    assert len(list(tabledir.glob("*.db"))) == 3
