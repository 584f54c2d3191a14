from __future__ import annotations

import numpy as np
import pytest

from streamrec.models.dataset import Dataset
from streamrec.models.events import CatalogItem, Play, Rating, Search
from streamrec.models.simulate import (
    COMPLETED_THRESHOLD,
    DEFAULT_SEARCH_RATE,
    SEARCH_GAP_MAX_MS,
    VAGUE_QUERY_PROB,
    derive_plays,
    event_stream,
    simulate_searches,
    synthetic_duration_seconds,
    title_words,
)

CATALOG = (
    CatalogItem("1", "Star Wars", ("Action", "Sci-Fi"), duration_seconds=7260),
    CatalogItem("2", "The Empire Strikes Back", ("Action", "Sci-Fi"), duration_seconds=7440),
    CatalogItem("3", "Love Actually", ("Comedy", "Romance"), duration_seconds=8100),
    CatalogItem("4", "Love and Death", ("Comedy",), duration_seconds=5100),
    CatalogItem("5", "Love Story", ("Drama", "Romance"), duration_seconds=5940),
    CatalogItem("6", "Crazy, Stupid, Love", ("Comedy", "Romance"), duration_seconds=7080),
    CatalogItem("7", "Schindler's List", ("Drama", "War"), duration_seconds=11700),
    CatalogItem("8", "It", ("Horror",), duration_seconds=0),  # no distinctive word, no duration
    CatalogItem("9", "Seven (Se7en)", ("Crime", "Thriller"), duration_seconds=7620),
)
ITEMS = {item.item_id: item for item in CATALOG}


def many_ratings(n: int, seed: int = 1) -> list[Rating]:
    """n ratings by 50 users, ts increasing by 1-60 s, ratings spread over 1..5 stars."""
    rng = np.random.default_rng(seed)
    ts = 1_000_000_000_000 + np.cumsum(rng.integers(1_000, 60_000, n))
    return [
        Rating(
            f"t:r:{i}",
            f"u{rng.integers(50)}",
            str(rng.integers(1, 10)),
            float(rng.integers(1, 6)),
            int(ts[i]),
        )
        for i in range(n)
    ]


RATINGS = many_ratings(6_000)


def test_synthetic_durations_are_stable_plausible_runtimes() -> None:
    minutes = np.array([synthetic_duration_seconds(str(i)) / 60 for i in range(3_000)])
    assert synthetic_duration_seconds("42") == synthetic_duration_seconds("42")
    assert minutes.min() >= 70 and minutes.max() <= 200
    assert np.all(minutes == np.round(minutes))  # whole minutes
    assert 100 <= np.median(minutes) <= 116 and 100 <= minutes.mean() <= 120
    assert len(set(minutes)) > 50  # not a constant


def test_every_rating_gets_one_play_just_before_it() -> None:
    plays = derive_plays(RATINGS, CATALOG, seed=7)
    assert len(plays) == len(RATINGS)
    for rating, play in zip(RATINGS, plays, strict=True):
        assert (play.event_id, play.user_id, play.item_id, play.ts) == (
            f"{rating.event_id}:play",
            rating.user_id,
            rating.item_id,
            rating.ts,
        )
        duration = ITEMS[rating.item_id].duration_seconds or synthetic_duration_seconds(rating.item_id)
        assert 0 <= play.watched_seconds <= duration
        assert play.completed == (play.watched_seconds >= COMPLETED_THRESHOLD * duration)


def test_plays_are_deterministic_per_seed() -> None:
    assert derive_plays(RATINGS, CATALOG, seed=7) == derive_plays(RATINGS, CATALOG, seed=7)
    assert derive_plays(RATINGS, CATALOG, seed=7) != derive_plays(RATINGS, CATALOG, seed=8)


