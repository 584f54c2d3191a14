"""The fast scorer gives exactly the lists of the straightforward one, alone or batched, and learning through a
batch overlay gives exactly the profiles of learning event by event through the encoded store."""

from __future__ import annotations

import copy
import random
import struct

import numpy as np
import numpy.typing as npt
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrec.models.base import Recommendation, recommendation_json
from streamrec.models.calibration import calibrated_rerank_padded
from streamrec.models.catalog import Catalog
from streamrec.models.cooccurrence import Cooccurrence
from streamrec.models.events import CatalogItem, Play, Rating, Search, UserEvent
from streamrec.models.explain import Evidence, Explainer, explain
from streamrec.models.profile import EncodedProfiles, ProfileOverlay, UserProfile
from streamrec.models.ranking import round_exactly
from streamrec.models.recommender import StreamParams, StreamRecommender
from streamrec.models.search_intent import intent_scores
from streamrec.models.text import genre_key

DAY = 86_400_000
GENRES = ["Action", "Comedy", "Drama", "Sci-Fi", "Horror", "Romance", "Thriller", "Animation", "Crime"]
WORDS = ["star", "night", "love", "dark", "city", "war", "dream", "return", "empire", "ghost", "blue", "time"]


# -- the scorer as first written: the reference every fast path must reproduce bit for bit --------------------
def reference_rank(rec: StreamRecommender, profile: UserProfile | None, n: int) -> list[Recommendation]:
    p = rec.params
    catalog = rec.catalog
    n_items = len(catalog)
    if n_items == 0:
        return []
    now = profile.last_ts if profile is not None else rec.trending.now
    rec.trending.advance(now)
    popularity = rec.cooccurrence.item_counts[:n_items]
    recency = rec.item_side.recency.values[:n_items]
    w_cooccurrence, w_embedding, w_popularity, w_recency = rec.item_side.blend.weights
    scores = w_popularity * _unit(np.log1p(popularity)) + w_recency * _unit(recency)
    history_rows = np.zeros(0, dtype=np.intp)
    contributions = np.zeros((0, n_items), dtype=np.float32)
    per_query: list[tuple[str, dict[int, float]]] = []
    if profile is not None and profile.history:
        recent = [h for h in profile.history[-p.scoring_window :] if h.item_id in catalog.row_of]
        history_rows = np.array([catalog.row_of[h.item_id] for h in recent], dtype=np.intp)
        ages = np.arange(len(recent))[::-1]
        likes = np.array([max(0.25, 1.0 + h.weight) for h in recent], dtype=np.float32)
        weights = (p.recency_decay**ages).astype(np.float32) * likes
        contributions = rec.cooccurrence.similar_to(history_rows, weights)
        scores += w_cooccurrence * _unit(contributions.sum(axis=0))
        norm = float(np.linalg.norm(profile.embedding))
        if norm > 0 and profile.embedding.shape[0] == rec.item_vectors.shape[1]:
            scores += w_embedding * (rec.item_vectors @ profile.embedding) / norm
    if profile is not None and profile.searches:
        intent, per_query = intent_scores(catalog, profile.searches, now, p.search_half_life_ms)
        scores += p.w_search * intent
    if profile is not None and profile.watched:
        seen = [catalog.row_of_hash[h] for h in profile.watched if h in catalog.row_of_hash]
        scores[seen] = -np.inf
    candidates = _top(scores, min(p.candidates, n_items))
    candidates = candidates[np.isfinite(scores[candidates])]
    target = _genre_target(profile, catalog) if profile is not None else None
    order = calibrated_rerank_padded(
        scores[candidates],
        target,
        n,
        p.calibration_weight,
        p.caps,
        catalog.genre_idx[candidates],
        catalog.genre_share[candidates],
        catalog.creator_idx[candidates],
        len(catalog.genres),
    )
    chosen = candidates[order]
    return _reference_explained(rec, chosen, scores, profile, history_rows, contributions, per_query)


