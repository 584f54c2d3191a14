"""Ranking for large catalogs: scoring every item through the candidate path gives the dense ranker's lists,
scoring only the candidates loses little of them, the recommender switches by itself keeping what it learned,
and the ANN index follows the item vectors as they grow and change."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.benchmarks.workloads import EventGenerator, synthetic_catalog
from streamrec.models import candidate_ranking
from streamrec.models.base import Recommendation
from streamrec.models.candidate_ranking import CandidateRanker, _add_embedding, _embed_best, _seen_positions
from streamrec.models.candidate_ranking import _union as candidate_union
from streamrec.models.cooccurrence import Cooccurrence
from streamrec.models.events import CatalogItem, UserEvent, parse_user_event
from streamrec.models.item_index import ItemIndex
from streamrec.models.profile import UserProfile
from streamrec.models.ranking import Ranker
from streamrec.models.recommender import StreamParams, StreamRecommender
from streamrec.models.sparse_cooccurrence import SparseCooccurrence
from streamrec.models.top_k import best_first

BASE_TS = 1_700_000_000_000
N_ITEMS = 300
N_EVENTS = 3000
F32 = npt.NDArray[np.float32]


def parsed_events(items: tuple[CatalogItem, ...], n: int, *, n_users: int, seed: int = 0) -> list[UserEvent]:
    records = EventGenerator(items, n_users=n_users, seed=seed, id_prefix=f"t{seed}").events(n, base_ts_ms=BASE_TS)
    return [
        parse_user_event(
            r.topic,
            r.value,
            key=r.key.encode(),
            record_ts_ms=BASE_TS,
            now_ms=BASE_TS + 10**11,
            item_exists=lambda _: True,
        )
        for r in records
    ]


def system(
    items: tuple[CatalogItem, ...], events: list[UserEvent], params: StreamParams, exhaustive: bool | None
) -> StreamRecommender:
    """None: the dense system; True / False: switched to candidate ranking (scoring every item / candidates)."""
    rec = StreamRecommender(params)
    for item in items:
        rec.add_item(item)
    if exhaustive is not None:
        rec.use_candidate_ranking(exhaustive=exhaustive)
    for event in events:
        rec.learn_one(event)
    return rec


def ids(recs: list[Recommendation]) -> list[str]:
    return [r.item_id for r in recs]


@dataclass
class World:
    users: list[str]
    dense: StreamRecommender
    exhaustive: StreamRecommender
    candidates: StreamRecommender
    lists: dict[str, list[list[Recommendation]]]
    candidate_sizes: list[int]


@pytest.fixture(scope="module")
def world() -> World:
    items = synthetic_catalog(N_ITEMS)
    events = parsed_events(items, N_EVENTS, n_users=2000)
    # Few enough candidates that the candidate path is a real subset (the sparse counts are exact).
    params = StreamParams(ann_candidates=30, popular_candidates=30, query_candidates=30, ann_nprobe=8)
    dense = system(items, events, params, None)
    exhaustive = system(items, events, params, True)
    candidates = system(items, events, params, False)
    users = sorted(dense.profiles)
    lists: dict[str, list[list[Recommendation]]] = {}
    sizes: list[int] = []
    score = CandidateRanker._score

    def counting(self: CandidateRanker, *args: Any) -> Any:
        out = score(self, *args)
        if not self.exhaustive:
            sizes.append(int(out[1].shape[0]))
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CandidateRanker, "_score", counting)
        for name, rec in (("dense", dense), ("exhaustive", exhaustive), ("candidates", candidates)):
            profiles: list[UserProfile | None] = [rec.profiles[u] for u in users]
            lists[name] = rec.rank_many([*profiles, None])  # and a user with no profile yet
    return World(users, dense, exhaustive, candidates, lists, sizes)


# -- (a) exhaustive: the dense lists ---------------------------------------------------------------------------
def test_the_world_is_what_the_comparisons_need(world: World) -> None:
    assert isinstance(world.dense.cooccurrence, Cooccurrence)
    assert type(world.dense._ranker) is Ranker
    for rec, exhaustive in ((world.exhaustive, True), (world.candidates, False)):
        assert isinstance(rec.cooccurrence, SparseCooccurrence)
        assert isinstance(rec._ranker, CandidateRanker) and rec._ranker.exhaustive is exhaustive
    assert len(world.users) > 500
    assert all(len(lst) == world.dense.params.top_n for lst in world.lists["dense"])


def test_exhaustive_candidate_ranking_gives_the_dense_lists(world: World) -> None:
    dense, exhaustive = world.lists["dense"], world.lists["exhaustive"]
    differ = [u for u, (a, b) in enumerate(zip(dense, exhaustive, strict=True)) if ids(a) != ids(b)]
    assert differ == []


def test_exhaustive_candidate_ranking_gives_the_dense_lists_up_to_tied_scores(world: World) -> None:
    dense, exhaustive = world.lists["dense"], world.lists["exhaustive"]
    same = 0
    for a, b in zip(dense, exhaustive, strict=True):
        assert len(a) == len(b)
        if ids(a) == ids(b):
            same += 1
            assert [r.reasons for r in a] == [r.reasons for r in b]
            np.testing.assert_allclose([r.score for r in a], [r.score for r in b], rtol=0, atol=2e-6)  # rounded to 1e-6
            continue
        first = next(pos for pos, (x, y) in enumerate(zip(a, b, strict=True)) if x.item_id != y.item_id)
        assert ids(a)[:first] == ids(b)[:first]
        assert a[first].score == pytest.approx(b[first].score, abs=2e-6)  # a tie, broken the other way
    print(f"exhaustive == dense: {same} / {len(dense)} lists (the rest differ from a tie on)")
    assert same >= 0.95 * len(dense)  # ties at a list's edge are the exception


def tied_catalog(n_items: int) -> tuple[CatalogItem, ...]:
    """Items alike but for their id: titles of digits only (no title features), three genre mixes, no creators, so
    their content vectors, embedding terms and (seen alike often) scores tie by the dozen."""
    mixes = (("Drama",), ("Comedy",), ("Drama", "Comedy"))
    return tuple(CatalogItem(f"t{n:04d}", str(n), mixes[n % 3], (), 600, 2000) for n in range(n_items))


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([250, 400]))
def test_candidate_lists_are_the_every_item_lists_when_the_candidates_hold_its_pool(seed: int, n_items: int) -> None:
    """Ties broken by row on both paths: when a viewer's candidates hold every item of the pool the every-item
    path re-ranks (its best `candidates` by relevance), the candidate path publishes exactly its list, however
    many scores tie at the pool's edge."""
    items = tied_catalog(n_items)
    events = parsed_events(items, 1500, n_users=300, seed=seed)
    # Recency's decayed values rarely tie: without it (and the blend that would weigh it) scores tie by the dozen.
    limits = {"ann_candidates": 20, "popular_candidates": 20, "query_candidates": 20, "ann_nprobe": 4, "candidates": 60}
    params = StreamParams(**limits, w_recency=0.0, learn_blend=False)
    every, large = system(items, events, params, True), system(items, events, params, False)
    pools: list[tuple[F32, npt.NDArray[np.int64]]] = []
    sizes: list[int] = []
    score = CandidateRanker._score

    def pool(self: CandidateRanker, *args: Any) -> Any:
        out = score(self, *args)
        _, rows, scores = out
        assert np.array_equal(rows, np.arange(len(items)))  # every item is a candidate: positions are rows
        pools.append((scores.copy(), best_first(scores, params.candidates)))  # the pool `pick_lists` takes
        return out

    def union(parts: list[npt.NDArray[np.int64]], mark: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        rows = np.union1d(candidate_union(parts, mark), pools[-1][1])  # the pool added to what the sources hold
        sizes.append(rows.shape[0])
        return rows

    tied_edges = 0
    users = sorted(every.profiles)
    for user in users:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(CandidateRanker, "_score", pool)
            expected = every.rank_many([every.profiles[user]])
        scores, top = pools[-1]
        edge = scores[top[-1]]
        tied_edges += int(np.count_nonzero(scores == edge)) > int(np.count_nonzero(scores[top] == edge))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(candidate_ranking, "_union", union)
            assert large.rank_many([large.profiles[user]]) == expected, user
    assert len(sizes) == len(users) and np.mean(sizes) < 0.7 * len(items)  # the candidates are a real subset
    print(f"{tied_edges} of {len(users)} pools tie with items left out; candidates: {np.mean(sizes):.0f}")
    assert tied_edges >= 0.3 * len(users)  # items left out of the pool tie with its last one


def test_every_recommendation_has_reasons(world: World) -> None:
    for name in ("dense", "exhaustive", "candidates"):
        for lst in world.lists[name]:
            assert [r.rank for r in lst] == list(range(1, len(lst) + 1))
            assert len({r.item_id for r in lst}) == len(lst)
            assert all(r.reasons and all(reason.text for reason in r.reasons) for r in lst), name


def test_lists_exclude_what_the_user_watched(world: World) -> None:
    for name in ("exhaustive", "candidates"):
        rec = world.exhaustive if name == "exhaustive" else world.candidates
        for user, lst in zip(world.users, world.lists[name], strict=False):
            watched = rec.profiles[user].watched
            assert not any(rec.catalog.hashes[rec.catalog.row_of[r.item_id]] in watched for r in lst), name


# -- (b) candidates only: recall against scoring every item ----------------------------------------------------
def test_candidate_lists_recall_the_exhaustive_lists(world: World) -> None:
    exhaustive, candidates = world.lists["exhaustive"], world.lists["candidates"]
    recalls = [len(set(ids(a)) & set(ids(b))) / len(a) for a, b in zip(exhaustive, candidates, strict=True) if a]
    recall = float(np.mean(recalls))
    mean_candidates = float(np.mean(world.candidate_sizes))
    print(f"candidate recall@{world.dense.params.top_n} vs exhaustive: {recall:.4f}")
    print(f"mean candidates scored: {mean_candidates:.1f} of {N_ITEMS} items")
    assert len(world.candidate_sizes) == len(candidates)
    assert mean_candidates < 0.6 * N_ITEMS  # a real subset: the recall below measures something
    assert recall >= 0.9
    assert all(len(b) == len(a) for a, b in zip(exhaustive, candidates, strict=True))


def test_candidate_lists_are_the_same_batched_or_one_by_one(world: World) -> None:
    rec = world.candidates
    profiles: list[UserProfile | None] = [rec.profiles[u] for u in world.users[:40]]
    batched = rec.rank_many(profiles)
    assert batched == [rec.rank_profile(p, rec.params.top_n) for p in profiles]


# -- (c) the automatic switch ----------------------------------------------------------------------------------
def test_the_recommender_switches_past_exact_max_items_keeping_its_counts() -> None:
    items = synthetic_catalog(120, seed=3)
    rec = StreamRecommender(StreamParams(exact_max_items=50))
    for item in items[:50]:
        rec.add_item(item)
    for event in parsed_events(items[:50], 1500, n_users=100, seed=3):
        rec.learn_one(event)
    dense = rec.cooccurrence
    assert isinstance(dense, Cooccurrence) and type(rec._ranker) is Ranker  # 50 items: still exact
    counts = dense.counts[:50, :50].copy()
    item_counts = dense.item_counts[:50].copy()
    assert np.count_nonzero(counts) > 200 and np.count_nonzero(counts.sum(axis=1)) > 40
    before = rec.rank_many([rec.profiles[u] for u in sorted(rec.profiles)[:5]])

    rec.add_item(items[50])
    sparse = rec.cooccurrence
    assert isinstance(sparse, SparseCooccurrence)
    assert isinstance(rec._ranker, CandidateRanker) and not rec._ranker.exhaustive
    assert sparse.exact and sparse.n_items == 51  # every count kept
    np.testing.assert_array_equal(sparse.item_counts[:50], item_counts)
    assert sparse.item_counts[50] == 0.0
    for a in range(50):
        for b in range(51):
            assert sparse.pair_count(a, b) == (float(counts[a, b]) if b < 50 else 0.0)

    for item in items[51:]:
        rec.add_item(item)
    assert rec.cooccurrence is sparse and sparse.n_items == 120  # switched once, then grown
    events = parsed_events(items, 300, n_users=100, seed=4)
    for event in events:
        rec.learn_one(event)
    learned_new = sum(sparse.sizes[50:120])
    assert learned_new > 0  # the new items are co-counted too
    after = rec.rank_many([rec.profiles[u] for u in sorted(rec.profiles)[:5]])
    assert len(before) == len(after) == 5 and all(len(lst) == rec.params.top_n for lst in after)
    assert all(r.item_id in rec.catalog.row_of and r.reasons for lst in after for r in lst)


def test_a_catalog_read_in_batches_across_the_switch_gives_the_lists_of_one_by_one() -> None:
    items = synthetic_catalog(120, seed=8)
    events = parsed_events(items, 1500, n_users=80, seed=8)
    one_by_one = StreamRecommender(StreamParams(exact_max_items=50))
    for item in items:
        one_by_one.add_item(item, 7)
    batched = StreamRecommender(StreamParams(exact_max_items=50))
    for start, end in ((0, 30), (30, 90), (90, 120)):  # the second batch crosses exact_max_items
        batched.add_items([(item, 7) for item in items[start:end]])
    assert isinstance(batched.cooccurrence, SparseCooccurrence) and isinstance(batched._ranker, CandidateRanker)
    np.testing.assert_array_equal(batched.item_vectors, one_by_one.item_vectors)
    for event in events:
        assert batched.learn_one(event) == one_by_one.learn_one(event)
    users = sorted(one_by_one.profiles)[:20]
    expected = one_by_one.rank_many([one_by_one.profiles[u] for u in users])
    assert batched.rank_many([batched.profiles[u] for u in users]) == expected


def test_use_candidate_ranking_on_an_empty_recommender() -> None:
    rec = StreamRecommender(StreamParams(exact_max_items=50))
    rec.use_candidate_ranking(exhaustive=True)
    assert isinstance(rec.cooccurrence, SparseCooccurrence)
    assert rec.rank_many([None]) == [[]]
    for item in synthetic_catalog(10, seed=5):
        rec.add_item(item)
    assert rec.cooccurrence.n_items == 10
    assert len(rec.rank_many([None])[0]) == 10


def test_prepare_ranking_builds_the_item_index_before_the_first_list() -> None:
    items = synthetic_catalog(200, seed=6)
    rec = system(items, parsed_events(items, 500, n_users=50, seed=6), StreamParams(exact_max_items=50), False)
    ranker = rec._ranker
    assert isinstance(ranker, CandidateRanker) and ranker.index.rebuilds == 0 and rec.index_builds == 0
    rec.prepare_ranking()
    assert ranker.index.rebuilds == 1 and rec.index_builds == 1
    rec.rank_many([rec.profiles[u] for u in sorted(rec.profiles)[:10]])
    assert ranker.index.rebuilds == 1  # the lists used the index built ahead
    dense = StreamRecommender(StreamParams())
    dense.prepare_ranking()  # nothing to build for exact ranking
    assert type(dense._ranker) is Ranker and dense.index_builds == 0


def test_an_index_built_in_another_thread_from_a_snapshot_gives_the_same_lists() -> None:
    items = synthetic_catalog(400, seed=9)
    events = parsed_events(items, 1500, n_users=60, seed=9)
    params = StreamParams(exact_max_items=50)
    reference = system(items[:300], events[:0], params, False)
    threaded = system(items[:300], events[:0], params, False)
    snapshot = threaded.item_vectors
    builder = threading.Thread(target=threaded.prepare_ranking, args=(snapshot,))
    builder.start()
    threaded.add_items([(item, 0) for item in items[300:]])  # the catalog changes while the index is built
    for event in events:
        threaded.learn_one(event)
    lists = threaded.rank_many([threaded.profiles[u] for u in sorted(threaded.profiles)[:15]])  # may wait for it
    builder.join()
    reference.add_items([(item, 0) for item in items[300:]])
    for event in events:
        reference.learn_one(event)
    assert lists == reference.rank_many([reference.profiles[u] for u in sorted(reference.profiles)[:15]])


def test_a_viewer_with_only_watched_items_never_gets_them_back() -> None:
    # No history rows, embedding or searches: the candidates are the popular items alone.
    items = synthetic_catalog(1_000, seed=7)  # more items than popular_candidates (300)
    rec = system(items, parsed_events(items, 3000, n_users=200, seed=7), StreamParams(exact_max_items=50), False)
    popular = rec.rank_many([None])[0]
    viewer = UserProfile.new("viewer", rec.item_vectors.shape[1])
    viewer.watched = {rec.catalog.hashes[rec.catalog.row_of[r.item_id]] for r in popular}
    viewer.last_ts = rec.trending.now
    shown = {r.item_id for r in rec.rank_many([viewer])[0]}
    assert shown and not shown & {r.item_id for r in popular}


# -- (d) the item index ----------------------------------------------------------------------------------------
def unit_rows(rng: np.random.Generator, n: int, dim: int) -> F32:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def exact_top(vectors: F32, queries: F32, m: int) -> npt.NDArray[np.int64]:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :m].astype(np.int64)


