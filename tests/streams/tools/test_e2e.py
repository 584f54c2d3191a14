"""`streamrec evaluate --e2e` on a tiny synthetic dataset: in lockstep mode the end-to-end path (a fresh embedded
broker, a real worker subprocess, lists read back from `recommendations`) agrees exactly with the fast path:
the same HR and NDCG, and the same held list at every evaluation point. No timing assertions."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

import pytest

from streamrec.models.dataset import Dataset
from streamrec.models.events import CatalogItem, Rating
from streamrec.models.profile import EncodedProfiles
from streamrec.models.recommender import StreamRecommender
from streamrec.models.simulate import event_stream
from streamrec.streams.settings import Settings
from streamrec.streams.tools.e2e import E2EOptions, compare, fast_catalog, list_from_json, run_e2e

pytestmark = pytest.mark.kafka

GENRES = ("Drama", "Comedy", "Sci-Fi", "Thriller")
ITEMS = tuple(
    CatalogItem(
        item_id=f"t{n:02d}",
        title=f"Title {word}",
        genres=(GENRES[n % 4],) if n % 3 else (GENRES[n % 4], GENRES[(n + 1) % 4]),
        creators=(f"creator {n % 5}",),
        duration_seconds=3000 + 60 * n,
        year=2000 + n,
    )
    for n, word in enumerate("amber birch cedar delta ember fjord grove heron iris juniper kestrel lumen".split())
)


def tiny_dataset() -> Dataset:
    """4 users x 7 ratings over 12 overlapping items, interleaved in time (28 ratings; with plays, 56 events)."""
    ratings = []
    for step in range(7):
        for u in range(4):
            n = step * 4 + u
            item = ITEMS[(u * 3 + step * (1 + u % 2)) % len(ITEMS)].item_id
            ratings.append(Rating(f"r{n}", f"user{u}", item, float(1 + (n * 7) % 5), 1_000_000 + 60_000 * n))
    return Dataset("tiny", ITEMS, tuple(ratings))


def test_lockstep_e2e_agrees_exactly_with_the_fast_path(tmp_path: Path) -> None:
    dataset = tiny_dataset()
    events = event_stream(dataset, plays=True, seed=0)
    assert 40 <= len(events) <= 60
    base = Settings(_env_file=None, cache_dir=tmp_path / "cache")
    weight, n_list, k = 0.6, 6, 3
    options = E2EOptions(list_length=n_list, calibration_weight=weight, lockstep=True, keep_dir=tmp_path / "run")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # a private loop: the test's stays untouched
        run = pool.submit(asyncio.run, run_e2e(base, dataset.items, events, options)).result()
    assert run.events_sent == len(events)
    assert sorted(run.catalog_order) == sorted(item.item_id for item in ITEMS)
    system = StreamRecommender(base.stream_params(calibration_weight=weight, top_n=n_list), profiles=EncodedProfiles())
    result = compare(dataset.items, events, run, system, name="streamrec", k=k, list_length=n_list)
    assert result.missing_lists == 0
    assert result.new_user_points == 4
    assert result.points > 20
    assert result.lists_identical == result.points, f"first difference at {result.first_difference}"
    assert result.e2e.hr == result.fast.hr
    assert result.e2e.ndcg == result.fast.ndcg
    assert result.e2e.mrr == result.fast.mrr
    assert result.e2e.reasons_true == result.fast.reasons_true


def test_list_from_json_restores_reasons_and_evidence() -> None:
    value = {
        "items": [
            {
                "item_id": "t01",
                "rank": 1,
                "score": 0.5,
                "reasons": [{"kind": "watched", "text": "Because you watched X", "item_id": "t02"}],
            }
        ]
    }
    (rec,) = list_from_json(value)
    assert (rec.item_id, rec.rank, rec.score) == ("t01", 1, 0.5)
    assert rec.reasons[0].kind == "watched"
    assert dict(rec.reasons[0].evidence) == {"item_id": "t02"}


def test_fast_catalog_follows_the_workers_order() -> None:
    order = [item.item_id for item in reversed(ITEMS)]
    assert [item.item_id for item in fast_catalog(ITEMS, order)] == order
    assert fast_catalog(ITEMS, [])[0] == ITEMS[0]
