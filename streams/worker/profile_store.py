"""The recommender's profile store for the worker's lifetime: the stored profiles, with a batch overlay.

Outside a batch it reads the stored (encoded) profiles. `begin()` opens a `ProfileOverlay` for the batch: each
profile is decoded at most once and stays a live object (as `StreamRecommender.learning_batch` needs); `flush()`
writes each changed one once (its changelog record) and closes the batch. The profiles a batch wrote are kept
decoded with their bytes (`DecodedProfiles`), so a viewer's next batch decodes nothing if the store still holds
those bytes. The recommender keeps this one object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from streamrec.models.profile import DecodedProfiles, EncodedProfiles, ProfileOverlay, UserProfile


@runtime_checkable
class BatchWrites(Protocol):
    """A store that takes a batch's profiles in one call (`tables.BatchedTableProfiles`)."""

    def write_batch(self, changes: Sequence[tuple[str, bytes | None, int]]) -> None:
        """(user id, encoded profile or None for a delete, partition) each, in order."""
        ...


class ProfileStore(MutableMapping[str, UserProfile]):
    """Profiles as `StreamRecommender` reads and writes them; writes happen inside a batch only."""

    def __init__(self, stored: EncodedProfiles, decoded: int = 0) -> None:
        """`decoded`: how many profiles written by batches stay decoded for the next (0: none)."""
        self.stored = stored
        self.decoded = DecodedProfiles(decoded) if decoded > 0 else None
        self._batch: ProfileOverlay | None = None

    def begin(self) -> None:
        """Open a batch (an unfinished one before it is dropped, unwritten)."""
        self.drop()
        self._batch = ProfileOverlay(self.stored, self.decoded)

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
        decoded = self.decoded
        if decoded is not None:
            decoded.discard(batch.read)  # what the batch read may have changed: held again only as written
        if partition_of is None or not isinstance(self.stored, BatchWrites):
            return batch.flush(around)
        changes = [
            (user_id, profile, None if profile is None else profile.to_bytes()) for user_id, profile in batch.take()
        ]
        self.stored.write_batch([(user_id, raw, partition_of(user_id)) for user_id, _, raw in changes])
        if decoded is not None:
            for user_id, profile, raw in changes:
                if profile is not None and raw is not None:
                    decoded.put(user_id, raw, profile)
        return [user_id for user_id, _, _ in changes]

    def drop(self) -> None:
        """Close the batch without writing anything (the profiles it read may have changed: none is kept)."""
        batch, self._batch = self._batch, None
        if batch is not None and self.decoded is not None:
            self.decoded.discard(batch.read)

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
