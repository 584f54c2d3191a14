"""Sequential item-kNN baseline: "viewers who watched your last items watched these next".

When a viewer interacts with b, every a among their previous `window` items gets count(a -> b) += 1/d, d the
distance (1 for the item just before b). A candidate b scores sum over the viewer's last `window` items a, the
most recent at d = 1, of (1/d) * count(a -> b) / pop(a)^0.5 (pop: a's interactions), so a blockbuster's
followers do not swamp the list. Counts are kept per source item as sparse rows, updated on every interaction.
The reason names the viewer's item that contributed most to the score; items no recent item leads to are
topped up by popularity.
"""

from __future__ import annotations

from array import array

import numpy as np

from streamrec.models.base import Recommendation
from streamrec.models.baselines import top_n_indices
from streamrec.models.interaction_baseline import InteractionBaseline, Scored, ViewerItems

__all__ = ["SequentialItemKNN"]


class _Followers:
    """count(a -> b) for one source item a: the followers b and their distance-weighted counts."""

    __slots__ = ("at", "items", "weights")

    def __init__(self) -> None:
        self.at: dict[int, int] = {}  # follower -> its position in `items` / `weights`
        self.items = array("q")
        self.weights = array("d")

    def add(self, follower: int, weight: float) -> None:
        at = self.at.get(follower)
        if at is None:
            self.at[follower] = len(self.items)
            self.items.append(follower)
            self.weights.append(weight)
        else:
            self.weights[at] += weight

    def get(self, follower: int) -> float:
        at = self.at.get(follower)
        return 0.0 if at is None else self.weights[at]


class SequentialItemKNN(InteractionBaseline):
    """Item-to-item transitions within each viewer's last `window` items, learnt one interaction at a time."""

    name = "item-knn"

    def __init__(self, window: int = 5, popularity_exponent: float = 0.5) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        super().__init__()
        self.window = window
        self.popularity_exponent = popularity_exponent
        self._followers: list[_Followers] = []

    def _on_new_item(self, idx: int) -> None:
        self._followers.append(_Followers())

    def _on_interaction(self, viewer: ViewerItems, idx: int, ts: int) -> None:
        order = viewer.order  # idx is last
        start = max(len(order) - 1 - self.window, 0)
        for distance, source in enumerate(reversed(order[start:-1]), start=1):
            self._followers[source].add(idx, 1.0 / distance)

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        viewer = self._viewers.get(user_id)
        if viewer is None or n <= 0:
            return self.top_up(user_id, [], n)
        # (source item, its weight (1/d) / pop^exponent), most recent first
        recent = viewer.order[-self.window :][::-1]
        sources = [(a, (1.0 / d) / self.counts[a] ** self.popularity_exponent) for d, a in enumerate(recent, start=1)]
        scores = np.zeros(self.n_items, dtype=np.float64)
        for a, weight in sources:
            followers = self._followers[a]
            if followers.items:
                items = np.frombuffer(followers.items, dtype=np.int64)  # views, released on return
                scores[items] += np.frombuffer(followers.weights, dtype=np.float64) * weight
        top = top_n_indices(scores, viewer.as_array(), n)
        scored: list[Scored] = []
        for b, score in zip(top.tolist(), scores[top].tolist(), strict=True):
            if score <= 0.0:
                break  # nothing the viewer watched recently leads here: popularity tops the list up
            # the recent item contributing most (ties: the more recent one)
            best, best_part = -1, 0.0
            for a, weight in sources:
                part = weight * self._followers[a].get(b)
                if part > best_part:
                    best, best_part = a, part
            scored.append((b, score, self.watched_reason(best)))
        return self.top_up(user_id, scored, n)
