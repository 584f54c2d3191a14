"""EASE baseline (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"), refitted periodically.

Every `every` interactions: X = the binary viewer x item matrix of all interactions so far, over the items with at
least one; P = (X^T X + λI)^-1, B = I - P diag(1/diag(P)) (zero diagonal). A viewer's scores are x_u B with
their current row, so an interaction counts in their next list at once; items newer than the fit score 0. λ = 500
is the paper's value for ML-20M, untuned here. The reason names the watched item with the largest positive term
B[j, i] of the score; items without a positive score are topped up by popularity.

Cost: the fit is a k x k Cholesky inverse in float32 (k items with interactions): k^2 * 4 bytes of memory (160 MB
at 6,400 items) and O(k^3) time. Fine for MovieLens 100K (1,682 items) and KuaiRand-Pure; past ~10,000 items the
memory and the refit time grow fast (cubic).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse
from scipy.linalg import lapack

from streamrec.models import ragged
from streamrec.models.base import Recommendation
from streamrec.models.baselines import top_n_indices
from streamrec.models.interaction_baseline import InteractionBaseline, Scored, ViewerItems

__all__ = ["EASE", "ease_weights"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

_SYMMETRISE_ROWS = 512  # rows per block when mirroring the inverse's triangle (bounds the temporary copy)


def ease_weights(gram: F32, l2: float) -> F32:
    """B from the Gram matrix X^T X (float32, overwritten: B is returned in its memory)."""
    k = gram.shape[0]
    gram[np.diag_indices(k)] += np.float32(l2)
    # X^T X + λI is symmetric positive definite: Cholesky then its inverse, in place (half the work of LU).
    # The C-ordered matrix seen transposed is Fortran-ordered, and equal to itself.
    factor, info = lapack.spotrf(gram.T, lower=0, overwrite_a=1, clean=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky failed (info {info})")
    inverse, info = lapack.spotri(factor, lower=0, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse failed (info {info})")
    p: F32 = inverse.T  # gram's memory, C-ordered; only its lower triangle (j <= i) is set
    _mirror_lower(p)
    diagonal = p.diagonal().copy()
    p /= -diagonal  # column j divided by -P_jj
    p[np.diag_indices(k)] = 0.0
    return p


def _mirror_lower(matrix: F32) -> None:
    """Copy the lower triangle onto the upper one, in place, a block of rows at a time."""
    k = matrix.shape[0]
    for start in range(0, k, _SYMMETRISE_ROWS):
        stop = min(start + _SYMMETRISE_ROWS, k)
        rows = np.arange(start, stop)[:, None]
        upper = np.arange(k)[None, :] > rows
        # (start..stop) x k, read from the lower triangle only, which no block writes
        mirrored = np.ascontiguousarray(matrix[:, start:stop].T)
        np.copyto(matrix[start:stop], mirrored, where=upper)


class EASE(InteractionBaseline):
    """EASE item-item weights refitted every `every` interactions; viewers' rows current at every event."""

    name = "ease"

    def __init__(self, every: int = 5000, l2: float = 500.0) -> None:
        if every < 1:
            raise ValueError("every must be >= 1")
        if l2 <= 0:
            raise ValueError("l2 must be > 0")
        super().__init__()
        self.every = every
        self.l2 = l2
        self._since_refit = 0
        self._weights: F32 | None = None  # B over the fitted items
        self._fitted: I64 = np.empty(0, dtype=np.int64)  # catalog index of each fitted column, ascending
        self._column: I64 = np.empty(0, dtype=np.int64)  # catalog index -> fitted column, -1 if not fitted

    def _on_interaction(self, viewer: ViewerItems, idx: int, ts: int) -> None:
        self._since_refit += 1
        if self._since_refit >= self.every:
            self.refit()

    def refit(self) -> None:
        """Fit B on every interaction so far."""
        self._since_refit = 0
        fitted = np.flatnonzero(np.array(self.counts, dtype=np.int64) > 0)
        if fitted.size == 0:
            return
        column = np.full(self.n_items, -1, dtype=np.int64)
        column[fitted] = np.arange(fitted.size)
        rows = list(self._viewers.values())
        indptr = ragged.offsets([len(v.order) for v in rows])
        cols = column[np.concatenate([np.array(v.order, dtype=np.int64) for v in rows])]
        data = np.ones(cols.size, dtype=np.float32)
        x = scipy.sparse.csr_matrix((data, cols, indptr), shape=(len(rows), fitted.size))
        gram = np.asarray((x.T @ x).toarray(), dtype=np.float32, order="C")
        self._weights = ease_weights(gram, self.l2)
        self._fitted, self._column = fitted, column

    def rank(self, user_id: str, n: int) -> list[Recommendation]:
        viewer = self._viewers.get(user_id)
        weights = self._weights
        if viewer is None or weights is None or n <= 0:
            return self.top_up(user_id, [], n)
        history = viewer.as_array()
        known = history[history < self._column.size]
        columns = self._column[known]
        columns = columns[columns >= 0]  # the viewer's fitted items, in interaction order
        if columns.size == 0:
            return self.top_up(user_id, [], n)
        scores: F32 = weights[columns].sum(axis=0)
        top = top_n_indices(scores, columns, n)
        top = top[scores[top] > 0]  # a non-positive score is no evidence: popularity tops the list up
        scored: list[Scored] = []
        if top.size:
            # per recommended item, the watched item with the largest term of its score (ties: the earlier one)
            best = columns[np.argmax(weights[np.ix_(columns, top)], axis=0)]
            fitted = self._fitted
            for j, i, score in zip(best.tolist(), top.tolist(), scores[top].tolist(), strict=True):
                scored.append((int(fitted[i]), score, self.watched_reason(int(fitted[j]))))
        return self.top_up(user_id, scored, n)
