"""Whether each assigned partition is making progress (`PartitionProgress`): the decision behind `/ready` and the
`streamrec_partition_stuck` metric, fed with what the consumer knows (no Kafka here, so it is tested alone).

A partition makes progress when its lag is zero or its position moved within the window (`stuck_after_s`); it is
stuck when it has had records left to handle (lag > 0) and its position has not moved for that long. A partition
handled as fast as it fills, its lag steady, is progressing: a backlog that grows is the consumer-lag alert's job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

State = Literal["caught_up", "progressing", "stuck", "unknown"]
Key = tuple[str, int]


@dataclass(frozen=True, slots=True)
class PartitionSample:
    """One assigned partition as the consumer sees it; `position`: the next offset to handle, `highwater`: the
    high watermark of its last fetch (None: not fetched yet, so its lag is unknown)."""

    topic: str
    partition: int
    position: int
    highwater: int | None


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    topic: str
    partition: int
    lag: int | None
    state: State
    since_progress_s: float  # since the position last moved or the lag was last zero (0 when caught up)

    @property
    def stuck(self) -> bool:
        return self.state == "stuck"


@dataclass(frozen=True, slots=True)
class Readiness:
    partitions: tuple[PartitionStatus, ...]
    assigned_twice: tuple[Key, ...]  # partitions reported more than once in one observation

    @property
    def ready(self) -> bool:
        return not self.assigned_twice and not any(p.stuck for p in self.partitions)


@dataclass(slots=True)
class _Track:
    position: int
    progress_at: float  # when it last made progress (or was first seen)


class PartitionProgress:
    """Call `observe` with every assigned partition at a steady interval; `readiness` is the last verdict.

    A partition seen for the first time (or again after it was unassigned) starts its clock then, so a new
    assignment is never stuck before it had `stuck_after_s` to move. `reset()` forgets every partition (a
    rebalance or a table recovery: the partitions are paused on purpose)."""

    def __init__(self, stuck_after_s: float) -> None:
        if stuck_after_s <= 0:
            raise ValueError("stuck_after_s must be positive")
        self.stuck_after_s = stuck_after_s
        self._tracks: dict[Key, _Track] = {}
        self.readiness = Readiness((), ())

    def reset(self) -> Readiness:
        self._tracks.clear()
        self.readiness = Readiness((), ())
        return self.readiness

    def observe(self, now: float, samples: Iterable[PartitionSample]) -> Readiness:
        samples = list(samples)
        counts = Counter((s.topic, s.partition) for s in samples)
        statuses: dict[Key, PartitionStatus] = {}
        for sample in samples:
            key = (sample.topic, sample.partition)
            if key not in statuses:
                statuses[key] = self._judge(now, key, sample)
        for gone in self._tracks.keys() - statuses.keys():
            del self._tracks[gone]
        self.readiness = Readiness(
            partitions=tuple(statuses[key] for key in sorted(statuses)),
            assigned_twice=tuple(sorted(key for key, n in counts.items() if n > 1)),
        )
        return self.readiness

    def _judge(self, now: float, key: Key, sample: PartitionSample) -> PartitionStatus:
        track = self._tracks.get(key)
        lag = None if sample.highwater is None else max(sample.highwater - sample.position, 0)
        if track is None:
            track = self._tracks[key] = _Track(sample.position, now)
        elif sample.position != track.position or lag == 0:
            track.position, track.progress_at = sample.position, now
        since = now - track.progress_at
        state: State
        if lag is None:
            state = "unknown"
        elif lag == 0:
            state = "caught_up"
        elif since >= self.stuck_after_s:
            state = "stuck"
        else:
            state = "progressing"
        return PartitionStatus(sample.topic, sample.partition, lag, state, since)
