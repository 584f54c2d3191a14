"""Approximate top-N for large catalogs: exact numpy inner-product top-N versus usearch and faiss indexes,
on item vectors like the worker's (`StreamRecommender.item_vectors`) and profile-like queries. Recall is
tie-aware; timing is single-query, single-thread for every method, side by side in one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streamrec.benchmarks.workloads import CatalogSpec, zipf_weights

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
TOP_NS = (20, 100)
HNSW_EF = (16, 32, 64, 128, 256)
IVF_NPROBE = (1, 4, 16, 64)


def item_vectors(spec: CatalogSpec, dim: int, seed: int = 0) -> F32:
    """(items × dim) float32, as the worker scores with ([ALS factors, content]): the real content vectors
    (`models.catalog.content_vector`), with `dim - 64` ALS-like latent factors in front when dim > 64 (a seeded
    mixture of 200 Gaussian clusters, rows L2-normalised)."""
    from streamrec.models.catalog import CONTENT_DIM, content_vector

    content = np.stack([content_vector(item) for item in spec.items]).astype(np.float32)
    if dim <= CONTENT_DIM:
        return np.ascontiguousarray(content[:, :dim])
    k = dim - CONTENT_DIM
    rng = np.random.default_rng([seed, k, 5])
    centres = rng.normal(size=(200, k)).astype(np.float32)
    cluster = rng.integers(0, 200, size=len(spec.items))
    factors = centres[cluster] + 0.5 * rng.normal(size=(len(spec.items), k)).astype(np.float32)
    factors /= np.maximum(np.linalg.norm(factors, axis=1, keepdims=True), 1e-9)
    return np.ascontiguousarray(np.hstack([factors, content]).astype(np.float32))


def queries(vectors: F32, n: int, seed: int = 0, history: int = 20, decay: float = 0.97) -> F32:
    """`n` profile-like embeddings: the recency-decayed sum of `history` items drawn by Zipf popularity (what
    `learn_one` accumulates); they are scored by inner product, as in `rank_profile`."""
    rng = np.random.default_rng([seed, n, 6])
    popularity = np.empty(vectors.shape[0])
    popularity[rng.permutation(vectors.shape[0])] = zipf_weights(vectors.shape[0], 1.0)
    rows = rng.choice(vectors.shape[0], size=(n, history), p=popularity)
    weights = (decay ** np.arange(history)[::-1]).astype(np.float32) * rng.uniform(-0.25, 1.0, size=(n, history))
    out = np.einsum("qh,qhd->qd", weights.astype(np.float32), vectors[rows]).astype(np.float32)
    return np.ascontiguousarray(out)


def exact_top(vectors: F32, query: F32, n: int) -> I64:
    scores = vectors @ query
    part = np.argpartition(-scores, n)[:n]
    return part[np.argsort(-scores[part], kind="stable")].astype(np.int64)


def _exact_searcher(vectors: F32, n: int) -> Callable[[F32], I64]:
    def search(query: F32) -> I64:
        return exact_top(vectors, query, n)

    return search


def thresholds(vectors: F32, qs: F32, n: int) -> F32:
    """Per query, the exact n-th best score (computed once per dimension, shared by every index row)."""
    out = np.empty(len(qs), dtype=np.float32)
    for i, query in enumerate(qs):
        scores = vectors @ query
        out[i] = -np.partition(-scores, n - 1)[n - 1]
    return out


def recall(vectors: F32, qs: F32, found: Sequence[I64], n: int, nth_best: F32 | None = None) -> float:
    """Tie-aware recall@n: a found item counts if its exact score reaches the exact n-th best score (content
    vectors tie a lot, so id-set overlap would under-count)."""
    nth = thresholds(vectors, qs, n) if nth_best is None else nth_best
    hits = 0
    for query, ids, threshold in zip(qs, found, nth, strict=True):
        ids = ids[(ids >= 0) & (ids < vectors.shape[0])][:n]
        hits += int(np.sum(vectors[ids] @ query >= threshold - 1e-6))
    return hits / (n * len(qs))


def _time_per_query(search: Callable[[F32], I64], qs: F32) -> tuple[float, list[I64]]:
    for query in qs[: min(20, len(qs))]:  # warm caches
        search(query)
    started = time.perf_counter()
    results = [search(query) for query in qs]
    return (time.perf_counter() - started) / len(qs) * 1e6, results


@dataclass(frozen=True, slots=True)
class Exact:
    """The exact baseline of one dimension: µs/query per N and each query's exact N-th best score."""

    us: dict[int, float]
    nth: dict[int, F32]


def _row(
    dim: int,
    index: str,
    params: str,
    build_s: float,
    vectors: F32,
    qs: F32,
    runs: dict[int, tuple[float, list[I64]]],
    exact: Exact,
) -> dict[str, Any]:
    us = {n: runs[n][0] for n in TOP_NS}
    exact_us = exact.us
    return {
        "dim": dim,
        "index": index,
        "params": params,
        "build_s": build_s,
        "recall": {str(n): recall(vectors, qs, runs[n][1], n, exact.nth[n]) for n in TOP_NS},
        "us_per_query": us[max(TOP_NS)],
        "us_per_query_by_n": {str(n): us[n] for n in TOP_NS},
        "speedup": exact_us[max(TOP_NS)] / us[max(TOP_NS)],
        "speedup_by_n": {str(n): exact_us[n] / us[n] for n in TOP_NS},
    }