def assert_exact(index: ItemIndex, vectors: F32, queries: F32, m: int = 5) -> None:
    found = index.search(vectors, queries, m)
    assert found.shape == (queries.shape[0], m)
    np.testing.assert_array_equal(found[:, 0], exact_top(vectors, queries, 1)[:, 0])
    exact = exact_top(vectors, queries, m)
    for got, want in zip(found, exact, strict=True):
        assert set(got.tolist()) == set(want.tolist())


def index_count(index: ItemIndex) -> int:
    return int(index._index.ntotal)


def test_item_index_finds_items_exactly_when_probing_every_list() -> None:
    rng = np.random.default_rng(7)
    vectors = unit_rows(rng, 2000, 16)
    index = ItemIndex(nprobe=10_000)  # more than any nlist: every list scanned, exact search
    probe = rng.choice(2000, 50, replace=False)
    found = index.search(vectors, vectors[probe], 1)
    np.testing.assert_array_equal(found[:, 0], probe)  # unit vectors: each item is its own best match
    assert index.rebuilds == 1 and index_count(index) == 2000
    assert index._index.nlist > 1  # really an inverted file, not one list
    assert_exact(index, vectors, rng.standard_normal((30, 16)).astype(np.float32))
    index.search(vectors, vectors[:3], 1)
    assert index.rebuilds == 1  # the same array: nothing to do


