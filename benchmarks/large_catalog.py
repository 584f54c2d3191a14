"""The large-catalog path on real interactions: quality against the exact path, and the recall of its candidates
against scoring every item.

Three streamrec systems learn the same stream in one prequential pass (`models.evaluate.prequential`): the exact
path (dense co-occurrence, every item scored), the large-catalog path forced on (sparse co-occurrence, candidate
ranking: what the worker runs past `exact_max_items`) and the large-catalog path scoring every item (the same
state as the large path: the reference its candidates are measured against). At each evaluation point the held
lists are compared: recall@N of the large path's list against each reference. At every `sample_every`-th point,
each candidate source's rows for the viewer (`CandidateRanker.sources`) are checked against the list that
scoring every item gives at that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from streamrec.models.candidate_ranking import CandidateRanker
from streamrec.models.evaluate import EvalPoint, ProgressInfo, prequential
from streamrec.models.events import CatalogItem, UserEvent
from streamrec.models.params import StreamParams
from streamrec.models.profile import EncodedProfiles
from streamrec.models.recommender import StreamRecommender

EXACT, LARGE, EVERY = "exact path", "large path", "large path, every item scored"
SOURCES = ("popular", "co-watched", "co-watched, all", "nearest", "searched")


def systems(params: StreamParams, n_items: int) -> dict[str, StreamRecommender]:
    """The three systems compared, with the evaluator's encoded profiles (as the worker's table keeps them)."""
    exact_params = replace(params, exact_max_items=max(params.exact_max_items, n_items))
    exact = StreamRecommender(exact_params, profiles=EncodedProfiles())
    large = StreamRecommender(replace(params, exact_max_items=0), profiles=EncodedProfiles())
    large.use_candidate_ranking()
    every = StreamRecommender(replace(params, exact_max_items=0), profiles=EncodedProfiles())
    every.use_candidate_ranking(exhaustive=True)
    return {EXACT: exact, LARGE: large, EVERY: every}


class _Recall:
    """Recall of the large path's held lists against the references', point by point, and of its sources."""

    def __init__(self, compared: dict[str, StreamRecommender], n: int, sample_every: int) -> None:
        self.compared = compared
        self.n = n
        self.sample_every = sample_every
        self.points = 0
        self.lists: dict[str, tuple[str, ...]] = {}
        self.recall: dict[str, list[float]] = {EXACT: [], EVERY: []}
        self.identical: dict[str, int] = {EXACT: 0, EVERY: 0}
        self.sources: dict[str, list[float]] = {name: [] for name in (*SOURCES, "all sources")}
        self.candidates: list[int] = []

    def __call__(self, system: str, point: EvalPoint) -> None:
        self.lists[system] = point.items[: self.n]
        if len(self.lists) < len(self.compared):
            return
        lists, self.lists = self.lists, {}
        self.points += 1
        large = set(lists[LARGE])
        for reference in (EXACT, EVERY):
            expected = lists[reference]
            if expected:
                self.recall[reference].append(len(large & set(expected)) / len(expected))
            self.identical[reference] += lists[LARGE] == expected
        if self.points % self.sample_every == 0:
            self._sample(point.user_id)

    def _sample(self, user_id: str) -> None:
        """Each source's rows now against the list scoring every item gives now (both systems learnt alike)."""
        every, large = self.compared[EVERY], self.compared[LARGE]
        expected = [r.item_id for r in every.rank(user_id, self.n)]
        if not expected:
            return
        ranker = large._ranker
        assert isinstance(ranker, CandidateRanker)
        found = ranker.sources(large.profile(user_id))
        row_of = large.catalog.row_of
        wanted = np.array([row_of[item] for item in expected], dtype=np.int64)
        union = np.zeros(0, dtype=np.int64)
        for name in SOURCES:
            rows = found.get(name, np.zeros(0, dtype=np.int64))
            self.sources[name].append(float(np.isin(wanted, rows).mean()))
            if name != "co-watched, all":
                union = np.union1d(union, rows)
        self.sources["all sources"].append(float(np.isin(wanted, union).mean()))
        self.candidates.append(int(union.shape[0]))

    def summary(self) -> dict[str, Any]:
        def mean(values: Sequence[float]) -> float | None:
            return float(np.mean(values)) if values else None

        return {
            "points": self.points,
            f"recall_at_{self.n}_vs_exact": mean(self.recall[EXACT]),
            f"recall_at_{self.n}_vs_every_item": mean(self.recall[EVERY]),
            "identical_vs_exact": self.identical[EXACT] / self.points if self.points else None,
            "identical_vs_every_item": self.identical[EVERY] / self.points if self.points else None,
            "sampled_points": len(self.candidates),
            "source_recall": {name: mean(values) for name, values in self.sources.items()},
            "mean_candidates": mean(self.candidates),
        }


def run_large_catalog(
    name: str,
    events: Sequence[UserEvent | CatalogItem],
    items: Sequence[CatalogItem],
    params: StreamParams,
    *,
    k: int = 10,
    sample_every: int = 20,
    on_progress: Callable[[ProgressInfo], None] | None = None,
) -> dict[str, Any]:
    """One prequential pass of the three systems over `events`: HR@k and CPU seconds of each, the recall of the
    large path's lists against the other two, and each candidate source's recall (every `sample_every` points)."""
    compared = systems(params, len(items))
    recall = _Recall(compared, params.top_n, sample_every)
    results = prequential(
        events, items, dict(compared), k, on_progress, list_length=params.top_n, on_point=recall
    )  # fmt: skip
    sparse = compared[LARGE].item_side.cooccurrence
    return {
        "dataset": name,
        "events": len(events),
        "items": len(items),
        "k": k,
        "top_n": params.top_n,
        "systems": {
            system: {"hr": r.hr, "ndcg": r.ndcg, "cpu_seconds": r.cpu_seconds, "lists": r.lists}
            for system, r in results.items()
        },
        "cooccurrence": {
            "pairs": getattr(sparse, "pairs", None),
            "slots": getattr(sparse, "slots", None),
            "exact": getattr(sparse, "exact", None),
        },
        "params": {
            "cooccurrence_slots": params.cooccurrence_slots,
            "cowatched_candidates": params.cowatched_candidates,
            "ann_candidates": params.ann_candidates,
            "ann_nprobe": params.ann_nprobe,
            "popular_candidates": params.popular_candidates,
            "query_candidates": params.query_candidates,
            "candidates": params.candidates,
        },
        **recall.summary(),
    }
