"""The catalog's batch upsert (a worker's start) against upserting one by one, and its content vectors against
the per-item feature hashing they replaced."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.models.catalog import CONTENT_DIM, Catalog, content_vector, content_vectors
from streamrec.models.events import CatalogItem
from streamrec.models.text import genre_key, tokens

_WEIGHTS = {"g": 1.0, "c": 1.5, "w": 0.5}


def _reference_vector(item: CatalogItem) -> npt.NDArray[np.float32]:
    """Feature by feature into one float32 vector, normalised with np.linalg.norm."""
    vec = np.zeros(CONTENT_DIM, dtype=np.float32)
    features = [("g", genre_key(g)) for g in item.genres]
    features += [("c", c) for c in item.creators]
    features += [("w", w) for w in tokens(item.title) if not w.isdigit()]
    for kind, value in features:
        h = zlib.crc32(f"{kind}:{value}".encode())
        vec[h % CONTENT_DIM] += _WEIGHTS[kind] * (1.0 if (h >> 16) & 1 else -1.0)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


_GENRES = ["Action", "Sci-Fi", "sci fi", "Drama", "Comedy", "Film-Noir", "Horror"]
_WORDS = ["star", "wars", "the", "love", "love", "night", "1977", "ii", "city", "of", "a", "story"]
_items = st.builds(
    CatalogItem,
    item_id=st.sampled_from([str(n) for n in range(12)]),
    title=st.lists(st.sampled_from(_WORDS), max_size=6).map(" ".join),
    genres=st.lists(st.sampled_from(_GENRES), max_size=4).map(tuple),
    creators=st.lists(st.sampled_from(["lucas", "allen", "scott", "mann"]), max_size=3).map(tuple),
)
_batches = st.lists(st.lists(st.tuples(_items, st.integers(0, 10**9)), max_size=15), min_size=1, max_size=4)


def _state(catalog: Catalog) -> dict[str, Any]:
    n = len(catalog)
    genre_width, creator_width = catalog.genre_idx.shape[1], catalog.creator_idx.shape[1]
    return {
        "items": catalog.items,
        "row_of": catalog.row_of,
        "row_of_hash": catalog.row_of_hash,
        "added_ts": catalog.added_ts,
        "hashes": catalog.hashes,
        "genres": catalog.genres,
        "genre_col": catalog.genre_col,
        "creator_ids": catalog.creator_ids,
        "creator_rows": {k: v for k, v in catalog.creator_rows.items() if v},
        "token_rows": {k: v for k, v in catalog.token_rows.items() if v},
        "title_tokens": catalog.title_tokens,
        "item_genre_cols": catalog.item_genre_cols,
        "version": catalog.version,
        "widths": (genre_width, catalog.genre_share.shape[1], creator_width),
        # bytes: equal floats bit for bit, not just close
        "content": catalog.content[:n].tobytes(),
        "genre_dist": catalog.genre_dist.tobytes(),
        "genre_idx": catalog.genre_idx[:n].tobytes(),
        "genre_share": catalog.genre_share[:n].tobytes(),
        "creator_idx": catalog.creator_idx[:n].tobytes(),
    }


def test_content_vectors_equal_the_per_item_hashing_bit_for_bit(items: list[CatalogItem]) -> None:
    bare = CatalogItem("bare", "1999", (), (), 0, None)
    everything = [*items, bare, CatalogItem("twice", "Love Love Love", ("Drama",))]
    vectors = content_vectors(everything)
    for item, vector in zip(everything, vectors, strict=True):
        assert vector.tobytes() == _reference_vector(item).tobytes()
        assert content_vector(item).tobytes() == vector.tobytes()
    assert not vectors[everything.index(bare)].any()  # no features: a zero vector, not NaNs


@settings(max_examples=150, deadline=None)
@given(batches=_batches)
def test_upserting_batches_leaves_the_state_of_upserting_one_by_one(
    batches: list[list[tuple[CatalogItem, int]]],
) -> None:
    one_by_one, batched = Catalog(), Catalog()
    for batch in batches:
        rows = [one_by_one.upsert(item, ts) for item, ts in batch]
        assert batched.upsert_many(batch) == rows
        assert _state(batched) == _state(one_by_one)


def test_a_replaced_item_is_found_by_its_new_metadata_only(items: list[CatalogItem]) -> None:
    catalog = Catalog()
    catalog.upsert_many([(items[0], 1), (items[1], 2)])
    renamed = CatalogItem(items[0].item_id, "Heat", ("Crime",), ("mann",), 7260, 1995)
    assert catalog.upsert_many([(renamed, 3), (items[2], 4)]) == [0, 2]
    assert catalog.token_rows["heat"] == {0} and 0 not in catalog.token_rows["star"]
    assert catalog.creator_rows["mann"] == {0} and not catalog.creator_rows["lucas"]
    assert catalog.item_genre_names(0) == ("Crime",)
    assert catalog.added_ts == [1, 2, 4]  # a row keeps the time it first arrived