def test_item_index_follows_appended_and_changed_rows() -> None:
    rng = np.random.default_rng(8)
    vectors = unit_rows(rng, 2000, 16)
    index = ItemIndex(nprobe=10_000)
    assert_exact(index, vectors, vectors[:10])
    assert index.rebuilds == 1

    grown = np.concatenate([vectors, unit_rows(rng, 100, 16)])  # new items: a new, longer array
    found = index.search(grown, grown[2000:], 1)
    np.testing.assert_array_equal(found[:, 0], np.arange(2000, 2100))
    assert index.rebuilds == 1 and index_count(index) == 2100
    assert_exact(index, grown, rng.standard_normal((20, 16)).astype(np.float32))

    changed = grown.copy()
    rows = np.array([3, 500, 2050])
    old = grown[rows].copy()
    changed[rows] = unit_rows(rng, 3, 16)
    found = index.search(changed, changed[rows], 1)
    np.testing.assert_array_equal(found[:, 0], rows)
    assert index.rebuilds == 1 and index_count(index) == 2100  # replaced in place, not added twice
    stale = index.search(changed, old, 3)
    assert not np.isin(stale, rows).any()  # the old vectors are gone from the index
    assert_exact(index, changed, old)

    retrained = changed.copy()
    retrained[: int(0.8 * 2100)] = unit_rows(rng, int(0.8 * 2100), 16)  # a new item model: most rows change
    found = index.search(retrained, retrained[:10], 1)
    assert index.rebuilds == 2 and index_count(index) == 2100
    np.testing.assert_array_equal(found[:, 0], np.arange(10))
    assert_exact(index, retrained, rng.standard_normal((20, 16)).astype(np.float32))


