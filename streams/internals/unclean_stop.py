"""Local table state left by a worker that did not stop cleanly is dropped and restored from the changelogs.

Faust's RocksDB store writes a table change to RocksDB at once and to the changelog through the producer; the
offset it persists is the last changelog record acknowledged. A worker killed between the two leaves local state
ahead of its changelog and of its committed input offsets, and its persisted offset gives no sign of it. The
restarted worker reads those input records again, and a profile (which records the last input offset it applied per
partition) skips them as applied: what they taught it reaches the changelog only if the viewer's profile is written
again, and is lost for good if the partition moves to another worker first. Kafka Streams drops the local state of
a task that was not closed cleanly under exactly-once for the same reason.

A marker file in the app's data directory says whether the last worker on it stopped cleanly; if it did not, every
table partition's local state is dropped and Faust's recovery reads the changelogs from their start (with Kafka's
compaction, about the size of the state). The marker is held under an exclusive lock while the worker runs, so a
second worker on the same data directory is refused instead of sharing (or dropping) live state.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import BinaryIO

from streamrec.streams.internals.state_healing import UNCLEAN_STOP, DiscardedState

MARKER_NAME = "state.lock"
_RUNNING = b"running\n"
_STOPPED = b"stopped\n"


class StateInUse(RuntimeError):
    """Another live worker holds this data directory."""


class LocalStateClaim:
    """The worker's claim on its data directory's table state: `claim` at start, `release` at the end."""

    def __init__(self, datadir: Path, tabledir: Path) -> None:
        self.marker = datadir / MARKER_NAME
        self.tabledir = tabledir
        self._file: BinaryIO | None = None

    def claim(self) -> list[DiscardedState]:
        """Lock the data directory and mark it in use; returns the table partitions dropped because the last worker
        on it did not stop cleanly (none after a clean stop or on a new directory)."""
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        marker = self.marker.open("a+b")
        try:
            fcntl.flock(marker.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            marker.close()
            raise StateInUse(f"another worker is running on {self.marker.parent} (it holds {self.marker})") from None
        marker.seek(0)
        stopped_cleanly = marker.read() == _STOPPED
        discarded = [] if stopped_cleanly else self._drop_tables()
        _write(marker, _RUNNING)
        self._file = marker
        return discarded

    def release(self, *, clean: bool) -> None:
        """Mark a clean stop (everything written was acknowledged by the broker) or leave the marker saying the
        state may be ahead of its changelogs; unlock."""
        marker, self._file = self._file, None
        if marker is None:
            return
        if clean:
            _write(marker, _STOPPED)
        marker.close()  # closing the file releases the lock

    def _drop_tables(self) -> list[DiscardedState]:
        if not self.tabledir.is_dir():
            return []
        discarded = []
        for path in sorted(self.tabledir.glob("*-*.db")):
            table, _, partition = path.name.removesuffix(".db").rpartition("-")
            if not (path.is_dir() and partition.isdigit()):
                continue
            shutil.rmtree(path)
            detail = "the last worker on this data directory did not stop cleanly"
            discarded.append(DiscardedState(table, int(partition), UNCLEAN_STOP, detail))
        return discarded


def _write(marker: BinaryIO, content: bytes) -> None:
    marker.seek(0)
    marker.truncate()
    marker.write(content)
    marker.flush()
    os.fsync(marker.fileno())
