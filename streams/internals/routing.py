"""Partition routing for table reads and writes outside Faust's stream path.

Faust's tables pick the partition (RocksDB store and changelog partition) of a read or write from the "current
event", which only its stream iterator sets. `partition_context` sets it for a block of the worker's code.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from faust.streams import _current_event


class PartitionedRecord(Protocol):
    """What Faust's tables read of the current event's message."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class _PartitionEvent:
    """The part of a Faust event that tables read: `.message` (topic and partition)."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, message: PartitionedRecord) -> None:
        self.message = message


@contextmanager
def partition_context(message: PartitionedRecord) -> Iterator[None]:
    """Table reads and writes inside the block go to `message`'s partition (store and changelog).

    Mirrors `faust.streams.Stream._set_current_event` (a weak reference to the event in `_current_event`), which
    `faust.streams.current_event` reads for `faust.tables.base.Collection.partition_for_key` and
    `faust.stores.rocksdb.Store._set` / `_get`."""
    event = _PartitionEvent(message)
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)
