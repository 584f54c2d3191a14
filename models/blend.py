"""The score's blend weights, learnt online from the stream: every first consumption is feedback on the list the
viewer held before it.

The score weighs co-occurrence with the recent history, the profile embedding, popularity and recency (views
decayed with time). How much each should count differs from one catalog to another (films: who watched X also
watched Y; short videos: what is fresh now), so those weights are not constants. The learner follows a grid of
candidate blends (`expert_weights`: the personal signals at the defaults' weights or off, popularity and recency
each from 0 to 4) and, at each consumption, credits every blend that would have ranked the consumed item among its
first `HIT_RANK` against the strongest contenders (`StreamRecommender._feedback`). The blend used is the one credited
most so far (follow the leader; ties go to the blend nearest the defaults'). This is what the evaluation measures
(HR@k of the held list), so nothing is assumed about a dataset.

The embedding's weight is not spanned by the grid (only switched off with the co-occurrence): its strongest
contenders would take a pass over the whole catalog per consumption, and without them a blend weighing it is
credited for what every item of the viewer's genres shares.

The credit is a sum of integers: it does not depend on the order feedback comes in, so every worker folding the
item-signal log holds the same weights, and a worker restarted refolds them from the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

COMPONENTS = ("cooccurrence", "embedding", "popularity", "recency")
LEVELS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0)  # popularity and recency weights the grid spans
PERSONAL = (1.0, 0.0)  # the personal signals (co-occurrence, embedding) at the defaults' weights, or off
HIT_RANK = 10  # a blend is credited when it would have ranked the consumed item this high


@dataclass(frozen=True, slots=True)
class BlendPoint:
    updates: int
    weights: tuple[float, ...]


def expert_weights(w_cooccurrence: float, w_embedding: float) -> npt.NDArray[np.float64]:
    """The candidate blends, one column each: (components x experts)."""
    grid = [(s, p, r) for s in PERSONAL for p in LEVELS for r in LEVELS]
    return np.array([[s * w_cooccurrence, s * w_embedding, p, r] for s, p, r in grid], dtype=np.float64).T


class Blend:
    """The weights of `COMPONENTS`: the candidate blend credited most by the feedback so far."""

    def __init__(self, prior: Sequence[float], *, sample_every: int = 1000) -> None:
        if len(prior) != len(COMPONENTS) or min(prior) < 0:
            raise ValueError(f"the prior needs {len(COMPONENTS)} non-negative weights")
        self.prior = tuple(float(w) for w in prior)
        self.experts = expert_weights(self.prior[0], self.prior[1])
        self.weighs_embedding = bool(self.experts[1].any())  # whether the embedding's values need computing at all
        # Ties go to the blend nearest the prior (summed differences of the weights), then to the grid's order.
        distance = np.abs(self.experts - np.array(self.prior)[:, None]).sum(axis=0)
        self._tie_order = np.argsort(distance, kind="stable")
        self.credit = np.zeros(self.experts.shape[1], dtype=np.int64)
        self.weights = self.prior
        self.leader = -1  # the grid's blend in use (-1: the prior, until feedback credits one)
        self.updates = 0
        self.version = 0  # bumped whenever the weights change (the ranker's caches key on it)
        self.sample_every = sample_every
        self.history: list[BlendPoint] = [BlendPoint(0, self.weights)]

    def update(self, credited: Sequence[int]) -> None:
        """One consumption's feedback: the blends (indices into the grid) that would have ranked it high enough."""
        if not credited or max(credited) >= self.credit.shape[0] or min(credited) < 0:
            return  # no credit, or feedback from another grid: not comparable
        self.credit[np.asarray(credited, dtype=np.intp)] += 1
        self.updates += 1
        leader = int(self._tie_order[int(np.argmax(self.credit[self._tie_order]))])
        if leader != self.leader:
            self.leader = leader
            weights = tuple(float(w) for w in self.experts[:, leader])
            if weights != self.weights:
                self.weights = weights
                self.version += 1
        if self.updates % self.sample_every == 0:
            self.history.append(BlendPoint(self.updates, self.weights))

    def trajectory(self) -> list[BlendPoint]:
        """The weights sampled so far, and the current ones."""
        last = self.history[-1]
        return self.history if last.updates == self.updates else [*self.history, BlendPoint(self.updates, self.weights)]

    def hits(self, consumed: npt.NDArray[np.float64], contenders: npt.NDArray[np.float64]) -> tuple[int, ...]:
        """The blends (indices into the grid) under which the consumed item's components (one row) score above all
        but fewer than `HIT_RANK` of the contenders' (a row each); ties count against the item."""
        mine = consumed @ self.experts
        if contenders.shape[0] < HIT_RANK:
            return tuple(range(mine.shape[0]))
        beaten = (contenders @ self.experts >= mine).sum(axis=0)
        return tuple(np.flatnonzero(beaten < HIT_RANK).tolist())