def run_ann(
    spec: CatalogSpec,
    *,
    dims: Sequence[int] = (64, 96),
    n_queries: int = 500,
    seed: int = 0,
    build_threads: int = 2,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Exact numpy top-N, then each installed library's indexes at several search efforts, per dimension.
    Queries run one at a time on one thread (one `rank` call per event in the worker, BLAS limited to one
    thread too); speed-up = exact µs/query ÷ approximate µs/query, measured in this process one after the other.
    Index builds use `build_threads` and are reported separately."""
    from threadpoolctl import threadpool_limits

    def note(text: str) -> None:
        if on_progress is not None:
            on_progress(text)

    rows: list[dict[str, Any]] = []
    libraries: dict[str, str] = {}
    with threadpool_limits(limits=1):
        for dim in dims:
            note(f"{dim}-d vectors")
            vectors = item_vectors(spec, dim, seed)
            qs = queries(vectors, n_queries, seed)
            exact_runs = {n: _time_per_query(_exact_searcher(vectors, n), qs) for n in TOP_NS}
            exact_us = Exact({n: exact_runs[n][0] for n in TOP_NS}, {n: thresholds(vectors, qs, n) for n in TOP_NS})
            rows.append(_row(dim, "exact (numpy)", "matvec + argpartition", 0.0, vectors, qs, exact_runs, exact_us))
            try:
                rows += _usearch_rows(dim, vectors, qs, exact_us, build_threads, note)
                libraries["usearch"] = _version("usearch")
            except ImportError:
                note("usearch not installed")
            try:
                rows += _faiss_rows(dim, vectors, qs, exact_us, build_threads, note)
                libraries["faiss-cpu"] = _version("faiss")
            except ImportError:
                note("faiss not installed")
    return {
        "status": "ok",
        "items": spec.size,
        "catalog": spec.name,
        "queries": n_queries,
        "libraries": libraries,
        "rows": rows,
    }


def _version(module: str) -> str:
    imported = __import__(module)
    return str(getattr(imported, "__version__", "?"))


def _usearch_rows(
    dim: int, vectors: F32, qs: F32, exact_us: Exact, threads: int, note: Callable[[str], None]
) -> list[dict[str, Any]]:
    from usearch.index import Index

    note(f"usearch HNSW build ({dim}-d)")
    index = Index(ndim=dim, metric="ip", dtype="f32", connectivity=16, expansion_add=128)
    started = time.perf_counter()
    index.add(np.arange(vectors.shape[0], dtype=np.int64), vectors, threads=threads)
    build_s = time.perf_counter() - started
    rows = []
    for ef in HNSW_EF:
        note(f"usearch ef={ef} ({dim}-d)")
        setattr(index, "expansion_search", ef)  # noqa: B010  (a property setter the stubs don't show)

        def searcher(n: int) -> Callable[[F32], I64]:
            def search(query: F32) -> I64:
                return np.asarray(index.search(query, n, threads=1).keys, dtype=np.int64)

            return search

        runs = {n: _time_per_query(searcher(n), qs) for n in TOP_NS}
        rows.append(_row(dim, "usearch HNSW", f"M=16 efC=128 ef={ef}", build_s, vectors, qs, runs, exact_us))
    return rows


def _faiss_rows(
    dim: int, vectors: F32, qs: F32, exact_us: Exact, threads: int, note: Callable[[str], None]
) -> list[dict[str, Any]]:
    import faiss

    rows = []
    faiss.omp_set_num_threads(threads)
    note(f"faiss HNSW build ({dim}-d)")
    hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 128
    started = time.perf_counter()
    hnsw.add(vectors)
    hnsw_build = time.perf_counter() - started
    note(f"faiss IVF build ({dim}-d)")
    nlist = max(16, min(1024, vectors.shape[0] // 40))  # faiss wants >= 39 training points per list
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    started = time.perf_counter()
    ivf.train(vectors)
    ivf.add(vectors)
    ivf_build = time.perf_counter() - started
    faiss.omp_set_num_threads(1)

    def searcher(index: Any, n: int) -> Callable[[F32], I64]:
        def search(query: F32) -> I64:
            _, ids = index.search(query[None, :], n)
            return np.asarray(ids[0], dtype=np.int64)

        return search

    for ef in HNSW_EF:
        note(f"faiss HNSW ef={ef} ({dim}-d)")
        hnsw.hnsw.efSearch = ef
        runs = {n: _time_per_query(searcher(hnsw, n), qs) for n in TOP_NS}
        rows.append(_row(dim, "faiss HNSWFlat", f"M=32 efC=128 ef={ef}", hnsw_build, vectors, qs, runs, exact_us))
    for nprobe in IVF_NPROBE:
        note(f"faiss IVF nprobe={nprobe} ({dim}-d)")
        ivf.nprobe = nprobe
        runs = {n: _time_per_query(searcher(ivf, n), qs) for n in TOP_NS}
        rows.append(
            _row(dim, "faiss IVFFlat", f"nlist={nlist} nprobe={nprobe}", ivf_build, vectors, qs, runs, exact_us)
        )
    return rows
