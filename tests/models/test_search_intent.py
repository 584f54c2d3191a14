"""The vectorised query matcher gives exactly the scores of matching word by word, row by row."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from streamrec.benchmarks.workloads import synthetic_catalog
from streamrec.models.catalog import Catalog
from streamrec.models.profile import SearchEntry
from streamrec.models.search_intent import fresh_searches, query_matches
from streamrec.models.text import genre_key, tokens


def reference_matches(catalog: Catalog, query: str) -> dict[int, float]:
    """query_matches as first written: one dict update per (word, row)."""
    n = max(len(catalog), 1)
    words = tokens(query)
    scores: dict[int, float] = {}
    genre_col = catalog.genre_col.get(genre_key(query))
    if genre_col is not None:
        for row in np.flatnonzero(catalog.genre_dist[:, genre_col]).tolist():
            scores[row] = 0.5
    if not words:
        return scores
    idf = {w: math.log(1 + n / (1 + len(catalog.token_rows.get(w, ())))) for w in words}
    total = sum(idf.values())
    hit: dict[int, float] = {}
    for w in words:
        for row in catalog.token_rows.get(w, ()):
            hit[row] = hit.get(row, 0.0) + idf[w] / total
    for row, value in hit.items():
        scores[row] = max(scores.get(row, 0.0), value)
    return scores


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    catalog = Catalog()
    for item in synthetic_catalog(3_000, seed=3):
        catalog.upsert(item)
    return catalog


def test_matches_equal_the_word_by_word_reference(catalog: Catalog) -> None:
    rng = random.Random(5)
    vocabulary = sorted(catalog.token_rows)
    queries = [item.title for item in rng.sample(catalog.items, 100)]
    queries += list(catalog.genres) + [g.lower() for g in catalog.genres]
    queries += [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 4))) for _ in range(200)]
    queries += ["", "zzzz-unknown", f"{vocabulary[0]} {vocabulary[0]}"]
    for query in queries:
        assert query_matches(catalog, query) == reference_matches(catalog, query), query
    assert any(len(query_matches(catalog, q)) > 100 for q in queries)  # large match sets are exercised


def test_fresh_searches_fade_by_half_lives_and_drop_below_one_percent() -> None:
    hour = 3_600_000
    searches = [SearchEntry("old", 0), SearchEntry("recent", 13 * hour), SearchEntry("now", 14 * hour)]
    fresh = list(fresh_searches(searches, 14 * hour, hour))  # "old": 2**-14, faded out
    assert [(search.query, decay) for search, decay in fresh] == [("recent", 0.5), ("now", 1.0)]
    later = list(fresh_searches(searches, 20 * hour, hour))  # 2**-7 is below 1%, 2**-6 above
    assert [search.query for search, _ in later] == ["now"]
    assert [decay for _, decay in fresh_searches([SearchEntry("future", 5 * hour)], 0, hour)] == [1.0]  # never above 1