def test_completion_rises_with_the_rating() -> None:
    plays = derive_plays(RATINGS, CATALOG, seed=3)
    share: dict[float, list[float]] = {}
    for rating, play in zip(RATINGS, plays, strict=True):
        duration = ITEMS[rating.item_id].duration_seconds or synthetic_duration_seconds(rating.item_id)
        share.setdefault(rating.rating, []).append(play.watched_seconds / duration)
    means = [float(np.mean(share[stars])) for stars in (1.0, 2.0, 3.0, 4.0, 5.0)]
    assert means == sorted(means)
    # The documented means 0.30 / 0.90 for 1 / 5 stars, within sampling error of ~1200 draws each.
    assert abs(means[0] - 0.30) < 0.03 and abs(means[4] - 0.90) < 0.03
    completed = {stars: np.mean([s >= COMPLETED_THRESHOLD for s in share[stars]]) for stars in (1.0, 5.0)}
    assert completed[5.0] > 0.4 > 0.05 > completed[1.0]


def test_title_words_drop_possessives() -> None:
    assert title_words("Schindler's List") == ["schindler", "list"]
    assert title_words("Crazy, Stupid, Love") == ["crazy", "stupid", "love"]


def test_search_queries_name_the_title_or_its_genres() -> None:
    searches = simulate_searches(RATINGS, CATALOG, seed=5, rate=0.5)
    by_id = {r.event_id: r for r in RATINGS}
    vague = 0
    for search in searches:
        rating = by_id[search.event_id.removesuffix(":search")]
        item = ITEMS[rating.item_id]
        genres = {g.casefold() for g in item.genres}
        words = search.query.split()
        assert 1 <= len(words) <= 2
        if search.query in genres:
            vague += 1
        else:
            assert set(words) <= set(title_words(item.title)), (search.query, item.title)
        assert search.user_id == rating.user_id and search.clicked_item_id is None
    # "love" is in 4 of 9 titles: too common to be searched for; "it" is a stop word; "se7en" is an
    # alternate title in parentheses, not what people type.
    assert all(w not in {"love", "it", "the", "se7en"} for s in searches for w in s.query.split())
    # Vague (genre-only) queries: the documented share, plus the titles without distinctive words ("It").
    assert VAGUE_QUERY_PROB - 0.04 < vague / len(searches) < VAGUE_QUERY_PROB + 0.15


def test_searches_happen_at_the_documented_rate_just_before_the_watch() -> None:
    searches = simulate_searches(RATINGS, CATALOG, seed=5)
    assert abs(len(searches) / len(RATINGS) - DEFAULT_SEARCH_RATE) < 0.02
    index = {r.event_id: i for i, r in enumerate(RATINGS)}
    previous_of_user: dict[int, int] = {}
    last_seen: dict[str, int] = {}
    for i, rating in enumerate(RATINGS):
        if rating.user_id in last_seen:
            previous_of_user[i] = last_seen[rating.user_id]
        last_seen[rating.user_id] = rating.ts
    for search in searches:
        i = index[search.event_id.removesuffix(":search")]
        gap = RATINGS[i].ts - search.ts
        assert 1 <= gap <= SEARCH_GAP_MAX_MS
        if i in previous_of_user and RATINGS[i].ts - previous_of_user[i] > 1:
            assert search.ts > previous_of_user[i]  # after the user's previous watch


def test_search_simulation_is_deterministic_and_bounded() -> None:
    assert simulate_searches(RATINGS, CATALOG, seed=1) == simulate_searches(RATINGS, CATALOG, seed=1)
    assert simulate_searches(RATINGS, CATALOG, seed=1) != simulate_searches(RATINGS, CATALOG, seed=2)
    assert simulate_searches(RATINGS, CATALOG, seed=1, rate=0.0) == []
    assert len(simulate_searches(RATINGS, CATALOG, seed=1, rate=1.0)) == len(RATINGS)
    with pytest.raises(ValueError, match="search rate"):
        simulate_searches(RATINGS, CATALOG, seed=1, rate=1.5)


