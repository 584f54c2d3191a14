"""The time-ordered merge of the input partitions, pure: which records may go, in what order, and the hold's limits."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrec.streams.worker.time_order import HOLD_MAX_S, TP, Bound, Held, TimeOrderedHold, take_in_time_order

RANK = {"searches": 0, "plays": 1, "ratings": 2}


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    timestamp: float

    @property
    def tp(self) -> TP:
        return (self.topic, self.partition)


partition_timestamps = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 5)), max_size=12)
partitions = st.tuples(st.sampled_from(sorted(RANK)), st.integers(0, 2))
bound_values = st.builds(
    Bound,
    st.integers(-1, 35).map(float) | st.just(-math.inf),
    st.integers(0, 6).map(float) | st.just(-math.inf),
)


def held_of(stamps: dict[tuple[str, int], list[tuple[int, int]]], sort_each: bool) -> dict[TP, deque[Held[Rec]]]:
    return {
        (topic, partition): deque(
            Held(Rec(topic, partition, offset, float(ts)), read_ms)
            for offset, (ts, read_ms) in enumerate(sorted(times) if sort_each else times)
        )
        for (topic, partition), times in stamps.items()
    }


@given(
    st.dictionaries(partitions, partition_timestamps, max_size=6),
    st.dictionaries(partitions, bound_values, max_size=6),
    st.booleans(),
    st.booleans(),
)
def test_a_record_goes_only_when_every_other_partition_is_known_to_hold_nothing_earlier(
    stamps: dict[tuple[str, int], list[tuple[int, int]]],
    bounds: dict[TP, Bound],
    waited: bool,
    sort_each: bool,
) -> None:
    held = held_of(stamps, sort_each)
    read_ms = {entry.record: entry.read_ms for queue in held.values() for entry in queue}
    before = {tp: [entry.record for entry in queue] for tp, queue in held.items()}
    taken = take_in_time_order(held, RANK, bounds, waited=waited)
    for rec in taken:
        assert all(
            rec.timestamp <= bound.last_read_ts
            or read_ms[rec] < bound.caught_up_ms
            or (waited and bound.caught_up_ms > -math.inf)
            for tp, bound in bounds.items()
            if tp != rec.tp
        )
    for tp, records in before.items():
        mine = [rec for rec in taken if rec.tp == tp]
        assert mine == records[: len(mine)]  # a prefix of the partition, in its order
        assert [entry.record for entry in held.get(tp, ())] == records[len(mine) :]  # the rest is still held
    if sort_each:  # partitions in time order: the merge is in (timestamp, topic rank) order
        keys = [(rec.timestamp, RANK[rec.topic]) for rec in taken]
        assert keys == sorted(keys)
        if not bounds:  # nothing to wait for: everything goes
            assert not held


def test_equal_timestamps_go_in_topic_rank_order_and_a_partition_never_waits_for_itself() -> None:
    ratings, plays = ("ratings", 0), ("plays", 0)
    held = held_of({ratings: [(5, 0), (6, 0)], plays: [(5, 0), (6, 0), (9, 0)]}, sort_each=True)
    # Both read up to their last records, neither confirmed caught up since: plays may go up to 6, ratings to 9.
    taken = take_in_time_order(held, RANK, {ratings: Bound(6.0), plays: Bound(9.0)})
    assert [(r.topic, r.timestamp) for r in taken] == [
        ("plays", 5.0),
        ("ratings", 5.0),
        ("plays", 6.0),
        ("ratings", 6.0),
    ]
    assert [(h.record.topic, h.timestamp) for q in held.values() for h in q] == [("plays", 9.0)]


def test_a_caught_up_partition_holds_back_only_records_read_after_its_last_fetch_answer() -> None:
    ratings, plays = ("ratings", 0), ("plays", 0)
    held = held_of({plays: [(7, 10), (8, 20)]}, sort_each=True)
    # ratings was read up to 5; a fetch answer processed at 15 ms showed it caught up: the play read at 10 ms
    # can't have a rating still coming that is stamped before it, the one read at 20 ms can.
    taken = take_in_time_order(held, RANK, {ratings: Bound(5.0, 15.0)})
    assert [r.timestamp for r in taken] == [7.0]
    waiting = held[plays][0].record
    # Nothing new to read for a while: a caught-up partition holds nothing back; one with more to read does.
    assert take_in_time_order(held, RANK, {ratings: Bound(5.0)}, waited=True) == []
    assert take_in_time_order(held, RANK, {ratings: Bound(5.0, 15.0)}, waited=True) == [waiting]


# -- the hold ---------------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hold_of(stamps: dict[TP, list[int]], clock: Clock, unordered: frozenset[str] = frozenset()) -> TimeOrderedHold[Rec]:
    hold: TimeOrderedHold[Rec] = TimeOrderedHold(
        dict(RANK, catalog=3), unordered, max_batch=100, order_wait_s=0.25, clock=clock
    )
    for (topic, partition), times in stamps.items():
        for offset, ts in enumerate(times):
            hold.add(Rec(topic, partition, offset, float(ts)), read_ms=0)
    hold.after_read(sum(map(len, stamps.values())))
    return hold


def test_a_long_hold_goes_in_time_order_once_it_can(caplog: pytest.LogCaptureFixture) -> None:
    # A backlog read one partition after another: by the time the last is read, the stall timer has run out;
    # the records must still go in time order (no forced release).
    clock = Clock()
    hold = hold_of({("ratings", 0): [5, 9]}, clock)
    assert hold.release({("ratings", 0): -math.inf, ("plays", 0): -math.inf}) == []  # plays not read at all
    clock.now += 10 * HOLD_MAX_S
    hold.add(Rec("plays", 0, 0, 1.0), 0)
    hold.add(Rec("plays", 0, 1, 7.0), 0)
    out = hold.release({("ratings", 0): -math.inf, ("plays", 0): -math.inf})
    assert [(r.topic, r.timestamp) for r in out] == [("plays", 1.0), ("ratings", 5.0), ("plays", 7.0)]  # 9 waits
    assert len(hold) == 1 and "without waiting" not in caplog.text


def test_a_stalled_hold_is_released_anyway_and_unordered_topics_never_wait(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    hold = hold_of({("ratings", 0): [5], ("plays", 0): [6], ("catalog", 0): [99]}, clock, frozenset({"catalog"}))
    blocked = {("ratings", 0): -math.inf, ("plays", 0): -math.inf, ("searches", 0): -math.inf}  # searches: unread
    assert [r.topic for r in hold.release(blocked)] == ["catalog"]  # unordered: as read; the rest waits
    clock.now += HOLD_MAX_S / 2
    assert hold.release(blocked) == []
    clock.now += HOLD_MAX_S
    assert [r.timestamp for r in hold.release(blocked)] == [5.0, 6.0]  # in merged order
    assert "without waiting for the order across partitions (stalled)" in caplog.text
    assert not hold.holding


def test_quiet_reads_let_a_caught_up_partition_stop_holding_back() -> None:
    clock = Clock()
    hold = hold_of({("plays", 0): [7]}, clock)
    # ratings never read, but a fetch answer at 1 ms (after the play was read at 0 ms) showed it caught up.
    assert [r.timestamp for r in hold.release({("ratings", 0): 1.0})] == [7.0]
    caught_up = {("ratings", 0): 5.0}  # an answer before the next play was read (at 10 ms): it must wait
    hold.add(Rec("plays", 0, 1, 8.0), read_ms=10)
    assert hold.release(caught_up) == []
    hold.after_read(0)  # nothing new ...
    clock.now += 0.1
    assert hold.release(caught_up) == []
    clock.now += 0.2  # ... for longer than order_wait_s
    assert [r.timestamp for r in hold.release(caught_up)] == [8.0]


def test_take_all_empties_the_hold_in_read_order() -> None:
    hold = hold_of({("ratings", 0): [5, 6], ("plays", 1): [1], ("catalog", 0): [3]}, Clock(), frozenset({"catalog"}))
    assert [(r.topic, r.timestamp) for r in hold.take_all()] == [
        ("catalog", 3.0),
        ("ratings", 5.0),
        ("ratings", 6.0),
        ("plays", 1.0),
    ]
    assert len(hold) == 0 and not hold.holding and hold.release({("plays", 1): -math.inf}) == []
