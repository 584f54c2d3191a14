"""A batch's embedding updates, applied together: numpy work across the batch instead of per event.

Each consumption moves its viewer's embedding as `e <- q(decay * e + w * v_item)`, q being the float16 round trip
the profile codec applies. Event by event that is four small numpy calls; here a batch's updates are
queued and applied in waves: wave k holds every viewer's k-th update, one vectorised step for all of them. A
queue of a few updates (a live batch's) is applied one by one: the waves' set-up would cost more than the steps.
The arithmetic is element by element the same (float32 products and sums, each rounded as numpy rounds the
in-place steps; no fused operations), so the embeddings are bit for bit those of event-by-event learning.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from streamrec.models import ragged
from streamrec.models.profile import quantized

STEPWISE_MAX = 32  # queues up to this long are applied update by update (measured: `streamrec bench --only live`)


class HasEmbedding(Protocol):
    embedding: npt.NDArray[np.float32]


class EmbeddingUpdates:
    """Queued `e <- q(decay * e + weight * vectors[row])` updates; `apply` runs them in order per profile.

    All queued updates use one item-vector matrix: `add` with another one (the catalog or model changed
    meanwhile) applies the queue first, so each update uses the vectors of its own moment.
    """

    def __init__(self, decay: float, stepwise_max: int = STEPWISE_MAX) -> None:
        self.decay = decay
        self.stepwise_max = stepwise_max
        self._vectors: npt.NDArray[np.float32] | None = None
        self._profiles: list[HasEmbedding] = []
        self._slot: dict[int, int] = {}  # id(profile) -> its index in _profiles
        self._slots: list[int] = []  # per queued update, in order
        self._rows: list[int] = []
        self._weights: list[float] = []

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, profile: HasEmbedding, vectors: npt.NDArray[np.float32], row: int, weight: float) -> None:
        if self._vectors is not vectors:
            self.apply()
            self._vectors = vectors
        slot = self._slot.get(id(profile))
        if slot is None:
            slot = self._slot[id(profile)] = len(self._profiles)
            self._profiles.append(profile)
        self._slots.append(slot)
        self._rows.append(row)
        self._weights.append(weight)

    def apply(self) -> None:
        """Run every queued update (each profile's in the order queued) and empty the queue."""
        if not self._slots:
            return
        assert self._vectors is not None
        if len(self._slots) <= self.stepwise_max:
            self._apply_stepwise(self._vectors)
        else:
            self._apply_in_waves(self._vectors)
        self._profiles.clear()
        self._slot.clear()
        self._slots.clear()
        self._rows.clear()
        self._weights.clear()

    def _apply_stepwise(self, vectors: npt.NDArray[np.float32]) -> None:
        profiles, decay = self._profiles, self.decay
        for slot, row, weight in zip(self._slots, self._rows, self._weights, strict=True):
            profile = profiles[slot]
            step = profile.embedding * decay  # a new array: the profile's may be shared
            step += np.float32(weight) * vectors[row]
            profile.embedding = quantized(step)

    def _apply_in_waves(self, vectors: npt.NDArray[np.float32]) -> None:
        slots = np.array(self._slots, dtype=np.intp)
        rows = np.array(self._rows, dtype=np.intp)
        # A Python float meets a float32 array as float32 (NumPy 2's promotion): convert once, the same way.
        weights = np.array(self._weights, dtype=np.float32)
        # Wave of an update: how many earlier updates its profile has in the queue.
        order = np.argsort(slots, kind="stable")
        sorted_slots = slots[order]
        starts = np.flatnonzero(np.r_[True, sorted_slots[1:] != sorted_slots[:-1]])
        waves = np.empty_like(slots)
        waves[order] = ragged.positions(np.diff(np.r_[starts, sorted_slots.size]))
        by_wave = np.argsort(waves, kind="stable")
        bounds = ragged.offsets(np.bincount(waves))
        matrix = np.stack([p.embedding for p in self._profiles])
        decay = self.decay
        for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            at = by_wave[start:end]
            who = slots[at]  # distinct within a wave
            step = matrix[who]
            step *= decay
            step += weights[at, None] * vectors[rows[at]]
            matrix[who] = quantized(step)
        for slot, profile in enumerate(self._profiles):
            profile.embedding = matrix[slot].copy()
