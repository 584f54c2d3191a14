"""Baseline sanity on small data: popularity order and ties, ALS retraining, fold-in, exclusion, true reasons."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.models import baselines
from streamrec.models.baselines import ALSFoldIn, ALSRetrained, IncrementalPopularity, popularity_reason, top_n_indices
from streamrec.models.events import CatalogItem, Play, Rating, Search

ITEMS = [CatalogItem(str(i), f"Film {i}", ("A",) if i < 10 else ("B",)) for i in range(20)]


def rating(n: int, user: str, item: str, stars: float = 4.0) -> Rating:
    return Rating(f"e{n}", user, item, stars, 1_000 * n)


def fresh_popularity() -> IncrementalPopularity:
    system = IncrementalPopularity()
    for item in ITEMS:
        system.add_item(item)
    return system


def test_top_n_indices_orders_ties_by_index_and_skips_excluded() -> None:
    scores = np.array([1.0, 3.0, 3.0, 2.0, 3.0])
    assert top_n_indices(scores, np.array([2]), 3).tolist() == [1, 4, 3]
    assert top_n_indices(scores, np.array([], dtype=np.int64), 10).tolist() == [1, 2, 4, 3, 0]
    assert top_n_indices(scores, np.array([0, 1, 2, 3, 4]), 3).tolist() == []


def test_top_n_indices_compiled_path_matches_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Float scores take a compiled pass, which declines NaN, +inf and out-of-range exclusions; both paths
    must give the same indices on every input, odd ones included."""
    rng = np.random.default_rng(0)
    odd = np.array([0.0, -0.0, 1.0, np.inf, -np.inf, np.nan])
    cases = []
    for trial in range(3000):
        size = int(rng.integers(1, 30))
        # odd values, or few distinct ones (many ties)
        scores = rng.choice(odd, size) if trial % 3 == 0 else rng.integers(0, 4, size).astype(float)
        scores = scores.astype(np.float32 if trial % 2 else np.float64)
        exclude = rng.choice(size, int(rng.integers(0, size + 1)), replace=False)
        if trial % 5 == 0:
            exclude = np.concatenate([exclude, [-1]])  # numpy wraps a negative index: declined, same result
        cases.append((scores, exclude.astype(np.int64), int(rng.integers(1, 35))))
    compiled = [top_n_indices(*case) for case in cases]
    monkeypatch.setattr(baselines, "_COMPILED_DTYPES", ())
    for case, got in zip(cases, compiled, strict=True):
        assert got.tolist() == top_n_indices(*case).tolist(), case
    # the plain meaning, on finite scores
    scores = np.array([0.5, 2.0, -np.inf, 2.0, 1.0], dtype=np.float32)
    assert top_n_indices(scores, np.array([4]), 10).tolist() == [1, 3, 0]
    with pytest.raises(IndexError):
        top_n_indices(scores, np.array([5]), 2)


def test_popularity_ranking_is_kept_sorted_as_counts_grow() -> None:
    """The maintained ranking equals a fresh sort by (count desc, catalog order) after every event, with
    unknown items registered on the way, and reused list entries carry the current counts."""
    rng = np.random.default_rng(1)
    system = fresh_popularity()
    users = [f"u{i}" for i in range(8)]
    for n in range(400):
        item = str(int(rng.integers(0, 24)))  # 20..23: unknown items, registered on first sight
        system.learn_one(rating(n, users[int(rng.integers(0, 8))], item))
        counts = {i: c for i, c in zip(system._item_ids, system._counts, strict=True)}
        for user in ("new", users[n % 8]):
            seen = {system._item_ids[i] for i in system._history[user].items()} if user in system._history else set()
            expected = sorted((i for i in counts if i not in seen), key=lambda i: (-counts[i], system._item_index[i]))
            recs = system.rank(user, 6)
            assert [r.item_id for r in recs] == expected[:6]
            assert [r.score for r in recs] == [float(counts[i]) for i in expected[:6]]
            assert [r.rank for r in recs] == list(range(1, len(recs) + 1))
            assert all(r.reasons == (popularity_reason(int(r.score)),) for r in recs)
    assert system.rank("new", 0) == []


def test_popularity_counts_distinct_users_and_breaks_ties_by_catalog_order() -> None:
    system = fresh_popularity()
    # no data yet: catalog order
    assert [r.item_id for r in system.rank("u", 3)] == ["0", "1", "2"]
    events = [rating(1, "a", "5"), rating(2, "b", "5"), rating(3, "a", "7"), rating(4, "c", "3")]
    for e in events:
        assert system.learn_one(e)
    # a play then a rating of the same pair is one interaction
    system.learn_one(Play("p1", "c", "7", 100.0, 5_000))
    system.learn_one(Rating("r1", "c", "7", 5.0, 6_000))
    recs = system.rank("z", 4)
    assert [r.item_id for r in recs] == ["5", "7", "3", "0"]  # 2, 2 (5 before 7: catalog order), 1, 0
    assert [r.score for r in recs] == [2.0, 2.0, 1.0, 0.0]
    assert recs[0].reasons == (popularity_reason(2),)
    assert recs[0].reasons[0].evidence == {"count": "2"}
    assert recs[0].reasons[0].text == "popular: 2 views so far"
    assert [r.rank for r in recs] == [1, 2, 3, 4]


