"""Scoring one system's held list at an evaluation point, into that system's metrics (both drivers share it)."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from streamrec.models.base import Recommendation
from streamrec.models.evaluate.results import EvalPoint, EvalResult, HRPoint
from streamrec.models.evaluate.truth import GroundTruth
from streamrec.models.events import Play, Rating
from streamrec.models.metrics import (
    MRR,
    NDCG,
    Coverage,
    CreatorExposure,
    HitRate,
    ItemExposure,
    Miscalibration,
    ReasonsTrue,
    UserMiscalibration,
    rank_of,
)


@dataclass(slots=True)
class HeldList:
    """A user's list as a system held it, and the truth's state when it was computed (its reasons' time)."""

    recs: list[Recommendation]
    ts: int  # the stream time then
    seq: int  # the interactions observed by then


class PointCalibration:
    """The miscalibration of the top-k lists scored at one point, shared by the systems: one value per distinct
    list (they often hold the same one: the popularity fallback), and the user's side of it computed once."""

    __slots__ = ("_against", "_p", "_values")

    def __init__(self, p: dict[str, float]) -> None:
        self._p = p
        self._against: UserMiscalibration | None = None  # built by the first `of` (which brings alpha)
        self._values: dict[tuple[str, ...], float] = {}

    def of(self, top: tuple[str, ...], truth: GroundTruth, alpha: float) -> float:
        value = self._values.get(top)
        if value is None:
            if self._against is None:
                self._against = UserMiscalibration(self._p, alpha)
            value = self._values[top] = self._against(truth.cached_list_mix(top))
        return value


@dataclass(frozen=True, slots=True)
class Point:
    """One evaluation point as the scorer needs it: the truth about u at t (before the event is observed)."""

    event_id: str
    user_id: str
    item_id: str
    history: AbstractSet[str]  # u's interactions before t (not copied: read before the event is observed)
    genre_mix: dict[str, float]
    calibration: PointCalibration


def point_of(truth: GroundTruth, event: Rating | Play) -> Point:
    user = event.user_id
    mix = truth.user_genre_mix(user)
    return Point(event.event_id, user, event.item_id, truth.history(user), mix, PointCalibration(mix))


def eval_point(point: Point, ids: list[str], new_user: bool) -> EvalPoint:
    return EvalPoint(point.event_id, point.user_id, point.item_id, new_user, tuple(ids), rank_of(point.item_id, ids))


class SystemMetrics:
    """One system's metrics over the evaluation points: HR@k (and its rolling value over time), NDCG@k, MRR over
    the held list, coverage, exposure and miscalibration of the top k, and its reasons verified against `truth`."""

    def __init__(
        self, system: str, truth: GroundTruth, k: int, list_length: int, alpha: float, rolling_window: int
    ) -> None:
        self.system = system
        self.truth = truth
        self.k = k
        self.list_length = list_length
        self.alpha = alpha
        self.rolling_window = rolling_window
        self.hit_rate = HitRate(k, rolling_window)
        self.ndcg = NDCG(k)
        self.mrr = MRR()
        self.coverage = Coverage(truth.items)
        self.exposure = ItemExposure(truth.items)
        self.creators = CreatorExposure(truth.creators_of, self.exposure)
        self.miscalibration = Miscalibration()
        self.reasons = ReasonsTrue(truth.checks)
        self.series: list[HRPoint] = []

    def update(self, held: HeldList, point: Point) -> list[str]:
        """Score the held list at one evaluation point; returns the item ids it was scored on (history
        excluded, cut at the list length)."""
        k, history = self.k, point.history
        n_list = self.list_length
        recs = [r for r in held.recs if r.item_id not in history][:n_list] if history else held.recs[:n_list]
        ids = [r.item_id for r in recs]
        rank = rank_of(point.item_id, ids)
        self.hit_rate.update(rank)
        self.ndcg.update(rank)
        self.mrr.update(rank)
        top = ids[:k]
        self.coverage.update(top)
        self.exposure.update(top)
        self.creators.update(point.item_id)
        self.reasons.update(recs[:k], point.user_id, held.ts, held.seq)
        if point.genre_mix:
            self.miscalibration.update(point.calibration.of(tuple(top), self.truth, self.alpha))
        return ids

    def sample(self, n_events: int) -> None:
        """Note HR@k as of `n_events` events (`EvalResult.hr_over_time`)."""
        hit_rate = self.hit_rate
        self.series.append(HRPoint(n_events, hit_rate.points, hit_rate.get(), hit_rate.rolling()))

    def result(self, n_events: int, *, seconds: float = 0.0, cpu_seconds: float = 0.0, lists: int = 0) -> EvalResult:
        """The metrics so far; `seconds`, `cpu_seconds` and `lists`: what computing the lists cost, if known."""
        return EvalResult(
            system=self.system,
            k=self.k,
            list_length=self.list_length,
            events=n_events,
            eval_points=self.hit_rate.points,
            hr=self.hit_rate.get(),
            ndcg=self.ndcg.get(),
            mrr=self.mrr.get(),
            coverage=self.coverage.get(),
            miscalibration=self.miscalibration.get(),
            miscalibration_points=self.miscalibration.points,
            reasons_true=self.reasons.get(),
            recommended_items=self.reasons.items_checked,
            reason_kinds=self.reasons.by_kind(),
            seconds=seconds,
            cpu_seconds=cpu_seconds,
            lists=lists,
            rolling_window=self.rolling_window,
            hr_over_time=tuple(self.series),
            exposure_gini=self.exposure.gini(),
            top_share=self.exposure.top_share(),
            creator_gap=self.creators.get(),
            creator_head_ratio=self.creators.head_ratio(),
            creator_shares=self.creators.shares(),
        )
