"""PartitionProgress: the verdict behind /ready and streamrec_partition_stuck, from (partition, position,
high-water) samples at given times."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrec.streams.worker.progress import PartitionProgress, PartitionSample, Readiness

WINDOW = 60.0


def sample(position: int, highwater: int | None, partition: int = 0, topic: str = "ratings") -> PartitionSample:
    return PartitionSample(topic, partition, position, highwater)


def states(readiness: Readiness) -> dict[tuple[str, int], str]:
    return {(p.topic, p.partition): p.state for p in readiness.partitions}


def test_caught_up_partitions_are_ready_however_long_nothing_arrives() -> None:
    tracker = PartitionProgress(WINDOW)
    for now in (0.0, 100.0, 1000.0):
        verdict = tracker.observe(now, [sample(10, 10), sample(0, 0, partition=1)])
        assert verdict.ready and set(states(verdict).values()) == {"caught_up"}
        assert [p.lag for p in verdict.partitions] == [0, 0]


def test_lag_without_movement_is_stuck_only_after_the_window() -> None:
    tracker = PartitionProgress(WINDOW)
    assert states(tracker.observe(0.0, [sample(5, 20)])) == {("ratings", 0): "progressing"}
    assert tracker.observe(WINDOW - 1, [sample(5, 20)]).ready
    verdict = tracker.observe(WINDOW, [sample(5, 25)])
    assert not verdict.ready
    (status,) = verdict.partitions
    assert status.stuck and status.lag == 20 and status.since_progress_s == WINDOW


def test_a_moving_position_is_progress_even_while_the_lag_stays() -> None:
    tracker = PartitionProgress(WINDOW)
    for step in range(10):
        now = step * WINDOW / 2
        verdict = tracker.observe(now, [sample(100 * step, 100 * step + 500)])
        assert verdict.ready and verdict.partitions[0].state == "progressing"
        assert verdict.partitions[0].since_progress_s == 0.0


def test_a_stuck_partition_recovers_when_it_moves_or_catches_up() -> None:
    tracker = PartitionProgress(WINDOW)
    tracker.observe(0.0, [sample(5, 20), sample(7, 9, partition=1)])
    assert states(tracker.observe(WINDOW * 2, [sample(5, 20), sample(7, 9, partition=1)])) == {
        ("ratings", 0): "stuck",
        ("ratings", 1): "stuck",
    }
    verdict = tracker.observe(WINDOW * 2 + 1, [sample(6, 20), sample(9, 9, partition=1)])
    assert verdict.ready
    assert states(verdict) == {("ratings", 0): "progressing", ("ratings", 1): "caught_up"}


def test_unknown_high_water_is_never_stuck() -> None:
    tracker = PartitionProgress(WINDOW)
    tracker.observe(0.0, [sample(0, None)])
    verdict = tracker.observe(WINDOW * 10, [sample(0, None)])
    assert verdict.ready and verdict.partitions[0].state == "unknown" and verdict.partitions[0].lag is None


def test_a_partition_assigned_again_gets_a_new_window() -> None:
    tracker = PartitionProgress(WINDOW)
    tracker.observe(0.0, [sample(5, 20)])
    tracker.observe(10.0, [])  # revoked
    assert tracker.observe(10.0 + WINDOW - 1, [sample(5, 20)]).ready
    assert not tracker.observe(10.0 + WINDOW * 2, [sample(5, 20)]).ready


def test_reset_forgets_every_clock() -> None:
    tracker = PartitionProgress(WINDOW)
    tracker.observe(0.0, [sample(5, 20)])
    assert tracker.reset() == Readiness((), ()) == tracker.readiness
    assert tracker.observe(WINDOW * 1.5, [sample(5, 20)]).ready


def test_a_partition_reported_twice_is_not_ready() -> None:
    tracker = PartitionProgress(WINDOW)
    verdict = tracker.observe(0.0, [sample(0, 0), sample(0, 0, partition=1), sample(0, 0)])
    assert not verdict.ready
    assert verdict.assigned_twice == (("ratings", 0),)
    assert [(p.topic, p.partition) for p in verdict.partitions] == [("ratings", 0), ("ratings", 1)]
    assert tracker.observe(1.0, [sample(0, 0), sample(0, 0, partition=1)]).ready


def test_the_same_number_on_two_topics_is_two_partitions() -> None:
    verdict = PartitionProgress(WINDOW).observe(0.0, [sample(0, 0, topic="ratings"), sample(0, 0, topic="plays")])
    assert verdict.ready and verdict.assigned_twice == ()


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PartitionProgress(0.0)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50)), max_size=40))
def test_stuck_means_lag_and_no_move_for_the_whole_window(steps: list[tuple[int, int]]) -> None:
    """Against a direct reading of the rule: one partition observed every 10 s with random moves."""
    tracker = PartitionProgress(WINDOW)
    position, last_progress = 0, 0.0
    for i, (move, backlog) in enumerate(steps):
        now = 10.0 * i
        position += move if i else 0
        if i == 0 or move or backlog == 0:
            last_progress = now
        (status,) = tracker.observe(now, [sample(position, position + backlog)]).partitions
        assert status.stuck == (backlog > 0 and now - last_progress >= WINDOW)
        assert status.since_progress_s == now - last_progress