def test_popularity_excludes_history_and_dedupes_events() -> None:
    system = fresh_popularity()
    assert system.learn_one(rating(1, "a", "5"))
    assert not system.learn_one(rating(1, "a", "5"))  # same event id: a duplicate
    assert system.learn_one(Search("s1", "a", "film", 2_000))
    assert "5" not in [r.item_id for r in system.rank("a", 20)]
    assert len(system.rank("a", 100)) == len(ITEMS) - 1
    assert system.rank("b", 1)[0].item_id == "5"


def test_unknown_items_become_rankable() -> None:
    system = fresh_popularity()
    system.learn_one(rating(1, "a", "new-item"))
    assert system.rank("b", 1)[0].item_id == "new-item"


def two_cluster_stream(n_users: int = 40, seed: int = 0) -> list[Rating]:
    """Even users like items 0-9, odd users items 10-19; each user rates 6 of their side."""
    rng = np.random.default_rng(seed)
    events: list[Rating] = []
    n = 0
    for u in range(n_users):
        side = 0 if u % 2 == 0 else 10
        for item in rng.choice(10, 6, replace=False):
            n += 1
            events.append(rating(n, f"u{u}", str(side + int(item))))
    return events


def test_als_retrained_frozen_users_and_popularity_for_unseen() -> None:
    system = ALSRetrained(every=100, factors=2, iterations=20, regularization=0.1)
    for item in ITEMS:
        system.add_item(item)
    events = two_cluster_stream()
    for e in events[:100]:
        system.learn_one(e)
    assert system.retrains == 1
    # a user seen at the retrain gets an ALS list from their own side, explained by an item they watched
    recs = system.rank("u0", 4)
    assert all(int(r.item_id) < 10 for r in recs)
    watched = {e.item_id for e in events[:100] if e.user_id == "u0"}
    assert all(r.reasons[0].kind == "watched" and r.reasons[0].evidence["item_id"] in watched for r in recs)
    assert not {r.item_id for r in recs} & watched
    # frozen: a new interaction changes the exclusions but not the vector
    vec = system._user_vector("u0")
    assert vec is not None
    vec = vec.copy()
    system.learn_one(rating(10_000, "u0", "15"))
    assert np.array_equal(system._user_vector("u0"), vec)  # type: ignore[arg-type]
    assert "15" not in [r.item_id for r in system.rank("u0", 20)]
    # a user unseen at the last retrain gets popularity
    for e in events[100:]:
        system.learn_one(e)
    assert system.retrains == 2
    system.learn_one(rating(10_001, "newcomer", "3"))
    assert [r.reasons[0].kind for r in system.rank("newcomer", 3)] == ["popular"] * 3


def test_als_foldin_updates_user_vectors_per_event() -> None:
    system = ALSFoldIn(every=200, factors=2, iterations=20, regularization=0.1)
    for item in ITEMS:
        system.add_item(item)
    events = two_cluster_stream()
    for e in events[:200]:
        system.learn_one(e)
    assert system.retrains == 1
    # a brand-new user: popularity until their first event, then a folded-in vector at once
    assert system.rank("fresh", 1)[0].reasons[0].kind == "popular"
    system.learn_one(rating(20_000, "fresh", "12"))
    system.learn_one(rating(20_001, "fresh", "14"))
    recs = system.rank("fresh", 5)
    assert all(10 <= int(r.item_id) < 20 for r in recs)
    assert all(r.reasons[0].kind == "watched" and r.reasons[0].evidence["item_id"] in {"12", "14"} for r in recs)
    before = system._user_vector("fresh")
    assert before is not None
    system.learn_one(rating(20_002, "fresh", "3"))
    after = system._user_vector("fresh")
    assert after is not None and not np.allclose(before, after)


def test_als_confidence_uses_alpha_and_rating_weight() -> None:
    system = ALSFoldIn(alpha=2.0, rating_weight=1.0)
    assert system.confidence(Rating("x", "u", "1", 5.0, 0)) == pytest.approx(4.0)
    assert system.confidence(Rating("x", "u", "1", 1.0, 0)) == pytest.approx(2.0)
    assert system.confidence(Play("x", "u", "1", 10.0, 0)) == pytest.approx(2.0)


def test_als_before_first_retrain_is_popularity() -> None:
    system = ALSFoldIn(every=1000, factors=4)
    for item in ITEMS:
        system.add_item(item)
    system.learn_one(rating(1, "a", "4"))
    recs = system.rank("a", 2)
    assert [r.item_id for r in recs] == ["0", "1"]
    assert recs[0].reasons[0].kind == "popular"


def test_foldin_vector_is_recalculate_user_on_the_current_row() -> None:
    import scipy.sparse

    system = ALSFoldIn(every=100, factors=4, iterations=5, rating_weight=1.0)
    for item in ITEMS:
        system.add_item(item)
    events = two_cluster_stream()
    for e in events[:150]:
        system.learn_one(e)
    user = events[149].user_id
    # a play then a higher-confidence rating of the same item: the second changes the row, so the vector too
    system.learn_one(Play("p-x", user, "19", 10.0, 999_000))
    v1 = system._user_vector(user)
    system.learn_one(Rating("r-x", user, "19", 5.0, 999_001))
    v2 = system._user_vector(user)
    assert v1 is not None and v2 is not None and not np.allclose(v1, v2)
    history = system._history[user]
    order = np.argsort(history.items())
    row = scipy.sparse.csr_matrix(
        (history.weights()[order], history.items()[order].astype(np.int32), [0, history.n]), shape=(1, len(ITEMS))
    )
    assert np.allclose(system._model.recalculate_user(0, row), v2, atol=1e-5)
