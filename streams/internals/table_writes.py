"""A batch's writes to a RocksDB table at once: one RocksDB write batch per partition, and its changelog records
handed to the producer as whole batches, instead of one by one through Faust's path (`Table.__setitem__`:
sensors, the store's put, then `on_key_set` -> `send_changelog`: a future, a producer-buffer entry, an aiokafka
send and a callback per record, and in that callback a RocksDB write of the persisted offset per record).

What Faust's path leaves behind is left alike: the values in the partition's RocksDB database (`Store._set`, the key
noted in the store's key index), the records on the table's changelog in write order, on the partition given, and,
once a partition's records are acknowledged, the offset of the last as the partition's persisted offset
(`Collection._on_changelog_sent`, at-least-once), from which a restart reads the changelog again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import rocksdict
from faust.types import TP

from streamrec.streams.internals.producer_buffer import Delivered, Records

HandOver = Callable[[str, Records, Delivered], None]  # `DrainingProducer.hand_over`


class TableWrites:
    """Writes to `table` (a Faust table on the RocksDB store, raw keys and values) a batch at a time."""

    def __init__(self, table: Any, hand_over: HandOver) -> None:
        self.table = table
        self._hand_over = hand_over
        self._persisted: dict[int, int] = {}  # the persisted offset set last, by partition

    def write(self, changes: Mapping[int, Sequence[tuple[bytes, bytes | None]]]) -> None:
        """Each (key, value) on its partition, in order (None: a delete); their changelog records follow."""
        store = self.table.data
        for partition, pairs in changes.items():
            batch = rocksdict.WriteBatch(raw_mode=True)
            for key, value in pairs:
                if value is None:
                    store._del(key)  # from every partition database that may hold it, as Faust deletes
                else:
                    batch.put(key, value)
                    store._key_index[key] = partition
            store._db_for_partition(partition).write(batch)
        self._hand_over(self.table.changelog_topic_name, changes, self._delivered)

    def _delivered(self, partition: int, offset: int) -> None:
        if offset > self._persisted.get(partition, -1):  # a partition's batches are acknowledged in order
            self._persisted[partition] = offset
            self.table.data.set_persisted_offset(TP(self.table.changelog_topic_name, partition), offset)
