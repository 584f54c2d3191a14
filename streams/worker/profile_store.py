"""The recommender's profile store for the worker's lifetime: the stored profiles, with a batch overlay.

Outside a batch it reads the stored (encoded) profiles. `begin()` opens a `ProfileOverlay` for the batch: each
profile is decoded at most once and stays a live object (as `StreamRecommender.learning_batch` needs); `flush()`
writes each changed one once (its changelog record) and closes the batch. The recommender keeps this one object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from streamrec.models.profile import EncodedProfiles, ProfileOverlay, UserProfile


@runtime_checkable
class BatchWrites(Protocol):
    """A store that takes a batch's profiles in one call (`tables.BatchedTableProfiles`)."""

    def write_batch(self, changes: Sequence[tuple[str, UserProfile | None, int]]) -> None:
        """(user id, profile or None for a delete, partition) each, in order."""
        ...


class ProfileStore(MutableMapping[str, UserProfile]):
    """Profiles as `StreamRecommender` reads and writes them; writes happen inside a batch only."""

    def __init__(self, stored: EncodedProfiles) -> None:
        self.stored = stored
        self._batch: ProfileOverlay | None = None

    def begin(self) -> None:
        """Open a batch (an unfinished one before it is dropped, unwritten)."""
        self._batch = ProfileOverlay(self.stored)

    def holds(self, user_id: str) -> bool:
        """The batch knows the user's profile (or its absence): reading it touches no store."""
        return self._batch is not None and self._batch.holds(user_id)

    def flush(
        self,
        around: Callable[[str], AbstractContextManager[object]] | None = None,
        partition_of: Callable[[str], int] | None = None,
    ) -> list[str]:
        """Write each profile the batch changed, once, in first-write order (`around(user_id)` wraps each write);
        close the batch. Returns the user ids written. A store that writes a batch at once (`BatchWrites`) is
        given them together, each with its partition (`partition_of(user_id)`)."""
        batch, self._batch = self._batch, None
        if batch is None:
            return []
        if partition_of is None or not isinstance(self.stored, BatchWrites):
            return batch.flush(around)
        changes = batch.take()
        self.stored.write_batch([(user_id, profile, partition_of(user_id)) for user_id, profile in changes])
        return [user_id for user_id, _ in changes]

    def drop(self) -> None:
        """Close the batch without writing anything."""
        self._batch = None

    def _current(self) -> MutableMapping[str, UserProfile]:
        return self.stored if self._batch is None else self._batch

    def _open_batch(self) -> ProfileOverlay:
        if self._batch is None:
            raise RuntimeError("profiles are written inside a batch (begin ... flush)")
        return self._batch

    def __getitem__(self, user_id: str) -> UserProfile:
        return self._current()[user_id]

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._current()

    def __setitem__(self, user_id: str, profile: UserProfile) -> None:
        self._open_batch()[user_id] = profile

    def __delitem__(self, user_id: str) -> None:
        del self._open_batch()[user_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())