def _reference_explained(
    rec: StreamRecommender,
    chosen: npt.NDArray[np.intp],
    scores: npt.NDArray[np.float32],
    profile: UserProfile | None,
    history_rows: npt.NDArray[np.intp],
    contributions: npt.NDArray[np.float32],
    per_query: list[tuple[str, dict[int, float]]],
) -> list[Recommendation]:
    catalog = rec.catalog
    n = chosen.shape[0]
    neighbours: list[int | None] = [None] * n
    shares = [0.0] * n
    if history_rows.size and n:
        columns = contributions[:, chosen]
        best = np.argmax(columns, axis=0)
        top = columns[best, np.arange(n)]
        totals = np.maximum(columns.sum(axis=0), 1e-9)
        for pos in np.flatnonzero(top > 0).tolist():
            neighbours[pos] = int(history_rows[best[pos]])
            shares[pos] = float(top[pos] / totals[pos])
    recs = []
    for pos, row in enumerate(chosen.tolist()):
        query, query_share = None, 0.0
        for q, matches in reversed(per_query):
            if row in matches:
                query, query_share = q, matches[row]
                break
        shared_creator, liked_genre = _taste_links(catalog, row, profile)
        evidence = Evidence(
            row=row,
            neighbour_row=neighbours[pos],
            neighbour_share=shares[pos],
            query=query,
            query_share=query_share,
            shared_creator=shared_creator,
            liked_genre=liked_genre,
            trending_count=int(rec.trending.counts[row]),
            trending_window_days=rec.params.trending_window_days,
            total_count=int(rec.cooccurrence.item_counts[row]),
            as_of=rec.trending.now,
        )
        reasons = explain(catalog, evidence)
        recs.append(Recommendation(catalog.items[row].item_id, pos + 1, round(float(scores[row]), 6), reasons))
    return recs


def _taste_links(catalog: Catalog, row: int, profile: UserProfile | None) -> tuple[tuple[str, int] | None, str | None]:
    if profile is None:
        return None, None
    shared_creator = None
    for creator in catalog.items[row].creators:
        watched = [r for r in catalog.creator_rows.get(creator, ()) if catalog.hashes[r] in profile.watched]
        if watched:
            shared_creator = (creator, min(watched))
            break
    weights = profile.genre_weights
    genres = catalog.genres
    top_weight, top_genre = max(
        ((weights.get(genres[c], 0.0), genres[c]) for c in catalog.item_genre_cols[row]), default=(0.0, "")
    )
    return shared_creator, (top_genre if top_weight >= 1.0 else None)