def test_ratings_of_unknown_items_get_plays_but_no_search() -> None:
    unknown = [Rating("x:r:1", "u", "404", 5.0, 1_000)]
    assert simulate_searches(unknown, CATALOG, seed=0, rate=1.0) == []
    (play,) = derive_plays(unknown, CATALOG, seed=0)
    assert play.watched_seconds <= synthetic_duration_seconds("404")


def small_dataset() -> Dataset:
    ratings = (
        Rating("d:r:1", "a", "1", 5.0, 1_000_000),
        Rating("d:r:2", "b", "2", 3.0, 1_000_000),  # same ts as r:1: file order decides
        Rating("d:r:3", "a", "7", 4.0, 1_005_000),
        Rating("d:r:4", "c", "3", 1.0, 2_000_000),
    )
    tags = (Search("d:t:1", "c", "space opera", 1_000_000, "1"),)
    return Dataset("d", CATALOG, ratings, tags)


def test_event_stream_orders_search_play_rating_and_keeps_file_order_on_ties() -> None:
    dataset = small_dataset()
    events = event_stream(dataset, plays=True, searches=True, seed=0, search_rate=1.0)

    assert [e.ts for e in events] == sorted(e.ts for e in events)
    ids = [e.event_id for e in events]
    for rating in dataset.ratings:
        rid = rating.event_id
        assert ids.index(f"{rid}:search") < ids.index(f"{rid}:play") < ids.index(rid)
    # Ties at ts 1_000_000: r:1's play and rating, then r:2's, then the dataset's own search.
    at_tie = [e.event_id for e in events if e.ts == 1_000_000]
    assert at_tie == ["d:r:1:play", "d:r:1", "d:r:2:play", "d:r:2", "d:t:1"]
    assert sum(isinstance(e, Search) for e in events) == 5
    assert event_stream(dataset, plays=True, searches=True, seed=0, search_rate=1.0) == events


def test_event_stream_options() -> None:
    dataset = small_dataset()
    only_ratings = event_stream(dataset, plays=False)
    assert only_ratings == list(dataset.ratings)
    with_plays = event_stream(dataset)
    assert sum(isinstance(e, Play) for e in with_plays) == 4 and not any(isinstance(e, Search) for e in with_plays)
    tags_only = event_stream(dataset, plays=False, searches=True, search_rate=0.0)
    assert [e.event_id for e in tags_only] == ["d:r:1", "d:r:2", "d:t:1", "d:r:3", "d:r:4"]
    # Turning searches on does not change the plays (independent random streams).
    plays_with = [e for e in event_stream(dataset, searches=True, search_rate=1.0) if isinstance(e, Play)]
    assert plays_with == [e for e in with_plays if isinstance(e, Play)]


def test_each_rating_is_simulated_the_same_whatever_else_is_simulated() -> None:
    """Same event id, same content: a tail or a reordered subset of the ratings gives each one the same play
    and the same search decision and query (the search's gap may only shrink to stay after the user's
    previous rating, which a subset may lack)."""
    full_plays = {p.event_id: p for p in derive_plays(RATINGS, CATALOG, seed=9)}
    tail = RATINGS[4_000:][::-1]
    assert all(full_plays[p.event_id] == p for p in derive_plays(tail, CATALOG, seed=9))

    full_searches = {s.event_id: s for s in simulate_searches(RATINGS, CATALOG, seed=9)}
    tail_searches = {s.event_id: s for s in simulate_searches(RATINGS[4_000:], CATALOG, seed=9)}
    assert set(tail_searches) == {i for i in full_searches if int(i.split(":")[2]) >= 4_000}
    assert all(s.query == full_searches[i].query and s.ts <= full_searches[i].ts for i, s in tail_searches.items())


def test_negative_and_large_seeds_work() -> None:
    assert len(derive_plays(RATINGS[:10], CATALOG, seed=-1)) == 10
    assert derive_plays(RATINGS[:10], CATALOG, seed=2**63) != derive_plays(RATINGS[:10], CATALOG, seed=-1)
