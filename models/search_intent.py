"""A search becomes a short-term intent: the query matched against titles and genres, decaying with time."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from streamrec.models.catalog import Catalog
from streamrec.models.profile import SearchEntry
from streamrec.models.text import genre_key, tokens

FADED = 0.01  # a search weighing less than this no longer counts


def query_matches(catalog: Catalog, query: str) -> dict[int, float]:
    """Rows that the query's words name, scored in [0, 1]: IDF-weighted title words, plus a named genre."""
    n = max(len(catalog), 1)
    words = tokens(query)
    scores: dict[int, float] = {}
    genre_col = catalog.genre_col.get(genre_key(query))
    if genre_col is not None:
        scores = dict.fromkeys(np.flatnonzero(catalog.genre_dist[:, genre_col]).tolist(), 0.5)
    if not words:
        return scores
    idf = {w: math.log(1 + n / (1 + len(catalog.token_rows.get(w, ())))) for w in words}
    total = sum(idf.values())
    # Vectorised: a common word names thousands of rows in a large catalog. Each row's words are added in
    # the query's order, in float64, so the values are those of adding them one by one.
    hit = np.zeros(n, dtype=np.float64)
    for w in words:
        named_rows = catalog.token_row_array(w)
        if named_rows.size:
            hit[named_rows] += idf[w] / total
    rows = np.flatnonzero(hit)  # every named row: an idf is positive
    if not rows.size:
        return scores
    values = hit[rows]
    if genre_col is not None:
        values = np.where(catalog.genre_dist[rows, genre_col] > 0, np.maximum(values, 0.5), values)
    scores.update(zip(rows.tolist(), values.tolist(), strict=True))
    return scores


def fresh_searches(
    searches: Sequence[SearchEntry], now: int, half_life_ms: float
) -> Iterator[tuple[SearchEntry, float]]:
    """Each search with its weight at `now` (halved every `half_life_ms`), leaving out those faded below 1%."""
    for search in searches:
        decay = 0.5 ** (max(now - search.ts, 0) / half_life_ms)
        if decay >= FADED:
            yield search, decay


def intent_scores(
    catalog: Catalog, searches: Sequence[SearchEntry], now: int, half_life_ms: float
) -> tuple[npt.NDArray[np.float32], list[tuple[str, dict[int, float]]]]:
    """Decayed intent over all items, and each recent query's matches (for the reasons)."""
    intent = np.zeros(len(catalog), dtype=np.float32)
    per_query: list[tuple[str, dict[int, float]]] = []
    for search, decay in fresh_searches(searches, now, half_life_ms):
        matches = query_matches(catalog, search.query)
        if matches:
            rows = np.fromiter(matches.keys(), dtype=np.intp, count=len(matches))
            vals = np.fromiter(matches.values(), dtype=np.float32, count=len(matches))
            np.maximum.at(intent, rows, decay * vals)
            per_query.append((search.query, matches))
    return intent, per_query
