"""Approximate inner-product top-M over the item vectors (faiss IVF), kept in step with a growing catalog.

An inverted-file index: items are bucketed by their nearest of `nlist` trained centroids and a query scans only
the `nprobe` buckets nearest to it, so its cost grows with n / nlist × nprobe rather than n. New rows are added
and changed rows replaced in place; a full retrain happens only when the vectors change shape or most of them
change (a new item model), or the catalog has doubled since the last training. Recall against exact search is
measured in `benchmarks/ann.py`, and on the lists themselves in `benchmarks/candidates.py`.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
POINTS_PER_LIST = 40  # faiss warns below 39 training points per list
RETRAIN_SHARE = 0.25  # more rows changed than this: retrain rather than patch


class ItemIndex:
    def __init__(self, nprobe: int = 32, threads: int = 1) -> None:
        self.nprobe = nprobe
        self.threads = threads
        self._index: Any = None
        self._source: F32 | None = None  # the array last indexed (the recommender makes a new one per change)
        self._indexed = np.zeros((0, 0), dtype=np.float32)  # a copy, to find the rows that changed
        self._trained_n = 0
        self.rebuilds = 0
        # The worker builds the first index in a thread (training ~2 s at 100,000 items, without the GIL) while
        # its event loop goes on; a search meanwhile waits for it.
        self._lock = threading.Lock()

    def search(self, vectors: F32, queries: F32, m: int) -> I64:
        """(len(queries) × m) rows of `vectors` with the largest inner products, best first; -1 pads."""
        import faiss

        with self._lock:
            self._sync(vectors)
            faiss.omp_set_num_threads(self.threads)
            _, rows = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), m)
        return np.asarray(rows, dtype=np.int64)

    def _sync(self, vectors: F32) -> None:
        if vectors is self._source:
            return
        old = self._indexed
        n_old = old.shape[0]
        grown = vectors.shape[0] >= 2 * self._trained_n  # the buckets were trained on too few items
        if self._index is None or vectors.shape[1] != old.shape[1] or vectors.shape[0] < n_old or grown:
            self._build(vectors)
        else:
            changed = np.flatnonzero((vectors[:n_old] != old).any(axis=1))
            if changed.size > RETRAIN_SHARE * n_old:
                self._build(vectors)
            else:
                if changed.size:
                    self._index.remove_ids(changed.astype(np.int64))
                    self._index.add_with_ids(vectors[changed], changed.astype(np.int64))
                if vectors.shape[0] > n_old:
                    new = np.arange(n_old, vectors.shape[0], dtype=np.int64)
                    self._index.add_with_ids(np.ascontiguousarray(vectors[n_old:]), new)
                self._indexed = vectors.copy()
        self._source = vectors

    def _build(self, vectors: F32) -> None:
        import faiss

        n, dim = vectors.shape
        nlist = max(1, min(4 * int(np.sqrt(n)), n // POINTS_PER_LIST))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        data = np.ascontiguousarray(vectors, dtype=np.float32)
        faiss.omp_set_num_threads(2)  # training is the one heavy step: use the machine
        index.train(data)
        index.add_with_ids(data, np.arange(n, dtype=np.int64))
        index.nprobe = self.nprobe
        self._index = index
        self._indexed = data.copy()
        self._trained_n = n
        self.rebuilds += 1
