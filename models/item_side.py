"""What streamrec knows about the items, apart from any viewer: the catalog, the item model and the vectors built
from it, the real-time co-occurrence and trending counts, and the nearest-item index over the vectors.

The recommender owns it and changes it as items and events arrive; the rankers read it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from streamrec.models.blend import HIT_RANK, Blend
from streamrec.models.catalog import CONTENT_DIM, Catalog
from streamrec.models.cooccurrence import Cooccurrence, TrendingCounter
from streamrec.models.events import DAY_MS, CatalogItem
from streamrec.models.feedback import blend_hits, strongest
from streamrec.models.item_index import ItemIndex
from streamrec.models.item_model import ItemModel
from streamrec.models.item_signals import ItemSignal
from streamrec.models.params import StreamParams
from streamrec.models.recency import RecencyCounter
from streamrec.models.sparse_cooccurrence import SparseCooccurrence

LEADERS_REFRESH = 64  # views between two refreshes of `leading_items`
NO_ROWS = np.zeros(0, dtype=np.int64)
NO_SCORES = np.zeros(0, dtype=np.float64)


class ItemSide:
    def __init__(self, params: StreamParams, item_model: ItemModel) -> None:
        self.params = params
        self.catalog = Catalog()
        self.cooccurrence: Cooccurrence | SparseCooccurrence = Cooccurrence()
        self.trending = TrendingCounter(params.trending_window_days * DAY_MS)
        self.recency = RecencyCounter(params.recency_half_life_ms)
        self.blend = Blend((params.w_cooccurrence, params.w_embedding, params.w_popularity, params.w_recency))
        self.index = ItemIndex(params.ann_nprobe)  # searched only when ranking by candidates (large catalogs)
        self._vectors = np.zeros((0, CONTENT_DIM), dtype=np.float32)
        self._vectors_version = -1
        # Where the counts come from when they are the fold of the item-signal log: signals applied so far. None
        # while events change the counts directly (one process, no log).
        self.position: int | None = None
        self._scratch = np.zeros(0, dtype=np.float32)  # sparse co-occurrence sums, all zeros between calls
        self._leaders = np.zeros(0, dtype=np.intp)
        self._leaders_at = (-1, -1)  # (catalog size, recency version) when `_leaders` was computed
        # (co-occurrence, its version, catalog size) when the log1p of the top view count was taken, and that value
        self._popularity_top: tuple[object, int, int, float] = (None, -1, -1, 0.0)
        self.set_item_model(item_model)

    # -- the item model ----------------------------------------------------------------------------------
    def set_item_model(self, model: ItemModel) -> None:
        """Swap in a new artifact: new item factors, and its co-occurrence snapshot as a warm start."""
        self.item_model = model
        self._model_index = {item_id: pos for pos, item_id in enumerate(model.item_ids)}
        self._vectors_version = -1
        self._seed_from_model()

    def _seed_from_model(self, item_id: str | None = None) -> None:
        """Seed counts for every model item in the catalog, or just for one that has just arrived."""
        model = self.item_model
        if model.item_counts.size == 0:
            return
        to_row = np.array([self.catalog.row_of.get(i, -1) for i in model.item_ids], dtype=np.intp)
        sources = np.flatnonzero(to_row >= 0)
        if item_id is not None:
            sources = np.array([self._model_index[item_id]], dtype=np.intp)
        if sources.size == 0:
            return
        neighbours = model.neighbours[sources]
        neighbour_rows = np.where(neighbours >= 0, to_row[np.maximum(neighbours, 0)], -1)
        self.cooccurrence.seed(
            to_row[sources], neighbour_rows, model.neighbour_counts[sources], model.item_counts[sources]
        )

    @property
    def vectors(self) -> npt.NDArray[np.float32]:
        """Rows: [ALS factors (zeros where untrained), content]; refreshed when the catalog or model changes."""
        if self._vectors_version != self.catalog.version:
            n = len(self.catalog)
            k = self.item_model.dim
            vectors = np.zeros((n, k + CONTENT_DIM), dtype=np.float32)
            vectors[:, k:] = self.catalog.content[:n]
            for src, item_id in enumerate(self.item_model.item_ids):
                row = self.catalog.row_of.get(item_id)
                if row is not None:
                    vectors[row, :k] = self.item_model.factors[src]
            self._vectors = vectors
            self._vectors_version = self.catalog.version
        return self._vectors

    # -- the catalog ---------------------------------------------------------------------------------------
    def add_items(self, items: Sequence[tuple[CatalogItem, int]]) -> None:
        """Add items or replace their metadata. Past `exact_max_items` the co-occurrence turns sparse. Items the
        artifact knows are seeded once the batch is in, with the neighbours of the whole batch."""
        model_index = self._model_index
        new_known = [i.item_id for i, _ in items if i.item_id in model_index and i.item_id not in self.catalog]
        rows = self.catalog.upsert_many(items)
        if len(self.catalog) > self.params.exact_max_items:
            self.use_sparse_cooccurrence()
        end = max(rows, default=-1) + 1
        self.cooccurrence.ensure(end)
        self.trending.ensure(end)
        self.recency.ensure(end)
        for item_id in dict.fromkeys(new_known):  # the artifact knew them before the catalog did
            self._seed_from_model(item_id)

    def remove_items(self, item_ids: Sequence[str]) -> list[str]:
        """Take items out of the catalog (`Catalog.remove`); returns those that were in it. Their counts stay:
        the fold of the item-signal log must not depend on when each worker saw the removal."""
        return self.catalog.remove(item_ids)

    def use_sparse_cooccurrence(self) -> None:
        """Keep only the non-zero co-occurrence counts (what a large catalog needs: `cooccurrence_slots` of them)."""
        if isinstance(self.cooccurrence, Cooccurrence):
            self.cooccurrence = SparseCooccurrence.from_dense(self.cooccurrence, self.params.cooccurrence_slots)

    @property
    def sparse(self) -> bool:
        return isinstance(self.cooccurrence, SparseCooccurrence)

    # -- events ----------------------------------------------------------------------------------------------
    def advance_trending(self, now: int) -> int:
        """Move the trending window on to `now` (never back); returns the window's time."""
        self.trending.advance(now)
        return self.trending.now

    def record_consumption(self, row: int, recent_rows: list[int], ts: int) -> None:
        """A viewer's first consumption of `row`: paired with what they consumed recently (`recent_rows`, -1 for
        items the catalog lacks), and counted as a view at `ts`."""
        self.cooccurrence.add_pairs(row, recent_rows)
        self.trending.add(row, ts)
        self.recency.add(row, ts)

    def feedback(
        self,
        row: int,
        history: npt.NDArray[np.intp] | None,
        weights: npt.NDArray[np.float32],
        watched: set[int],
        embedding: npt.NDArray[np.float32] | None,
        m: int,
    ) -> tuple[int, ...]:
        """A viewer's first consumption of `row` as feedback on the blend, from their state before it (recent
        history rows and weights, `watched` hashes, profile embedding): the blends of the grid that would have ranked
        it among their first `HIT_RANK` against the strongest contenders the viewer has not watched, the `m` best of
        each component (`leading_items`, and co-occurrence with the history), every value as the rankers scale it."""
        n = len(self.catalog)
        scratch: npt.NDArray[np.float32] | None = None
        if history is None:
            sums, touched, best, top = self._scratch, NO_ROWS, NO_ROWS, 0.0
        else:
            cooccurrence = self.cooccurrence
            if isinstance(cooccurrence, Cooccurrence):
                offsets = np.array([0, history.shape[0]], dtype=np.intp)
                sums, touched = cooccurrence.similarity_sums(history, weights, offsets)[0], NO_ROWS
            else:
                if self._scratch.shape[0] < n:
                    self._scratch = np.zeros(n, dtype=np.float32)
                sums = scratch = self._scratch
                touched = cooccurrence.accumulate(history, weights, sums).astype(np.int64, copy=False)
            # No neighbour touched: nothing is positive (an empty `touched` would mean every row to `strongest`).
            best, top = strongest(sums, touched, m) if touched.shape[0] or scratch is None else (NO_ROWS, 0.0)
        candidates = np.concatenate((np.array([row], dtype=np.int64), self.leading_items(m), best))
        hashes = self.catalog.hashes
        unwatched = np.array([hashes[c] not in watched for c in candidates.tolist()], dtype=np.bool_)
        blend, recency = self.blend, self.recency
        scores = NO_SCORES
        if blend.weighs_embedding and embedding is not None:
            norm = float(np.sqrt(embedding.dot(embedding)))
            if norm > 0:
                scores = (self.vectors[candidates] @ embedding / norm).astype(np.float64)
        counts = self.cooccurrence.item_counts
        popularity_top = self._log_top_count(n)
        hits = blend_hits(
            candidates, unwatched, sums, top, scores, counts, popularity_top, recency.values, recency.top,
            blend.experts, HIT_RANK,
        )  # fmt: skip
        if scratch is not None:
            scratch[touched] = 0.0
        return hits

    def _log_top_count(self, n: int) -> float:
        """log1p of the highest view count of the first `n` rows, kept while the counts stay as they are (a
        batch's learning leaves them to the fold: one pass over a large catalog a batch, not one a consumption)."""
        cooccurrence = self.cooccurrence
        held, version, size, top = self._popularity_top
        if held is not cooccurrence or version != cooccurrence.version or size != n:
            top = float(np.log1p(cooccurrence.item_counts[:n].max(initial=0.0)))
            self._popularity_top = (cooccurrence, cooccurrence.version, n, top)
        return top

    def leading_items(self, m: int) -> npt.NDArray[np.intp]:
        """The `m` most popular items and the `m` with the most recent views, refreshed every `LEADERS_REFRESH`
        views (they move slowly: two partial sorts of the catalog per view would cost more than the rest)."""
        n = len(self.catalog)
        if self._leaders_at[0] == n and self.recency.version < self._leaders_at[1] + LEADERS_REFRESH:
            return self._leaders
        k = min(m, n)
        leaders = [
            np.argpartition(-values, k - 1)[:k]
            for values in (self.cooccurrence.item_counts[:n], self.recency.values[:n])
            if k
        ]
        self._leaders = np.unique(np.concatenate(leaders)) if leaders else np.zeros(0, dtype=np.intp)
        self._leaders_at = (n, self.recency.version)
        return self._leaders

    def learn_blend(self, hits: Sequence[int]) -> None:
        """A consumption's feedback on the blend (`blend.Blend.update`), unless the blend is fixed."""
        if self.params.learn_blend:
            self.blend.update(hits)

    def apply(self, signal: ItemSignal, position: int) -> None:
        """Fold in the item-signal log's signal at `position` (positions count from 1): what `learn_one` does to the
        item side when there is no log."""
        self.advance_trending(signal.ts)
        if signal.item_id is not None:
            row_of = self.catalog.row_of
            row = row_of.get(signal.item_id)
            if row is not None:  # an item the catalog lacks can't be counted (yet): its signal teaches nothing
                self.record_consumption(row, [row_of.get(item, -1) for item in signal.recent], signal.ts)
        if signal.feedback:
            self.learn_blend(signal.feedback)
        self.position = position
