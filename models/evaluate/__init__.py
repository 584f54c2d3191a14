"""Evaluation over an event stream: `prequential` (test-then-train, every system in one pass) and
`score_held_lists` (lists computed elsewhere, the same protocol), with every reason checked against the
`GroundTruth`. The metrics themselves are in `streamrec.models.metrics` (river's `evaluate` / `metrics` split)."""

from streamrec.models.evaluate.held_lists import HeldScore, score_held_lists
from streamrec.models.evaluate.prequential import prequential
from streamrec.models.evaluate.results import EvalPoint, EvalResult, HRPoint, ProgressInfo
from streamrec.models.evaluate.truth import REASON_KINDS, GroundTruth, verify_reasons

__all__ = [
    "REASON_KINDS",
    "EvalPoint",
    "EvalResult",
    "GroundTruth",
    "HRPoint",
    "HeldScore",
    "ProgressInfo",
    "prequential",
    "score_held_lists",
    "verify_reasons",
]
