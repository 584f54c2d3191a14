"""The worker's Faust tables, and the adapter that lets `StreamRecommender` use one as its profile mapping.

Keys and values are raw bytes (`key_type=bytes` selects Faust's "raw" codec). With `str` keys Faust would
JSON-encode them (`"u1"` with quotes), which would change the changelog keys, their partitioning and the
`recommendations` record keys; bytes keep every key exactly the user id's UTF-8.

- `profiles`: user id -> `UserProfile.to_bytes()`, RocksDB, changelog `<app_id>-profiles-changelog`
  (compacted, Faust's default for non-windowed tables). Faust writes a changelog record to the partition of
  the input record being processed; input records are keyed by user id (unkeyed ones are re-keyed first,
  see streams/agents.py) and partitioned with murmur2, so a user's profile lives on the worker that owns
  the user's input partitions, and `table_route` finds it. Producers of input topics must use the murmur2
  partitioner (librdkafka's default differs).

Lists are not a table: they are published to `recommendations` (keyed by user id, on the partition of the
input records that caused them, which is the user's murmur2 partition) and the worker keeps the most recent
ones in memory (`RecentLists`) for its view. A table would double every list into a changelog the worker
must replay on every rebuild (at 100k users it was 94% of the rebuild's bytes) for a view that can rank
from the profile instead.
"""

from __future__ import annotations

from collections import OrderedDict

import faust
from faust.tables import TableManager
from faust.types import TableT

from streamrec.models.profile import EncodedProfiles
from streamrec.streams.settings import Settings

BytesTable = TableT[bytes, bytes]  # keys and values are raw bytes (codec "raw")

PROFILES_TABLE = "profiles"


def profiles_table(app: faust.App, settings: Settings) -> BytesTable:
    return app.Table(
        PROFILES_TABLE,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        help="user id -> UserProfile.to_bytes()",
    )


class PromptTableManager(TableManager):
    """Faust's table manager without the fixed 1 s sleep it starts with (a grace period for tables defined
    late, e.g. by agents starting with the app): streamrec defines its one table with the app, so the sleep was
    a second of every worker start, restore included, spent waiting."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class ProfileStore(EncodedProfiles):
    """The recommender's profile mapping over the `profiles` table (encoded with the profile codec).

    Writes must happen inside the agent (Faust sends the changelog record to the current event's
    partition); reads work anywhere on the worker that owns the key.
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


class RecentLists:
    """The last list published for each of the most recently served users (JSON bytes), bounded."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lists: OrderedDict[str, bytes] = OrderedDict()

    def put(self, user_id: str, payload: bytes) -> None:
        self._lists[user_id] = payload
        self._lists.move_to_end(user_id)
        while len(self._lists) > self.capacity:
            self._lists.popitem(last=False)

    def get(self, user_id: str) -> bytes | None:
        return self._lists.get(user_id)

    def __len__(self) -> int:
        return len(self._lists)
