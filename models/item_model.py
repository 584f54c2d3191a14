"""The batch-trained item model artifact: ALS item factors (implicit) for the items seen in training.

The worker loads it and layers real-time signals on top; items it has no factors for are placed by content.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable
from dataclasses import dataclass

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

    @property
    def dim(self) -> int:
        return int(self.factors.shape[1])

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        meta = {"version": self.version, "trained_on": self.trained_on, "created_at_ms": self.created_at_ms}
        np.savez_compressed(
            buf,
            factors=self.factors,
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
            )


def content_only_model() -> ItemModel:
    return ItemModel(CONTENT_ONLY, (), np.zeros((0, 0), dtype=np.float32), 0, 0)


def train_item_model(
    interactions: Iterable[tuple[str, str, float]],
    *,
    factors: int = 32,
    iterations: int = 15,
    regularization: float = 0.05,
    seed: int = 7,
    now_ms: int | None = None,
) -> ItemModel:
    """ALS on (user_id, item_id, confidence) triples; repeated pairs add up."""
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
    version = f"als-{factors}f-{len(vals)}i-{created}"
    return ItemModel(version, tuple(items), item_factors, len(vals), created)
