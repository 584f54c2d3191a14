"""The catalog as dense arrays: items get a row on arrival and are recommendable at once (cold start by content)."""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from streamrec.models import ragged
from streamrec.models.events import CatalogItem
from streamrec.models.text import genre_key, hash64, tokens

CONTENT_DIM = 64
_T = TypeVar("_T", bound=np.generic)
_FEATURE_WEIGHTS = {"g": 1.0, "c": 1.5, "w": 0.5}


def _grow(array: npt.NDArray[np.float32], rows: int) -> npt.NDArray[np.float32]:
    if rows <= array.shape[0]:
        return array
    bigger = np.zeros((max(rows, 2 * array.shape[0]), *array.shape[1:]), dtype=array.dtype)
    bigger[: array.shape[0]] = array
    return bigger


def _write_padded(
    matrix: npt.NDArray[_T], rows: list[int], values: list[list[Any]], fill: Any, width: int
) -> npt.NDArray[_T]:
    """Write each of `values` into its row, padded with `fill`, growing the matrix (rows or width) when needed."""
    n_rows = max(matrix.shape[0], max(rows) + 1)
    if n_rows > matrix.shape[0]:
        n_rows = max(n_rows, 2 * matrix.shape[0])
    width = max(matrix.shape[1], width)
    if (n_rows, width) != matrix.shape:
        grown = np.full((n_rows, width), fill, dtype=matrix.dtype)
        grown[: matrix.shape[0], : matrix.shape[1]] = matrix
        matrix = grown
    row_index = np.array(rows, dtype=np.intp)
    matrix[row_index] = fill
    lengths = np.fromiter((len(v) for v in values), dtype=np.intp, count=len(values))
    if lengths.sum():
        flat_rows = np.repeat(row_index, lengths)
        flat_cols = ragged.positions(lengths)
        matrix[flat_rows, flat_cols] = [v for vs in values for v in vs]
    return matrix


@lru_cache(maxsize=1 << 18)  # a catalog's genres, creators and title words repeat across its items
def _feature(kind: str, value: str) -> tuple[int, float]:
    """A hashed feature: (dimension-free hash, signed weight)."""
    h = zlib.crc32(f"{kind}:{value}".encode())
    return h, _FEATURE_WEIGHTS[kind] * (1.0 if (h >> 16) & 1 else -1.0)


def _content_features(item: CatalogItem, words: list[str]) -> list[tuple[int, float]]:
    """An item's hashed features: genres, creators, title words."""
    features = [_feature("g", genre_key(g)) for g in item.genres]
    features += [_feature("c", c) for c in item.creators]
    features += [_feature("w", w) for w in words if not w.isdigit()]
    return features


def content_vectors(items: Sequence[CatalogItem], dim: int = CONTENT_DIM) -> npt.NDArray[np.float32]:
    """Signed feature hashing of genres, creators and title words, L2-normalised; one row per item.
    Exact in any order: the sums are of multiples of 0.5, which float32 and float64 both hold exactly."""
    return _content_vectors([_content_features(item, tokens(item.title)) for item in items], dim)


def content_vector(item: CatalogItem, dim: int = CONTENT_DIM) -> npt.NDArray[np.float32]:
    """One item's `content_vectors` row."""
    vector: npt.NDArray[np.float32] = content_vectors([item], dim)[0]
    return vector


def _content_vectors(features: list[list[tuple[int, float]]], dim: int) -> npt.NDArray[np.float32]:
    counts = np.fromiter(map(len, features), dtype=np.intp, count=len(features))
    flat = np.array([pair for pairs in features for pair in pairs], dtype=np.float64).reshape(-1, 2)
    cells = np.repeat(np.arange(len(features)) * dim, counts) + flat[:, 0].astype(np.int64) % dim
    sums = np.bincount(cells, weights=flat[:, 1], minlength=len(features) * dim)
    vectors = sums.astype(np.float32).reshape(len(features), dim)
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    nonzero = norms > 0
    vectors[nonzero] /= norms[nonzero, None]
    return vectors