def _unit(x: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    top = float(np.max(x)) if x.size else 0.0
    return (x / top).astype(np.float32) if top > 0 else np.zeros(x.shape, dtype=np.float32)


def _top(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    return np.argsort(-scores, kind="stable")[:k]  # equal scores: the lower row first


def _genre_target(profile: UserProfile, catalog: Catalog) -> npt.NDArray[np.float64] | None:
    total = sum(profile.genre_weights.values())
    if total <= 0:
        return None
    target = np.zeros(len(catalog.genres), dtype=np.float64)
    for name, weight in profile.genre_weights.items():
        col = catalog.genre_col.get(genre_key(name))
        if col is not None:
            target[col] = weight
    mass = float(target.sum())
    return target / mass if mass > 0 else None


# -- a synthetic world: a catalog with ties, bare items and late arrivals, and a messy event stream ------------
def _item(rng: random.Random, n: int) -> CatalogItem:
    genres = tuple(rng.sample(GENRES, rng.choice([0, 1, 1, 2, 2, 3, 4])))
    creators = tuple(f"c{rng.randrange(12)}" for _ in range(rng.choice([0, 1, 1, 1, 2, 3])))
    title = " ".join(rng.sample(WORDS, rng.randint(1, 3))) + f" {n}"
    return CatalogItem(str(n), title, genres, creators, rng.choice([0, 3000, 6000, 9000]), 1990 + n % 30)


Stream = list[UserEvent | tuple[CatalogItem, int]]  # events, and catalog items arriving at a time


def _world(seed: int, n_items: int = 80, n_events: int = 400, n_users: int = 6) -> tuple[list[CatalogItem], Stream]:
    rng = random.Random(seed)
    items = [_item(rng, n) for n in range(n_items)]
    stream: Stream = []
    ts = DAY
    sent: list[UserEvent] = []
    late = n_items
    for k in range(n_events):
        ts += rng.choice([1, 1000, 60_000, 3_600_000, DAY // 2])
        user = f"u{rng.randrange(n_users)}"
        roll = rng.random()
        event: UserEvent
        if roll < 0.05 and sent:
            event = rng.choice(sent)  # a redelivery: a duplicate
        elif roll < 0.08:
            item = _item(rng, late)
            late += 1
            stream.append((item, ts))
            continue
        elif roll < 0.2:
            query = rng.choice([*WORDS, *GENRES, "sci fi", "nothing here", f"{rng.choice(WORDS)} {rng.choice(WORDS)}"])
            event = Search(f"e{k}", user, query, ts)
        else:
            item_id = str(rng.randrange(late))
            if rng.random() < 0.5:
                event = Rating(f"e{k}", user, item_id, float(rng.randint(1, 5)), ts)
            else:
                event = Play(f"e{k}", user, item_id, rng.uniform(0, 9000), ts, rng.choice([None, True, False]))
        sent.append(event)
        stream.append(event)
    return items, stream


def _system(items: list[CatalogItem], profiles: EncodedProfiles | None = None, **params: object) -> StreamRecommender:
    system = StreamRecommender(StreamParams(**params), profiles=profiles)  # type: ignore[arg-type]
    for item in items:
        system.add_item(item)
    return system


def _feed(system: StreamRecommender, entry: UserEvent | tuple[CatalogItem, int]) -> None:
    if isinstance(entry, tuple):
        system.add_item(*entry)
    else:
        system.learn_one(entry)


PARAMS: list[dict[str, object]] = [
    {},
    {"top_n": 7, "candidates": 15, "calibration_weight": 0.0},
    {"top_n": 30, "candidates": 500, "scoring_window": 12},
]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("params", PARAMS)
def test_rank_profile_is_the_reference_scorer_bit_for_bit(seed: int, params: dict[str, object]) -> None:
    items, stream = _world(seed)
    fast = _system(items, EncodedProfiles(), **params)
    slow = _system(items, EncodedProfiles(), **params)
    n = fast.params.top_n
    for step, entry in enumerate(stream):
        _feed(fast, entry)
        _feed(slow, entry)
        if step % 7 == 0 or isinstance(entry, Search):
            user = entry.user_id if not isinstance(entry, tuple) else "nobody"
            expected = reference_rank(slow, slow.profile(user), n)
            assert fast.rank(user) == expected
            assert [repr(r.reasons) for r in fast.rank(user)] == [repr(r.reasons) for r in expected]
    for user in [*sorted(fast.profiles), "nobody"]:
        for n in (1, 3):
            assert fast.rank_profile(fast.profile(user), n) == reference_rank(slow, slow.profile(user), n)


@pytest.mark.parametrize("seed", range(3))
def test_rank_many_is_rank_profile_for_each_user(seed: int) -> None:
    items, stream = _world(seed, n_events=500, n_users=12)
    one = _system(items)
    many = _system(items)
    for entry in stream:
        _feed(one, entry)
        _feed(many, entry)
    profiles: list[UserProfile | None] = [one.profile(u) for u in sorted(one.profiles)]
    # Users whose last event is ahead of the trending window move it for the users after them, as in a loop.
    ahead = []
    for k, profile in enumerate(profiles[:4]):
        assert profile is not None
        moved = copy.deepcopy(profile)
        moved.last_ts = one.trending.now + (k + 1) * 3 * DAY
        ahead.append(moved)
    batch = [None, *profiles, ahead[1], *profiles[:3], ahead[0], None, ahead[3], *profiles, ahead[2], profiles[0]]
    for n in (20, 5, 1):
        expected = [one.rank_profile(copy.deepcopy(p), n) for p in batch]
        assert many.rank_many([copy.deepcopy(p) for p in batch], n) == expected
    assert many.rank_many([]) == []
    assert many.rank_many(profiles[:2]) == [one.rank_profile(p, one.params.top_n) for p in profiles[:2]]
    assert many.trending.now == one.trending.now


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("candidates", [False, True])
def test_published_items_are_the_recommendations_as_json(seed: int, candidates: bool) -> None:
    items, stream = _world(seed, n_events=500, n_users=12)
    system = _system(items)
    if candidates:
        system.use_candidate_ranking()
    for entry in stream:
        _feed(system, entry)
    batch = [None, *(system.profile(u) for u in sorted(system.profiles)), None]
    for n in (20, 3):
        expected = [[recommendation_json(r) for r in recs] for recs in system.rank_many(batch, n)]
        published = system.rank_lists(batch, n).json_items()
        assert orjson.dumps(published) == orjson.dumps(expected)  # the same bytes: key order included
    kinds = {reason["kind"] for recs in published for item in recs for reason in item["reasons"]}
    assert {"watched", "trending"} <= kinds


def test_reasons_chosen_before_a_catalog_change_are_refused() -> None:
    items, stream = _world(0, n_events=100)
    system = _system(items)
    for entry in stream:
        _feed(system, entry)
    lists = system.rank_lists([system.profile(u) for u in sorted(system.profiles)])
    system.add_item(_item(random.Random(1), 10_000))
    with pytest.raises(ValueError, match="catalog changed"):
        lists.json_items()


def test_an_empty_catalog_ranks_nothing() -> None:
    system = StreamRecommender()
    assert system.rank_many([None, UserProfile.new("u", 4)]) == [[], []]
    assert system.rank("u") == []


@pytest.mark.parametrize("seed", range(3))
def test_learning_through_an_overlay_is_learning_event_by_event(seed: int) -> None:
    items, stream = _world(seed, n_events=600, n_users=5)
    direct_store: dict[bytes, bytes] = {}
    batched_store: dict[bytes, bytes] = {}
    direct = _system(items, EncodedProfiles(direct_store))
    batched = _system(items, EncodedProfiles(batched_store))
    rng = random.Random(seed)
    start = 0
    while start < len(stream):
        end = start + rng.randint(1, 60)
        overlay = ProfileOverlay(EncodedProfiles(batched_store))
        batched.profiles = overlay
        applied: list[str] = []
        for entry in stream[start:end]:
            if isinstance(entry, tuple):
                direct.add_item(*entry)
                batched.add_item(*entry)
                continue
            if direct.learn_one(entry):
                applied.append(entry.user_id)
            batched.learn_one(entry)
            if rng.random() < 0.5:  # mid-batch lists, from the live objects, are the same too
                assert batched.rank(entry.user_id) == direct.rank(entry.user_id)
        assert overlay.flush() == list(dict.fromkeys(applied))  # each written once, in first-write order
        assert batched_store == direct_store
        start = end
    batched.profiles = EncodedProfiles(batched_store)
    for user in sorted(direct.profiles):
        assert batched.rank(user) == direct.rank(user)


def test_an_unknown_item_raises_before_the_profile_changes(items: list[CatalogItem]) -> None:
    system = _system(items)
    system.learn_one(Rating("e1", "u", "1", 4.0, DAY))
    before = system.profiles["u"].to_bytes()
    with pytest.raises(KeyError):
        system.learn_one(Rating("e2", "u", "no such item", 4.0, DAY + 1))
    assert system.profiles["u"].to_bytes() == before
    assert system.learn_one(Rating("e1", "u", "no such item", 4.0, DAY)) is False  # a duplicate is just that


@pytest.mark.parametrize("seed", range(5))
def test_the_explainer_words_what_explain_words(seed: int) -> None:
    rng = random.Random(seed)
    items, _ = _world(seed, n_items=40, n_events=0)
    catalog = Catalog()
    for k, item in enumerate(items):
        catalog.upsert(item, ts=rng.choice([0, DAY * k]))
    explainer = Explainer(catalog, trending_window_days=7, max_reasons=rng.choice([1, 2, 3]))
    shares = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.31, 0.5, 1.0]
    for _ in range(40):
        as_of = DAY * rng.randint(0, 60)
        watched = {catalog.hashes[r] for r in rng.sample(range(len(catalog)), rng.randint(0, 12))}
        genre_weights = {g: rng.choice([0.0, 0.5, 1.0, 1.0, 2.5]) for g in rng.sample(GENRES, rng.randint(0, 6))}
        profile = rng.random() < 0.8
        rows = rng.sample(range(len(catalog)), 10)
        totals = np.array([rng.choice([0, 1, 2, 17]) for _ in range(len(catalog))], dtype=np.float64)
        evidence = []
        for row in rows:
            neighbour = rng.choice([None, rng.randrange(len(catalog))]) if profile else None
            query = rng.choice([None, "star", "dark city"]) if profile else None
            trending = rng.choice([0, 0, 1, 5])
            total = int(totals[row])
            share = rng.choice(shares)
            creator, genre = _taste_links(catalog, row, _as_profile(watched, genre_weights) if profile else None)
            evidence.append(
                Evidence(row, neighbour, share, query, rng.choice(shares), creator, genre, trending, 7, total, as_of)
            )
        got = explainer.explain_list(
            rows,
            [e.neighbour_row for e in evidence],
            [e.neighbour_share for e in evidence],
            [(e.query, e.query_share) if e.query is not None else None for e in evidence],
            watched if profile else None,
            genre_weights if profile else None,
            [e.trending_count for e in evidence],
            totals,
            as_of,
        )
        assert got == [explain(catalog, e, explainer.max_reasons) for e in evidence]


def _as_profile(watched: set[int], genre_weights: dict[str, float]) -> UserProfile:
    profile = UserProfile.new("u", 1)
    profile.watched = watched
    profile.genre_weights = genre_weights
    return profile


@pytest.mark.parametrize("seed", range(20))
def test_similarity_sums_are_numpys_sums(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    cooc = Cooccurrence(int(rng.integers(1, 400)))
    cooc.ensure(n)
    cooc.counts[:n, :n] = rng.integers(0, 6, (n, n)) * rng.random((n, n)).astype(np.float32)
    cooc.item_counts[:n] = rng.integers(0, 60, n) * rng.choice([1.0, 0.37], n)
    sizes = rng.integers(0, min(n, 12) + 1, 5)
    items = np.concatenate([rng.choice(n, int(s), replace=False) for s in sizes]).astype(np.intp)
    weights = np.asarray(rng.random(items.shape[0]) * 2, dtype=np.float32)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
    sums = cooc.similarity_sums(items, weights, offsets)
    for k in range(sizes.shape[0]):
        a, b = offsets[k], offsets[k + 1]
        expected = cooc.similar_to(items[a:b], weights[a:b]).sum(axis=0) if b > a else np.zeros(n, np.float32)
        assert sums[k].tobytes() == expected.tobytes()


def test_the_popularity_and_recency_part_is_the_full_formula_after_any_changes() -> None:
    rng = np.random.default_rng(7)
    system = _system([_item(random.Random(0), n) for n in range(300)], top_n=5)
    ranker = system._ranker
    cooc, recency, blend = system.cooccurrence, system.item_side.recency, system.item_side.blend
    for step in range(300):
        n = len(system.catalog)
        rows = rng.choice(n, int(rng.integers(0, 4)), replace=False)
        kind = rng.random()
        if kind < 0.6:
            cooc.item_counts[rows] += 1.0
        elif kind < 0.7:
            cooc.item_counts[rows] = rng.choice([0.5, 2.25, 1500.0, 3000.0, 0.0], rows.shape[0])  # seeded counts
        if rng.random() < 0.5:
            for row in rows.tolist():
                recency.add(row, int(rng.integers(0, 30 * DAY)))  # out of order too
        if rng.random() < 0.2:
            blend.update(rng.uniform(-1, 1, 4).tolist())
        if step % 50 == 49:
            system.add_item(_item(random.Random(step), n), ts=DAY)
        cooc.version += 1
        n = len(system.catalog)
        _, _, w_popularity, w_recency = blend.weights
        expected = w_popularity * _unit(np.log1p(cooc.item_counts[:n])) + w_recency * _unit(recency.values[:n])
        assert ranker._popularity_trending(n).tobytes() == expected.tobytes()


@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=True)
        | st.floats(width=32, min_value=-1e4, max_value=1e4)
        | st.integers(-(10**9), 10**9).map(lambda k: k / 2e6),  # exact halves at the 6th decimal, and near them
        max_size=50,
    ),
    st.integers(0, 8),
)
def test_round_exactly_is_pythons_round(values: list[float], digits: int) -> None:
    expected = [round(x, digits) for x in values]
    got = round_exactly(np.array(values, dtype=np.float64), digits)
    assert [struct.pack("<d", x) for x in got] == [struct.pack("<d", x) for x in expected]
