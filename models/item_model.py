"""The batch-trained item model artifact: ALS item factors (implicit) for the items seen in training.

The worker loads it and layers real-time signals on top; items it has no factors for are placed by content.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import orjson

CONTENT_ONLY = "content-only"


@dataclass(frozen=True, slots=True)
class ItemModel:
    version: str
    item_ids: tuple[str, ...]
    factors: npt.NDArray[np.float32]  # (len(item_ids) x k), rows L2-normalised
    trained_on: int  # interactions used
    created_at_ms: int
    # Batch snapshot of the real-time item signals, so a fresh worker starts warm: per item, its top
    # co-watched neighbours (indices into item_ids, -1 = none) with counts, and its interaction count.
    neighbours: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int32))
    neighbour_counts: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    item_counts: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    @property
    def dim(self) -> int:
        return int(self.factors.shape[1])

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        meta = {"version": self.version, "trained_on": self.trained_on, "created_at_ms": self.created_at_ms}
        np.savez_compressed(
            buf,
            factors=self.factors,
            neighbours=self.neighbours,
            neighbour_counts=self.neighbour_counts,
            item_counts=self.item_counts,
            item_ids=np.array(self.item_ids, dtype=object).astype(str),
            meta=np.frombuffer(orjson.dumps(meta), dtype=np.uint8),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes) -> ItemModel:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            meta = orjson.loads(data["meta"].tobytes())
            return cls(
                version=meta["version"],
                item_ids=tuple(str(i) for i in data["item_ids"]),
                factors=data["factors"].astype(np.float32),
                trained_on=int(meta["trained_on"]),
                created_at_ms=int(meta["created_at_ms"]),
                neighbours=data["neighbours"].astype(np.int32),
                neighbour_counts=data["neighbour_counts"].astype(np.float32),
                item_counts=data["item_counts"].astype(np.float32),
            )


def content_only_model() -> ItemModel:
    return ItemModel(CONTENT_ONLY, (), np.zeros((0, 0), dtype=np.float32), 0, 0)


def cooccurrence_snapshot(
    histories: Iterable[list[int]], n_items: int, window: int, top_k: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Each user's items in time order, paired as the worker pairs them online (each with the `window` before)."""
    from scipy.sparse import coo_matrix

    rows: list[int] = []
    cols: list[int] = []
    counts = np.zeros(n_items, dtype=np.float32)
    for history in histories:
        for pos, item in enumerate(history):
            counts[item] += 1
            before = history[max(0, pos - window) : pos]
            rows.extend([item] * len(before))
            cols.extend(before)
    pairs = coo_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_items, n_items)).tocsr()
    pairs = (pairs + pairs.T).tocsr()
    k = min(top_k, n_items)
    neighbours = np.full((n_items, k), -1, dtype=np.int32)
    neighbour_counts = np.zeros((n_items, k), dtype=np.float32)
    for item in range(n_items):
        start, end = pairs.indptr[item], pairs.indptr[item + 1]
        idx, val = pairs.indices[start:end], pairs.data[start:end]
        best = np.argsort(-val, kind="stable")[:k]
        neighbours[item, : best.size] = idx[best]
        neighbour_counts[item, : best.size] = val[best]
    return neighbours, neighbour_counts, counts


def train_item_model(
    interactions: Iterable[tuple[str, str, float]],
    *,
    cooccurrence_window: int = 50,
    neighbours: int = 100,
    factors: int = 32,
    iterations: int = 15,
    regularization: float = 0.05,
    seed: int = 7,
    now_ms: int | None = None,
) -> ItemModel:
    """ALS on time-ordered (user_id, item_id, confidence) triples (repeats add up), plus a co-occurrence snapshot."""
    from implicit.als import AlternatingLeastSquares
    from scipy.sparse import csr_matrix
    from threadpoolctl import threadpool_limits

    users: dict[str, int] = {}
    items: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for user_id, item_id, confidence in interactions:
        rows.append(users.setdefault(user_id, len(users)))
        cols.append(items.setdefault(item_id, len(items)))
        vals.append(confidence)
    created = now_ms if now_ms is not None else int(time.time() * 1000)
    if not items:
        return content_only_model()
    matrix = csr_matrix((np.array(vals, dtype=np.float32), (rows, cols)), shape=(len(users), len(items)))
    with threadpool_limits(1, "blas"):  # implicit's own threads do the work; nested BLAS threads thrash
        model = AlternatingLeastSquares(
            factors=factors, iterations=iterations, regularization=regularization, random_state=seed
        )
        model.fit(matrix, show_progress=False)
    item_factors = np.asarray(model.item_factors, dtype=np.float32)
    norms = np.linalg.norm(item_factors, axis=1, keepdims=True)
    item_factors = item_factors / np.maximum(norms, 1e-9)
    histories: dict[int, list[int]] = {}
    seen: set[tuple[int, int]] = set()
    for user, item in zip(rows, cols, strict=True):
        if (user, item) not in seen:  # the worker pairs an item once per viewer, on first consumption
            seen.add((user, item))
            histories.setdefault(user, []).append(item)
    nbrs, nbr_counts, item_counts = cooccurrence_snapshot(
        histories.values(), len(items), cooccurrence_window, neighbours
    )
    version = f"als-{factors}f-{len(vals)}i-{created}"
    return ItemModel(version, tuple(items), item_factors, len(vals), created, nbrs, nbr_counts, item_counts)


def aligned(model: ItemModel, to: ItemModel) -> ItemModel:
    """`model` with its factors turned to match `to`'s on the items both know (orthogonal Procrustes).

    ALS factors are only defined up to a rotation, and a retrained model comes out turned at random. A viewer's
    profile keeps a sum of the item vectors it consumed under the model it was learnt with; turning the new
    factors onto the old ones keeps those sums meaningful after a swap, and changes nothing among the new
    factors (a rotation keeps every dot product and norm). Unchanged when the two share no item or differ in size.
    """
    index = {item_id: pos for pos, item_id in enumerate(to.item_ids)}
    shared = [(pos, index[item_id]) for pos, item_id in enumerate(model.item_ids) if item_id in index]
    if not shared or model.dim != to.dim:
        return model
    new_rows, old_rows = (np.array(rows, dtype=np.intp) for rows in zip(*shared, strict=True))
    u, _, vt = np.linalg.svd(model.factors[new_rows].T.astype(np.float64) @ to.factors[old_rows], full_matrices=False)
    rotation = (u @ vt).astype(np.float32)
    return replace(model, factors=model.factors @ rotation)
