"""Candidate ranking (what the worker runs past `exact_max_items`) against scoring every item, compared on the
lists themselves: recall, identical lists and µs per list."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from streamrec.benchmarks.workloads import CatalogSpec, EventGenerator
from streamrec.models.candidate_ranking import CandidateRanker
from streamrec.models.events import parse_user_event
from streamrec.models.recommender import StreamParams, StreamRecommender


def run_candidate_ranking(
    spec: CatalogSpec,
    *,
    n_events: int = 100_000,
    n_users: int = 20_000,
    n_lists: int = 500,
    seed: int = 0,
    params: StreamParams | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One recommender learns a seeded event stream over `spec`; the same users are then ranked by its
    `CandidateRanker` and by the same ranker with every item a candidate (`exhaustive=True`: the exact answer on
    the same state). Recall@N is the share of each exhaustive list's items the candidate list also holds; timings
    are per list, warm (each ranker ranks the users once before it is timed), one thread, side by side."""
    from threadpoolctl import threadpool_limits

    def note(text: str) -> None:
        if on_progress is not None:
            on_progress(text)

    params = params or StreamParams()
    system = StreamRecommender(params)
    note(f"loading {spec.size:,} items")
    for item in spec.items:
        system.add_item(item)
    if not isinstance(system._ranker, CandidateRanker):
        return {"status": "skipped", "reason": f"{spec.size:,} items <= exact_max_items {params.exact_max_items:,}"}
    note(f"learning {n_events:,} events")
    now = int(time.time() * 1000)
    for record in EventGenerator(spec.items, n_users=n_users, seed=seed).events(n_events, base_ts_ms=now - n_events):
        event = parse_user_event(
            record.topic,
            record.value,
            key=record.key.encode(),
            record_ts_ms=now,
            now_ms=now,
            item_exists=lambda _: True,
        )
        system.learn_one(event)
    users = sorted(system.profiles)[:n_lists]
    profiles = [system.profiles[user] for user in users]
    candidate = system._ranker
    exhaustive = CandidateRanker(system.item_side, params, exhaustive=True)  # shares the item side and its index
    timings: dict[str, float] = {}
    lists: dict[str, list[list[str]]] = {}
    with threadpool_limits(limits=1):
        for name, ranker in (("candidates", candidate), ("exhaustive", exhaustive)):
            note(f"{name}: warm-up")
            ranker.rank_many(profiles, params.top_n)
            note(f"{name}: timing {len(profiles)} lists")
            started = time.perf_counter()
            ranked = ranker.rank_many(profiles, params.top_n)
            timings[name] = (time.perf_counter() - started) / len(profiles) * 1e6
            lists[name] = [[r.item_id for r in recs] for recs in ranked]
    recall = [
        len(set(fast) & set(exact)) / len(exact)
        for fast, exact in zip(lists["candidates"], lists["exhaustive"], strict=True)
        if exact
    ]
    same = sum(fast == exact for fast, exact in zip(lists["candidates"], lists["exhaustive"], strict=True))
    return {
        "status": "ok",
        "catalog": spec.name,
        "items": spec.size,
        "events": n_events,
        "users": n_users,
        "lists": len(profiles),
        "top_n": params.top_n,
        "recall_at_n": float(np.mean(recall)) if recall else None,
        "recall_p10": float(np.percentile(recall, 10)) if recall else None,
        "identical_lists": same,
        "us_per_list": timings["candidates"],
        "exhaustive_us_per_list": timings["exhaustive"],
        "speedup": timings["exhaustive"] / timings["candidates"],
        "params": {
            "cooccurrence_slots": params.cooccurrence_slots,
            "ann_candidates": params.ann_candidates,
            "ann_nprobe": params.ann_nprobe,
            "popular_candidates": params.popular_candidates,
            "query_candidates": params.query_candidates,
        },
    }
