"""The time-ordered merge of the input partitions: which records read may go to the handler, and in what order.

A viewer's play and the rating after it travel on two topics, and the fetcher returns partitions' records in
chunks, so a batch is a merge of its partitions by record timestamp: a record goes only once every other partition
is known to hold nothing unread stamped before it. Pure: records are anything with `topic`, `tp` and `timestamp`.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from typing import Generic, NamedTuple, Protocol, TypeVar

log = logging.getLogger(__name__)

TP = tuple[str, int]  # (topic, partition); Faust's and aiokafka's TopicPartition are such named tuples

HOLD_MAX_S = 1.0  # longest wait for a lagging partition before held records are released anyway
HOLD_FACTOR = 2  # most records held: HOLD_FACTOR batches (max_batch each), and at least HOLD_MIN
HOLD_MIN = 100_000


class TimedRecord(Protocol):
    """What the merge reads of a record: its partition and its timestamp (seconds)."""

    @property
    def topic(self) -> str: ...

    @property
    def tp(self) -> TP: ...

    @property
    def timestamp(self) -> float: ...


R = TypeVar("R", bound=TimedRecord)


class Held(NamedTuple, Generic[R]):
    """A record read and tracked, waiting for its turn; `read_ms`: wall-clock milliseconds when it was read."""

    record: R
    read_ms: int

    @property
    def tp(self) -> TP:
        return self.record.tp

    @property
    def timestamp(self) -> float:
        return self.record.timestamp


@dataclass(frozen=True, slots=True)
class Bound:
    """What is known about a partition's unread records: none is stamped before `last_read_ts` (the last record
    read from it, in seconds), and a fetch answer processed at `caught_up_ms` (wall ms; -inf if the latest
    answer showed more to read) showed none at all."""

    last_read_ts: float
    caught_up_ms: float = -math.inf


def take_in_time_order(
    held: dict[TP, deque[Held[R]]], rank: Mapping[str, int], bounds: Mapping[TP, Bound], *, waited: bool = False
) -> list[R]:
    """Pop and return the held records that can go, merged in (timestamp, topic rank) order: equal timestamps in
    topic rank order, each partition's own order always kept. A record goes when
    every other partition in `bounds` was read up to its timestamp or confirmed caught up after it was read
    (`waited`: or at all); a partition without a bound holds nothing back. Each partition's own order is kept (a
    record goes only after those before it in its partition); emptied partitions are removed from `held`.

    (A fetch answer that came with the record or before it does not do: a broker reads each partition's log at its
    own moment, so the record's predecessor in another partition may have been written just after that partition
    was read.)"""
    merged = heapq.merge(*held.values(), key=lambda h: (h.timestamp, rank[h.record.topic]))
    taken: list[Held[R]] = []
    limits = [
        (tp, b.last_read_ts, math.inf if waited and b.caught_up_ms > -math.inf else b.caught_up_ms)
        for tp, b in bounds.items()
    ]
    for entry in merged:
        ts, read_ms, tp = entry.timestamp, entry.read_ms, entry.tp
        if any(other != tp and ts > last_ts and read_ms >= caught_up for other, last_ts, caught_up in limits):
            break
        taken.append(entry)
    for entry in taken:  # the merge keeps each partition's order: they are at the queues' fronts
        held[entry.tp].popleft()
    for tp in [tp for tp, queue in held.items() if not queue]:
        del held[tp]
    return [entry.record for entry in taken]


class TimeOrderedHold(Generic[R]):
    """The records a consumer read, until they can go in time order (`take_in_time_order`).

    A lone event on a live worker waits for one more fetch answer, and no longer than `order_wait_s` of reads
    finding nothing new. The hold is bounded: when nothing can go in order and nothing could for `HOLD_MAX_S` (a
    paused or stuck partition), or more than `max(HOLD_FACTOR * max_batch, HOLD_MIN)` records are held, everything
    held goes in merged order. (Order is tried first: a backlog read in bulk, one partition after another, goes in
    order once its last partitions are read, however long that took.) Records of `unordered` topics go as read
    and hold nothing back.
    """

    def __init__(
        self,
        rank: Mapping[str, int],
        unordered: Set[str],
        *,
        max_batch: int,
        order_wait_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rank = rank  # tie-break of equal timestamps
        self.unordered = unordered
        self.max_batch = max_batch
        self.order_wait_s = order_wait_s
        self._clock = clock
        self._held: dict[TP, deque[Held[R]]] = {}  # by partition, in read order
        self._loose: list[R] = []  # of unordered topics, in read order
        self._last_read_ts: dict[TP, float] = {}  # timestamp of the last record read, per partition
        self._stalled_since: float | None = None  # when a release last found nothing it could hand over
        self._quiet_since: float | None = None  # since when reads find nothing new

    def ordered(self, topic: str) -> bool:
        return topic not in self.unordered

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def __len__(self) -> int:
        return len(self._loose) + sum(map(len, self._held.values()))

    def add(self, record: R, read_ms: int) -> None:
        if record.topic in self.unordered:
            self._loose.append(record)
            return
        tp = record.tp
        queue = self._held.get(tp)
        if queue is None:
            queue = self._held[tp] = deque()
        queue.append(Held(record, read_ms))
        self._last_read_ts[tp] = record.timestamp

    def after_read(self, new_records: int) -> None:
        if new_records:
            self._quiet_since = None
        elif self._quiet_since is None:
            self._quiet_since = self._clock()

    def release(self, caught_up_ms: Mapping[TP, float]) -> list[R]:
        """The unordered records, then the held ones that can go in time order. `caught_up_ms`: per partition
        that holds the others back, when a fetch answer last showed it caught up (-inf: it has more to read)."""
        out, self._loose = self._loose, []
        held = self._held
        total = sum(map(len, held.values()))
        if not total:
            self._stalled_since = None
            return out
        now = self._clock()
        waited = self._quiet_since is not None and now - self._quiet_since >= self.order_wait_s
        bounds = {tp: Bound(self._last_read_ts.get(tp, -math.inf), ms) for tp, ms in caught_up_ms.items()}
        taken = take_in_time_order(held, self.rank, bounds, waited=waited)
        # Only when nothing can go in order (a partition read far behind the others, or not at all).
        too_many = total > max(HOLD_FACTOR * self.max_batch, HOLD_MIN)
        stalled = self._stalled_since is not None and now - self._stalled_since > HOLD_MAX_S
        if not taken and (too_many or stalled):
            log.warning(
                "releasing %d held records without waiting for the order across partitions (%s)",
                total,
                "too many held" if too_many else "stalled",
            )
            taken = take_in_time_order(held, self.rank, {})
        if taken:
            self._stalled_since = None
        elif self._stalled_since is None:
            self._stalled_since = now
        return out + taken

    def take_all(self) -> list[R]:
        records = self._loose + [entry.record for queue in self._held.values() for entry in queue]
        self._loose = []
        self._held.clear()
        self._last_read_ts.clear()
        self._stalled_since = None
        return records
