"""Reasons verifiably true: the share of recommended items whose every reason checks out against what really
happened (an item without a reason does not), and per reason kind how many of those given check out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from streamrec.models.base import Recommendation

# Checks one reason of a kind: (evidence, user id, recommended item id, stream time, interactions seen) -> true?
ReasonCheck = Callable[[Mapping[str, str], str, str, int, int | None], bool]


class ReasonsTrue:
    def __init__(self, checks: Mapping[str, ReasonCheck]) -> None:
        self.checks = checks  # per reason kind (an unknown kind is never true)
        self.items_checked = 0
        self.items_true = 0
        self.kinds: dict[str, list[int]] = {}  # kind -> [verified, given]

    def update(self, recommendations: Sequence[Recommendation], user_id: str, now_ts: int, as_of: int | None) -> None:
        """Check the reasons of a list's items, given to `user_id` at stream time `now_ts` after `as_of`
        interactions."""
        checks, kinds = self.checks, self.kinds
        checked = true = 0
        for rec in recommendations:
            ok = bool(rec.reasons)
            for reason in rec.reasons:
                check = checks.get(reason.kind)
                good = check is not None and check(reason.evidence, user_id, rec.item_id, now_ts, as_of)
                counts = kinds.get(reason.kind)
                if counts is None:
                    counts = kinds[reason.kind] = [0, 0]
                counts[0] += good
                counts[1] += 1
                ok = ok and good
            checked += 1
            true += ok
        self.items_checked += checked
        self.items_true += true

    def get(self) -> float:
        return self.items_true / self.items_checked if self.items_checked else 0.0

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """kind -> (verified, given), by kind name."""
        return {kind: (v[0], v[1]) for kind, v in sorted(self.kinds.items())}