def test_item_index_rebuilds_when_the_vectors_change_shape() -> None:
    rng = np.random.default_rng(9)
    index = ItemIndex(nprobe=10_000)
    vectors = unit_rows(rng, 500, 8)
    index.search(vectors, vectors[:1], 1)
    wider = unit_rows(rng, 500, 12)
    np.testing.assert_array_equal(index.search(wider, wider[:4], 1)[:, 0], np.arange(4))
    assert index.rebuilds == 2
    fewer = wider[:400].copy()
    np.testing.assert_array_equal(index.search(fewer, fewer[396:], 1)[:, 0], np.arange(396, 400))
    assert index.rebuilds == 3 and index_count(index) == 400


def test_item_index_pads_with_minus_one_when_asked_for_more_than_it_holds() -> None:
    vectors = unit_rows(np.random.default_rng(10), 50, 4)
    found = ItemIndex(nprobe=10_000).search(vectors, vectors[:2], 60)
    assert found.shape == (2, 60)
    assert (found[:, 50:] == -1).all()
    assert all(sorted(row[:50].tolist()) == list(range(50)) for row in found)


@pytest.mark.parametrize("seed", range(40))
def test_embedding_the_best_candidates_only_gives_the_top_of_embedding_them_all(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items, n, dim, k = 5_000, int(rng.integers(101, 3_000)), 16, 100
    vectors = (rng.standard_normal((n_items, dim)) * rng.random((n_items, 1)) * 3).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
    embedding = rng.standard_normal(dim).astype(np.float32)
    norm = float(np.sqrt(embedding.dot(embedding)))
    candidates = np.sort(rng.choice(n_items, n, replace=False)).astype(np.int64)
    # Coarse scores: many ties, the case where a different float step would show.
    partial = (np.round(rng.random(n) * 40) / 40).astype(np.float32)
    searched = (rng.random(n) * 0.5).astype(np.float32) if seed % 2 else np.zeros(0, dtype=np.float32)
    seen = np.sort(rng.choice(n, int(rng.integers(0, n - 100 if seed % 5 else n)), replace=False)).astype(np.int64)
    if seed % 3 == 0:
        seen = np.zeros(0, dtype=np.int64)
    full = partial.copy()
    _add_embedding(candidates, vectors, embedding, norm, 0.1, full)  # every candidate, as the exhaustive path
    if searched.shape[0]:
        full += searched
    full[seen] = -np.inf
    scores = partial.copy()
    keep = _embed_best(scores, searched, seen, norms, candidates, vectors, embedding, norm, 0.1, k)
    assert np.all(np.diff(keep) > 0) and not np.isin(keep, seen).any()
    assert scores[keep].tobytes() == full[keep].tobytes()  # the same float steps
    finite = np.flatnonzero(np.isfinite(full))
    if finite.size <= k:
        assert keep.tolist() == finite.tolist()
    else:
        bar = np.sort(full[finite])[-k]
        assert set(np.flatnonzero(full > bar).tolist()) <= set(keep.tolist())  # nothing that beats the bar is lost
        assert np.sort(scores[keep])[-k:].tolist() == np.sort(full[finite])[-k:].tolist()


def test_embedding_the_best_candidates_skips_those_whose_best_case_cannot_make_the_top() -> None:
    n, k = 1_000, 100
    vectors = np.eye(n, 4, dtype=np.float32)  # |v| = 1 for the first four rows, 0 after
    candidates = np.arange(n, dtype=np.int64)
    partial = np.linspace(1.0, 0.0, n).astype(np.float32)  # the best case of row i: partial[i] (+ 0.1 for 0-3)
    embedding = np.ones(4, dtype=np.float32)
    none_f, none_i = np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
    norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
    keep = _embed_best(partial, none_f, none_i, norms, candidates, vectors, embedding, 2.0, 0.1, k)
    assert keep.tolist() == list(range(k))  # the k best cases, then the k-th best score stops the rest


@pytest.mark.parametrize("seed", range(20))
def test_watched_items_are_found_among_the_candidates_as_by_the_numpy_steps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items = 3_000
    hashes_of_rows = rng.integers(-(2**62), 2**62, n_items)
    hashes_of_rows[rng.choice(n_items, 50, replace=False)] = hashes_of_rows[0]  # equal hashes: the last row counts
    order = np.argsort(hashes_of_rows, kind="stable")
    keys, key_rows = hashes_of_rows[order], order.astype(np.intp)
    candidates = np.sort(rng.choice(n_items, 800, replace=False)).astype(np.int64)
    known = rng.choice(hashes_of_rows, 120)
    unknown = rng.integers(-(2**62), 2**62, 30)
    watched = np.unique(np.concatenate([known, unknown])).astype(np.int64)
    rng.shuffle(watched)

    pos = np.searchsorted(keys, watched, side="right") - 1
    found = pos >= 0
    found[found] = keys[pos[found]] == watched[found]
    rows = key_rows[pos[found]]
    at = np.minimum(np.searchsorted(candidates, rows), candidates.shape[0] - 1)
    expected = at[candidates[at] == rows]

    np.testing.assert_array_equal(_seen_positions(keys, key_rows, watched, candidates), expected)
