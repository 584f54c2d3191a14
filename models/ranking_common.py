"""What both rankers (every item scored: `ranking`; candidates only: `candidate_ranking`) share: the per-user state
of a ranking call, and the helpers that gather it across users."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streamrec.models import ragged
from streamrec.models.profile import UserProfile

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Rows = npt.NDArray[np.intp]
NO_COUNTS = np.zeros(0, dtype=np.int64)


@dataclass(slots=True)
class RankedUser:
    """One user's inputs and what their list is explained from (the state as of that user's turn)."""

    profile: UserProfile | None
    now: int  # the user's last event time (searches fade by it)
    as_of: int  # the trending window's time (the counts quoted refer to it)
    trending: npt.NDArray[np.int64]  # the trending window's counts then
    history_rows: Rows | None  # None: no history, so no co-occurrence or embedding score
    history_weights: F32
    per_query: list[tuple[str, dict[int, float]]]
    watched: I64 | None = None  # the profile's watched hashes as an array, once needed


def watched_hashes(users: list[RankedUser]) -> tuple[I64, I64]:
    """Every user's watched hashes, user after user, and the offsets of each user's (kept on the user: ranking
    and explaining both need them)."""
    for user in users:
        if user.watched is None:
            watched = user.profile.watched if user.profile is not None else None
            user.watched = np.fromiter(watched, dtype=np.int64, count=len(watched)) if watched else NO_COUNTS
    offsets = ragged.offsets([user.watched.shape[0] for user in users if user.watched is not None])
    parts = [user.watched for user in users if user.watched is not None and user.watched.shape[0]]
    return ragged.flatten(parts, NO_COUNTS), offsets


def scatter_strongest(
    neighbours: I64, shares: F64, batched: list[int], sizes: list[int], best: Rows, top: F32, ratio: F32
) -> None:
    """Write the strongest contributions (flat over the `batched` users' lists) into the positions of those
    lists among all (`sizes`: every list's length), where one contributes (top > 0)."""
    mask = np.zeros(len(sizes), dtype=np.bool_)
    mask[batched] = True
    where = np.flatnonzero(np.repeat(mask, sizes))
    positive = top > 0
    neighbours[where[positive]] = best[positive]
    shares[where[positive]] = ratio[positive]
