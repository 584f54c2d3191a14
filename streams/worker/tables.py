"""The worker's Faust table (`profiles`: user id -> `UserProfile.to_bytes()`) and the last lists published.

Keys and values are raw bytes (`key_type=bytes` selects Faust's "raw" codec): with `str` keys Faust would
JSON-encode them (`"u1"` with quotes), changing the changelog keys, their partitioning and the list keys.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import faust
import orjson
from faust.types import TableT

from streamrec.models.profile import EncodedProfiles
from streamrec.streams.internals.table_writes import TableWrites
from streamrec.streams.settings import Settings

BytesTable = TableT[bytes, bytes]  # keys and values are raw bytes (codec "raw")

PROFILES_TABLE = "profiles"


def profiles_table(app: faust.App, settings: Settings) -> BytesTable:
    """RocksDB, changelog `<app_id>-profiles-changelog` (compacted, Faust's default for non-windowed tables). Faust
    writes a changelog record to the partition of the input record being processed; input records are keyed by
    user id (unkeyed ones are re-keyed first, `streams.worker.outputs.Rekeyer`) and partitioned with murmur2, so a
    user's profile lives on the worker that owns the user's input partitions, and `table_route` finds it.
    Producers of input topics must use the murmur2 partitioner (librdkafka's default differs)."""
    return app.Table(
        PROFILES_TABLE,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        help="user id -> UserProfile.to_bytes()",
    )


class TableProfiles(EncodedProfiles):
    """Profiles encoded in the `profiles` table (the profile codec).

    Writes must happen where Faust knows the partition (`streams.internals.routing.partition_context`: the
    changelog record goes to it); reads work anywhere on the worker that owns the key.
    """

    def __init__(self, table: BytesTable) -> None:
        super().__init__(table)
        self.table = table

    def get_raw(self, user_id: str) -> bytes | None:
        # From the table's store: the table's own get asks the store whether it holds the key, then for the
        # value (two RocksDB reads), through Faust's sensor and mapping layers; one read on every live event.
        try:
            raw = self.table.data[user_id.encode()]
        except KeyError:
            return None
        return bytes(raw)


class BatchedTableProfiles(TableProfiles):
    """`TableProfiles` whose batch of writes goes to the table at once (`table_writes.TableWrites`)."""

    def __init__(self, table: BytesTable, writes: TableWrites) -> None:
        super().__init__(table)
        self.writes = writes

    def write_batch(self, changes: Sequence[tuple[str, bytes | None, int]]) -> None:
        """A batch's encoded profiles (None: erased), each on its partition (store and changelog), in order."""
        grouped: dict[int, list[tuple[bytes, bytes | None]]] = {}
        for user_id, value, partition in changes:
            grouped.setdefault(partition, []).append((user_id.encode(), value))
        self.writes.write(grouped)


_ITEM_ID = b'"item_id":'
_ITEM_IDS = re.compile(rb'"item_id":("(?:[^"\\]|\\.)*")')  # each item id named, as the JSON string it is written as
_SEARCHED_ONE_BY_ONE = 4


class RecentLists:
    """The last list published for each of the most recently served users (JSON bytes), bounded, with the partition
    it was published to.

    Lists are not a table: they are published to `recommendations` (keyed by user id, on the user's partition) and
    kept here for the list view. A table would double every list into a changelog the worker must replay on every
    rebuild, for a view that can rank from the profile instead."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lists: OrderedDict[str, tuple[int, bytes]] = OrderedDict()

    def put(self, user_id: str, payload: bytes, partition: int) -> None:
        self._lists[user_id] = (partition, payload)
        self._lists.move_to_end(user_id)
        while len(self._lists) > self.capacity:
            self._lists.popitem(last=False)

    def get(self, user_id: str) -> bytes | None:
        held = self._lists.get(user_id)
        return None if held is None else held[1]

    def forget(self, user_id: str) -> None:
        self._lists.pop(user_id, None)

    def held(self) -> list[tuple[str, tuple[int, bytes]]]:
        """Every list held, as (user id, (partition, payload)), least recently put first (a snapshot)."""
        return list(self._lists.items())

    def __len__(self) -> int:
        return len(self._lists)


def lists_naming(held: Sequence[tuple[str, tuple[int, bytes]]], item_ids: Iterable[str]) -> list[tuple[str, int]]:
    """The users (with their partitions) of `held` (`RecentLists.held`) whose list names one of `item_ids`, as an
    item or as a reason's evidence. A scan of the lists' bytes for `"item_id":<id>` (orjson writes no spaces): for
    the rare catalog removal, it costs nothing on the path every list takes. A few ids are searched for one by one,
    more in one pass."""
    wanted = {orjson.dumps(item_id) for item_id in item_ids}
    if len(wanted) <= _SEARCHED_ONE_BY_ONE:
        needles = [_ITEM_ID + token for token in wanted]
        return [(user_id, partition) for user_id, (partition, payload) in held if any(n in payload for n in needles)]
    return [
        (user_id, partition)
        for user_id, (partition, payload) in held
        if not wanted.isdisjoint(_ITEM_IDS.findall(payload))
    ]
