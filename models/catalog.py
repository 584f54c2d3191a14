"""The catalog as dense arrays: items get a row on arrival and are recommendable at once (cold start by content)."""

from __future__ import annotations

import zlib
from collections import defaultdict
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from models.events import CatalogItem
from models.text import genre_key, hash64, tokens

CONTENT_DIM = 64
_T = TypeVar("_T", bound=np.generic)
_FEATURE_WEIGHTS = {"g": 1.0, "c": 1.5, "w": 0.5}


def _grow(array: npt.NDArray[np.float32], rows: int) -> npt.NDArray[np.float32]:
    if rows <= array.shape[0]:
        return array
    bigger = np.zeros((max(rows, 2 * array.shape[0]), *array.shape[1:]), dtype=array.dtype)
    bigger[: array.shape[0]] = array
    return bigger


def _padded_row(matrix: npt.NDArray[_T], row: int, values: list[Any], fill: Any) -> npt.NDArray[_T]:
    """Write `values` into `row`, padded with `fill`, growing the matrix (rows or width) when needed."""
    rows = max(matrix.shape[0], 2 * matrix.shape[0] if row >= matrix.shape[0] else 0, row + 1)
    width = max(matrix.shape[1], len(values))
    if (rows, width) != matrix.shape:
        grown = np.full((rows, width), fill, dtype=matrix.dtype)
        grown[: matrix.shape[0], : matrix.shape[1]] = matrix
        matrix = grown
    matrix[row] = fill
    matrix[row, : len(values)] = values
    return matrix


def content_vector(item: CatalogItem, dim: int = CONTENT_DIM) -> npt.NDArray[np.float32]:
    """Signed feature hashing of genres, creators and title words, L2-normalised."""
    vec = np.zeros(dim, dtype=np.float32)
    features = [("g", genre_key(g)) for g in item.genres]
    features += [("c", c) for c in item.creators]
    features += [("w", w) for w in tokens(item.title) if not w.isdigit()]
    for kind, value in features:
        h = zlib.crc32(f"{kind}:{value}".encode())
        vec[h % dim] += _FEATURE_WEIGHTS[kind] * (1.0 if (h >> 16) & 1 else -1.0)
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else vec


class Catalog:
    """Items by row. Rows are never reused, so arrays indexed by row stay valid as the catalog grows."""

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

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.row_of

    def upsert(self, item: CatalogItem, ts: int = 0) -> int:
        """Add an item or replace its metadata; returns its row."""
        row = self.row_of.get(item.item_id)
        if row is None:
            row = len(self.items)
            self.items.append(item)
            self.title_tokens.append(frozenset())
            self.item_genre_cols.append(())
            self.added_ts.append(ts)
            self.hashes.append(hash64(item.item_id))
            self.row_of[item.item_id] = row
            self.row_of_hash[self.hashes[row]] = row
            self._hash_index = None
        else:
            self._unindex(row)
            self.items[row] = item
        self._index(row, item)
        self.version += 1
        return row

    def _unindex(self, row: int) -> None:
        old = self.items[row]
        for creator in old.creators:
            self.creator_rows[creator].discard(row)
        for tok in self.title_tokens[row]:
            self.token_rows[tok].discard(row)

    def _index(self, row: int, item: CatalogItem) -> None:
        cols = tuple(dict.fromkeys(self._genre_column(g) for g in item.genres))
        self.item_genre_cols[row] = cols
        self.content = _grow(self.content, row + 1)
        self.content[row] = content_vector(item)
        self._genre_dist = _grow(self._genre_dist, row + 1)
        if self._genre_dist.shape[1] < len(self.genres):
            wider = np.zeros((self._genre_dist.shape[0], 2 * len(self.genres)), dtype=np.float32)
            wider[:, : self._genre_dist.shape[1]] = self._genre_dist
            self._genre_dist = wider
        self._genre_dist[row] = 0.0
        if cols:
            self._genre_dist[row, list(cols)] = 1.0 / len(cols)
        creator_ids = [self.creator_ids.setdefault(c, len(self.creator_ids)) for c in item.creators]
        self.genre_idx = _padded_row(self.genre_idx, row, list(cols), -1)
        self.genre_share = _padded_row(self.genre_share, row, [1.0 / len(cols)] * len(cols) if cols else [], 0.0)
        self.creator_idx = _padded_row(self.creator_idx, row, creator_ids, -1)
        for creator in item.creators:
            self.creator_rows[creator].add(row)
        toks = frozenset(tokens(item.title))
        self.title_tokens[row] = toks
        for tok in toks:
            self.token_rows[tok].add(row)

    def _genre_column(self, genre: str) -> int:
        key = genre_key(genre)
        col = self.genre_col.get(key)
        if col is None:
            col = len(self.genres)
            self.genre_col[key] = col
            self.genres.append(genre)
            self._genre_of_name.clear()  # a name unknown until now may be this genre
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
        genres = self.genres
        return tuple(genres[col] for col in self.item_genre_cols[row])

    def genre_col_of(self, name: str) -> int | None:
        """`genre_col.get(genre_key(name))`, memoised (genre_key is slow and profiles name genres often)."""
        try:
            return self._genre_of_name[name]
        except KeyError:
            col = self._genre_of_name[name] = self.genre_col.get(genre_key(name))
            return col

    def hash_index(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
        """The rows' hashes sorted, and the row of each: row_of_hash as arrays (for vectorised lookups).
        Equal hashes keep row order, so the last of a run is the row `row_of_hash` holds."""
        if self._hash_index is None:
            keys = np.array(self.hashes, dtype=np.int64)
            order = np.argsort(keys, kind="stable")
            self._hash_index = (keys[order], order.astype(np.intp))
        return self._hash_index

    @property
    def genre_dist(self) -> npt.NDArray[np.float32]:
        """(items x genres): each row is that item's genre mix, uniform over its genres."""
        return self._genre_dist[: len(self.items), : len(self.genres)]

    def title(self, row: int) -> str:
        return self.items[row].title
