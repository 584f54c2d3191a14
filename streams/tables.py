"""The worker's Faust tables, and the adapter that lets `StreamRecommender` use one as its profile mapping.

Keys and values are raw bytes (`key_type=bytes` selects Faust's "raw" codec). With `str` keys Faust would
JSON-encode them (`"u1"` with quotes), which would change the changelog keys, their partitioning and the
`recommendations` record keys; bytes keep every key exactly the user id's UTF-8.

- `profiles`: user id -> `UserProfile.to_bytes()`, RocksDB, changelog `<app_id>-profiles-changelog`
  (compacted, Faust's default for non-windowed tables).
- `lists`: user id -> the last recommendation list published for the user (JSON bytes). Its changelog
  topic *is* the `recommendations` output topic: writing the table is the publish, one record serving both.
  Why that is correct here:
  * Faust writes a changelog record to the partition of the input record being processed. Input records are
    keyed by user id (unkeyed ones are re-keyed first, see streams/agents.py) and Faust, aiokafka and the
    Java client all partition keys with murmur2, so that partition is the one a keyed producer would pick
    for `recommendations`: consumers of the topic see the usual "key = user id, compacted" contract.
  * The assignor co-partitions the changelog with the input topics (same partition count, same members),
    so the worker that processes user U owns U's `recommendations` partition, and `table_route` (which
    hashes the key onto the changelog topic) sends a view request for U to that worker.
  * Recovery (restart, lost local state, rebalance) rebuilds the table from the very records consumers
    read, so the view can never disagree with the topic; there is no second changelog to keep in step.
  * Faust checks that the changelog and the source topics have the same partition count on the first
    write and raises otherwise (dead-lettered as `internal_error`), so a mis-sized `recommendations`
    topic is loud, not silently mis-routed.
  Limits: producers of input topics must use the murmur2 partitioner (librdkafka's default differs — this
  also holds for the profiles changelog), and nothing else may write to `recommendations`.
"""

from __future__ import annotations

import faust
from faust.types import TableT

from models.profile import EncodedProfiles
from streams.kafka.admin import RECOMMENDATIONS
from streams.settings import Settings

BytesTable = TableT[bytes, bytes]  # keys and values are raw bytes (codec "raw")

PROFILES_TABLE = "profiles"
LISTS_TABLE = "lists"


def profiles_table(app: faust.App, settings: Settings) -> BytesTable:
    return app.Table(
        PROFILES_TABLE,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        help="user id -> UserProfile.to_bytes()",
    )


def lists_table(app: faust.App, settings: Settings) -> BytesTable:
    changelog = app.topic(
        RECOMMENDATIONS,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        replicas=settings.replication_factor,
        compacting=True,
        deleting=False,
        acks=False,  # as Faust's own changelog topics: the table reads it, the agent doesn't consume it
        internal=False,  # created by `streamrec topics create`; Faust only declares it if it is missing
        maxsize=131_072,
        allow_empty=True,
    )
    return app.Table(
        LISTS_TABLE,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        changelog_topic=changelog,
        help="user id -> last published recommendation list (JSON); changelog = recommendations",
    )


class ProfileStore(EncodedProfiles):
    """The recommender's profile mapping over the `profiles` table (encoded with the profile codec).

    Writes must happen inside the agent (Faust sends the changelog record to the current event's
    partition); reads work anywhere on the worker that owns the key.
    """

    def __init__(self, table: BytesTable) -> None:
        super().__init__(table)
        self.table = table
