"""The score's blend weights, learnt online from the stream: every first consumption is feedback on the list the
viewer held before it.

The score weighs co-occurrence with the recent history, the profile embedding, popularity and recency (views
decayed with time). How much the item-side signals (popularity, recency) should count against the personal ones
differs from one catalog to another (films: who watched X also watched Y; short videos: what is fresh now), so
those two weights are not constants. The learner follows a grid of candidate blends (`EXPERTS`: the defaults'
co-occurrence and embedding weights, popularity and recency each from 0 to 4) and, at each consumption, credits
every blend that would have ranked the consumed item among its first `HIT_RANK` against the strongest contenders
(`StreamRecommender._feedback`). The blend used is the one credited most so far (follow the leader; ties go to the
defaults'). This is what the evaluation measures (HR@k of the held list), so nothing is assumed about a
dataset.

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
HIT_RANK = 10  # a blend is credited when it would have ranked the consumed item this high


@dataclass(frozen=True, slots=True)
class BlendPoint:
    updates: int
    weights: tuple[float, ...]


def expert_weights(w_cooccurrence: float, w_embedding: float) -> npt.NDArray[np.float64]:
    """The candidate blends, one column each: (components x experts)."""
    pairs = [(p, r) for p in LEVELS for r in LEVELS]
    return np.array([[w_cooccurrence, w_embedding, p, r] for p, r in pairs], dtype=np.float64).T


class Blend:
    """The weights of `COMPONENTS`: the candidate blend credited most by the feedback so far."""

    def __init__(self, prior: Sequence[float], *, sample_every: int = 1000) -> None:
        if len(prior) != len(COMPONENTS) or min(prior) < 0:
            raise ValueError(f"the prior needs {len(COMPONENTS)} non-negative weights")
        self.prior = tuple(float(w) for w in prior)
        self.experts = expert_weights(self.prior[0], self.prior[1])
        # Ties go to the blend nearest the prior (its popularity and recency weights), then to the grid's order.
        distance = np.abs(self.experts[2] - self.prior[2]) + np.abs(self.experts[3] - self.prior[3])
        self._tie_order = np.argsort(distance, kind="stable")
        self.credit = np.zeros(self.experts.shape[1], dtype=np.int64)
        self.weights = self.prior
        self.updates = 0
        self.version = 0  # bumped whenever the weights change (the ranker's caches key on it)
        self.sample_every = sample_every
        self.history: list[BlendPoint] = [BlendPoint(0, self.weights)]

    def update(self, hits: Sequence[int]) -> None:
        """One consumption's feedback: per expert, 1 if it would have ranked the consumed item high enough."""
        if len(hits) != self.credit.shape[0]:
            return  # feedback from another grid: not comparable
        self.credit += np.asarray(hits, dtype=np.int64)
        self.updates += 1
        ordered = self.credit[self._tie_order]
        leader = int(self._tie_order[int(np.argmax(ordered))])
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
        """Per expert, 1 if the consumed item's components (one row) score above all but fewer than `HIT_RANK` of
        the contenders' (a row each) under its weights; ties count against the item."""
        mine = consumed @ self.experts
        beaten = (contenders @ self.experts >= mine).sum(axis=0) if contenders.shape[0] else np.zeros_like(mine)
        return tuple((beaten < HIT_RANK).astype(np.int64).tolist())