class Catalog:
    """Items by row. Rows are never reused, so arrays indexed by row stay valid as the catalog grows. A removed item
    (`remove`) keeps its row and its counts but is no longer in the catalog: never ranked, never searched, its
    events rejected; publishing it again brings it back in the same row."""

    def __init__(self) -> None:
        self.items: list[CatalogItem] = []
        self.row_of: dict[str, int] = {}
        self.row_of_hash: dict[int, int] = {}
        self.added_ts: list[int] = []
        self.hashes: list[int] = []  # hash64 of each row's item id, as stored in profiles' watched sets
        self.genres: list[str] = []  # display names, by genre column
        self.genre_col: dict[str, int] = {}  # genre_key -> column
        self.creator_rows: dict[str, set[int]] = defaultdict(set)
        self.token_rows: dict[str, set[int]] = defaultdict(set)
        self.title_tokens: list[frozenset[str]] = []
        self.item_genre_cols: list[tuple[int, ...]] = []
        self._genre_names: list[tuple[str, ...]] = []  # item_genre_cols as display names (learning reads them)
        self.content = np.zeros((64, CONTENT_DIM), dtype=np.float32)
        self._genre_dist = np.zeros((64, 8), dtype=np.float32)  # each item's genre mix (sums to 1)
        # The same facts padded for the compiled re-ranker (-1 = none): genre columns, their shares, creator ids.
        self.genre_idx = np.full((64, 4), -1, dtype=np.int64)
        self.genre_share = np.zeros((64, 4), dtype=np.float64)
        self.creator_idx = np.full((64, 2), -1, dtype=np.int64)
        self.creator_ids: dict[str, int] = {}
        self.version = 0  # bumped on every change, so caches can tell when to refresh
        self._hash_index: tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]] | None = None
        self._token_arrays: dict[str, npt.NDArray[np.intp]] = {}
        self._token_arrays_version = -1
        self._genre_of_name: dict[str, int | None] = {}  # display name -> column (None: unknown), by genre_key
        self.removed: set[int] = set()  # rows of removed items
        self._live = np.ones(0, dtype=np.bool_)
        self._live_version = -1

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item_id: str) -> bool:
        row = self.row_of.get(item_id)
        return row is not None and not (self.removed and row in self.removed)

    def remove(self, item_ids: Sequence[str]) -> list[str]:
        """Remove items (a catalog tombstone); returns those that were in the catalog. Their rows stay, so the
        co-occurrence and trending counts (anonymous aggregates, the same on every worker) keep their shape."""
        removed: list[str] = []
        for item_id in item_ids:
            row = self.row_of.get(item_id)
            if row is None or row in self.removed:
                continue
            self._unindex(row)  # no longer found by its title words or creators
            self.title_tokens[row] = frozenset()
            self.removed.add(row)
            self._hash_index = None
            removed.append(item_id)
            self.version += 1
        return removed

    def live_rows(self) -> npt.NDArray[np.bool_]:
        """Per row, whether its item is in the catalog (not removed); cached until the catalog changes."""
        if self._live_version != self.version:
            live = np.ones(len(self.items), dtype=np.bool_)
            live[list(self.removed)] = False
            self._live, self._live_version = live, self.version
        return self._live

    def upsert(self, item: CatalogItem, ts: int = 0) -> int:
        """Add an item or replace its metadata; returns its row."""
        return self.upsert_many([(item, ts)])[0]

    def upsert_many(self, items: Sequence[tuple[CatalogItem, int]]) -> list[int]:
        """`[upsert(item, ts) for item, ts in items]`, the arrays written once for all (a worker's start reads
        the whole catalog: ~25 us an item one by one). The state is the same as upserting one by one."""
        rows: list[int] = []
        latest: dict[int, tuple[CatalogItem, tuple[int, ...]]] = {}  # each row's last version (and its genre
        # columns) in this batch: the one indexed
        genre_width = creator_width = 0  # the padded matrices' widths, as one by one
        for item, ts in items:
            row = self.row_of.get(item.item_id)
            if row is None:
                row = len(self.items)
                self.items.append(item)
                self.title_tokens.append(frozenset())
                self.item_genre_cols.append(())
                self._genre_names.append(())
                self.added_ts.append(ts)
                self.hashes.append(hash64(item.item_id))
                self.row_of[item.item_id] = row
                self.row_of_hash[self.hashes[row]] = row
                self._hash_index = None
            elif row not in latest:
                self._unindex(row)  # the version from before this batch
                if row in self.removed:  # published again after a removal
                    self.removed.discard(row)
                    self._hash_index = None
            # Every version gets its genre columns and creator ids, in arrival order, as one by one.
            cols = tuple(dict.fromkeys([self._genre_column(g) for g in item.genres]))
            genre_width = max(genre_width, len(cols))
            for creator in item.creators:
                self.creator_ids.setdefault(creator, len(self.creator_ids))
            creator_width = max(creator_width, len(item.creators))
            self.items[row] = item
            latest[row] = (item, cols)
            rows.append(row)
            self.version += 1
        if latest:
            self._index(list(latest), list(latest.values()), genre_width, creator_width)
        return rows

    def _unindex(self, row: int) -> None:
        old = self.items[row]
        for creator in old.creators:
            self.creator_rows[creator].discard(row)
        for tok in self.title_tokens[row]:
            self.token_rows[tok].discard(row)

    def _index(
        self, rows: list[int], items: list[tuple[CatalogItem, tuple[int, ...]]], genre_width: int, creator_width: int
    ) -> None:
        genre_cols: list[list[int]] = []
        creator_ids: list[list[int]] = []
        features: list[list[tuple[int, float]]] = []
        for row, (item, cols) in zip(rows, items, strict=True):
            self.item_genre_cols[row] = cols
            self._genre_names[row] = tuple(self.genres[col] for col in cols)  # a column's name never changes
            genre_cols.append(list(cols))
            creator_ids.append([self.creator_ids[c] for c in item.creators])
            for creator in item.creators:
                self.creator_rows[creator].add(row)
            words = tokens(item.title)
            features.append(_content_features(item, words))
            toks = frozenset(words)
            self.title_tokens[row] = toks
            for tok in toks:
                self.token_rows[tok].add(row)
        end = max(rows) + 1
        self.content = _grow(self.content, end)
        self.content[rows] = _content_vectors(features, CONTENT_DIM)
        self._genre_dist = _grow(self._genre_dist, end)
        if self._genre_dist.shape[1] < len(self.genres):
            wider = np.zeros((self._genre_dist.shape[0], 2 * len(self.genres)), dtype=np.float32)
            wider[:, : self._genre_dist.shape[1]] = self._genre_dist
            self._genre_dist = wider
        shares = [[1.0 / len(cols)] * len(cols) if cols else [] for cols in genre_cols]
        self._genre_dist[rows] = 0.0
        flat_rows = [row for row, cols in zip(rows, genre_cols, strict=True) for _ in cols]
        self._genre_dist[flat_rows, [c for cols in genre_cols for c in cols]] = [s for ss in shares for s in ss]
        self.genre_idx = _write_padded(self.genre_idx, rows, genre_cols, -1, genre_width)
        self.genre_share = _write_padded(self.genre_share, rows, shares, 0.0, genre_width)
        self.creator_idx = _write_padded(self.creator_idx, rows, creator_ids, -1, creator_width)

    def _genre_column(self, genre: str) -> int:
        col = self._genre_of_name.get(genre)
        if col is not None:
            return col
        key = genre_key(genre)
        col = self.genre_col.get(key)
        if col is None:
            col = len(self.genres)
            self.genre_col[key] = col
            self.genres.append(genre)
            self._genre_of_name.clear()  # a name unknown until now may be this genre
        self._genre_of_name[genre] = col
        return col

    def token_row_array(self, token: str) -> npt.NDArray[np.intp]:
        """`token_rows[token]` as an array (cached until the catalog changes): common words name thousands."""
        if self._token_arrays_version != self.version:
            self._token_arrays.clear()
            self._token_arrays_version = self.version
        rows = self._token_arrays.get(token)
        if rows is None:
            named = self.token_rows.get(token, ())
            rows = self._token_arrays[token] = np.fromiter(named, dtype=np.intp, count=len(named))
        return rows

    def item_genre_names(self, row: int) -> tuple[str, ...]:
        """The display names of an item's genres."""
        return self._genre_names[row]

    def genre_col_of(self, name: str) -> int | None:
        """`genre_col.get(genre_key(name))`, memoised (genre_key is slow and profiles name genres often)."""
        try:
            return self._genre_of_name[name]
        except KeyError:
            col = self._genre_of_name[name] = self.genre_col.get(genre_key(name))
            return col

    def hash_index(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
        """The rows' hashes sorted, and the row of each: row_of_hash as arrays (for vectorised lookups).
        Equal hashes keep row order, so the last of a run is the row `row_of_hash` holds. Removed items are left
        out: a watched item that was removed is no reason's evidence."""
        if self._hash_index is None:
            keys = np.array(self.hashes, dtype=np.int64)
            order = np.argsort(keys, kind="stable")
            if self.removed:
                order = order[self.live_rows()[order]]
            self._hash_index = (keys[order], order.astype(np.intp))
        return self._hash_index

    @property
    def genre_dist(self) -> npt.NDArray[np.float32]:
        """(items x genres): each row is that item's genre mix, uniform over its genres."""
        return self._genre_dist[: len(self.items), : len(self.genres)]

    def title(self, row: int) -> str:
        return self.items[row].title
