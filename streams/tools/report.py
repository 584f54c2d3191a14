"""The evaluation report: report.md (systems x metrics, protocol, settings, run time), hr_over_time.png,
calibration_tradeoff.png, creator_exposure.png and results.json, written from `models.evaluate.prequential` results."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from streamrec.models.evaluate import EvalResult

__all__ = [
    "PROTOCOL",
    "CalibrationPoint",
    "ReportFiles",
    "RunInfo",
    "ScalingPoint",
    "plot_calibration_tradeoff",
    "plot_creator_exposure",
    "plot_hr_over_time",
    "render_markdown",
    "write_report",
]

PROTOCOL = """\
Prequential (test-then-train) evaluation over the time-ordered event stream, all systems in one pass over the
same events:

- **Evaluation points.** For every interaction (u, i, t) in stream order: an *interaction* is the first event
  about the pair (u, i) (a play followed by a rating of the same item counts once, at the play). Searches and
  later events about the pair are never evaluation points, but every event is fed to every system.
- **The held list.** The list that counts is the one the system held for u just before t: the list it
  computed right after u's previous event (of any kind; a real system refreshes a user's list on that user's
  events only). A user with no event yet gets what the system shows a new user, computed at t before the
  event is learned. Items u already interacted with are excluded (the systems exclude them; the evaluator
  drops any that slip through). A list that can never be consulted (u's next event is not an evaluation
  point, e.g. the rating right after the play of the same item) is not computed; ranking is pure, so this
  changes no result.
- **Accuracy.** HR@k: i is in the first k items of the held list. NDCG@k: 1/log2(rank + 1) within the top k
  (one relevant item, ideal DCG 1). MRR: 1/rank of i in the whole held list (its length is given below), 0
  when absent.
- **Coverage.** Distinct items in the top k of the held lists at evaluation points / catalog size.
- **Exposure.** An item's exposure is how many times it is in the top k of the held lists at evaluation
  points: a plain count, not weighted by position. *Gini*: the Gini coefficient of exposure over the whole
  catalog (items never shown count as 0; 0 is every item shown equally often, 1 - 1/n one item shown alone).
  *Top 1%*: the share of all exposure that goes to the most exposed 1% of the catalog. *Creator gap*: the total
  variation distance between the creators' shares of exposure and their shares of consumption (the items
  consumed at the evaluation points); an item with creators C gives 1/|C| to each, items without creators are
  left out (0: every creator is shown as much as watched; 1: the lists show other creators than the watched).
- **Miscalibration.** Steck (2018): KL(p || q~), q~ = (1 - α) q + α p, α = 0.01; p is the genre mix of u's
  history at t (each item gives 1/|genres| to each of its genres, items weighted equally), q that of the
  top-k list. Averaged over evaluation points whose user already has a history with genres.
- **Reasons.** Share of the top-k recommended items at evaluation points whose reasons are all verifiably
  true (an item without reasons counts as false), checked against what really happened up to the moment the
  list was computed (the interactions observed by then, and the stream time then: the latest event ts seen,
  which for a new user's list is the ts of the event before t): `watched` names an item u interacted
  with; `search` a query u made (case and spacing ignored); `creator` a watched item sharing that creator
  with the recommended item; `genre` a genre of the item that is in u's history; `popular` the item's true
  interaction count so far; `trending` its true count within `window_days` before that time; `new` an item
  added to the catalog at most `days` before (the initial catalog counts as added at the first event).
  Unknown kinds are false.
"""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What was run: shown in report.md and results.json."""

    dataset: str
    events: int
    seconds: float  # wall-clock time of the whole evaluation pass
    cpu_seconds: float
    settings: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    weight: float  # the streamrec calibration weight (Steck's lambda)
    system: str  # its name in the results


@dataclass(frozen=True, slots=True)
class ScalingPoint:
    workers: int
    system: str  # streamrec over `workers` workers, the item side shared through the item-signal log
    per_worker_system: str  # the same, each worker learning the item side from its own viewers only


@dataclass(frozen=True, slots=True)
class ReportFiles:
    report: Path
    hr_over_time: Path
    calibration_tradeoff: Path
    results: Path


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def render_markdown(
    results: Mapping[str, EvalResult],
    info: RunInfo,
    calibration: Sequence[CalibrationPoint] = (),
    scaling: Sequence[ScalingPoint] = (),
) -> str:
    """The report as Markdown text."""
    any_result = next(iter(results.values()), None)
    k = any_result.k if any_result else 10
    n_list = any_result.list_length if any_result else k
    points = any_result.eval_points if any_result else 0
    lines = [
        f"# streamrec evaluation: {info.dataset}",
        "",
        f"{info.events:,} events, {points:,} evaluation points (interactions), top {k}. "
        f"Run time {info.seconds:.1f} s wall-clock ({info.cpu_seconds:.1f} s CPU).",
        "",
        f"| system | HR@{k} | NDCG@{k} | MRR@{n_list} | coverage | exposure Gini | top 1% share | creator gap | "
        "miscalibration | reasons true | CPU s | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {_fmt(r.hr)} | {_fmt(r.ndcg)} | {_fmt(r.mrr)} | {_fmt(r.coverage, 3)} | "
            f"{_fmt(r.exposure_gini, 3)} | {_fmt(r.top_share, 3)} | {_fmt(r.creator_gap, 3)} | "
            f"{_fmt(r.miscalibration, 3)} | {_fmt(r.reasons_true, 3)} | {r.cpu_seconds:.1f} | {r.seconds:.1f} |"
        )
    lines += [
        "",
        f"MRR is over the whole held list of {n_list} items. Times are spent inside each system (learning and "
        "ranking; CPU time is what the machine's load does not inflate); the evaluator's own bookkeeping is the "
        "rest of the run time. streamrec at a second calibration weight ranks from the state the first one learns "
        "(calibration never changes what is learnt): its times are its ranking only.",
        "",
        "![HR over time](hr_over_time.png)",
        "",
        "![accuracy vs miscalibration](calibration_tradeoff.png)",
        "",
    ]
    lines += _creator_section(results)
    if calibration:
        lines += [
            "## Calibration trade-off",
            "",
            f"| calibration weight | HR@{k} | miscalibration |",
            "|---:|---:|---:|",
        ]
        for point in sorted(calibration, key=lambda p: p.weight):
            r = results[point.system]
            lines.append(f"| {point.weight:g} | {_fmt(r.hr)} | {_fmt(r.miscalibration, 3)} |")
        lines.append("")
    if scaling:
        lines += _scaling_section(results, scaling, k)
    kinds = sorted({kind for r in results.values() for kind in r.reason_kinds})
    if kinds:
        lines += [
            "## Reasons given (verified / given)",
            "",
            "| system | " + " | ".join(kinds) + " |",
            "|---|" + "---:|" * len(kinds),
        ]
        for name, r in results.items():
            cells = []
            for kind in kinds:
                good, total = r.reason_kinds.get(kind, (0, 0))
                cells.append(f"{good:,} / {total:,}" if total else "")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Protocol", "", PROTOCOL, "## Settings", ""]
    for key, value in info.settings.items():
        lines.append(f"- `{key}`: {value}")
    if info.notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in info.notes]
    lines.append("")
    return "\n".join(lines)


def _creator_section(results: Mapping[str, EvalResult]) -> list[str]:
    with_creators = {name: r for name, r in results.items() if r.creator_gap is not None}
    if not with_creators:
        return []
    creators = len(next(iter(with_creators.values())).creator_shares)
    lines = [
        "## Exposure by creator",
        "",
        f"{creators:,} creators. Each point of the plot is a creator: its share of the exposure against its share "
        "of consumption (on the diagonal, a creator is shown as much as watched; a share of 0 is drawn at 10^-6). "
        "*Head ratio*: the exposure share of the 10 most consumed creators over their consumption share (above 1: "
        "the lists favour them).",
        "",
        "![exposure share vs consumption share per creator](creator_exposure.png)",
        "",
        "| system | creator gap | head ratio |",
        "|---|---:|---:|",
    ]
    for name, r in with_creators.items():
        lines.append(f"| {name} | {_fmt(r.creator_gap, 3)} | {_fmt(r.creator_head_ratio, 2)} |")
    return [*lines, ""]


def plot_creator_exposure(results: Mapping[str, EvalResult], path: Path) -> None:
    """Per system, each creator's exposure share against its consumption share (log-log, the diagonal marked)."""
    runs = [(name, r) for name, r in results.items() if r.creator_shares]
    columns = min(4, max(len(runs), 1))
    rows = max(1, math.ceil(len(runs) / columns))
    fig = Figure(figsize=(3.2 * columns, 3.0 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True, sharey=True)
    floor = 1e-6  # where a share of 0 is drawn on the log scale
    for at, ax in enumerate(axes.flat):
        if at >= len(runs):
            ax.set_visible(False)
            continue
        name, r = runs[at]
        shares = list(r.creator_shares.values())
        xs = [max(consumed, floor) for _, consumed in shares]
        ys = [max(shown, floor) for shown, _ in shares]
        ax.scatter(xs, ys, s=4, alpha=0.4, color=f"C{at % 10}", linewidths=0)
        ax.plot([floor, 1.0], [floor, 1.0], color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{name}\ngap {_fmt(r.creator_gap, 3)}", fontsize="small")
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("consumption share")
    for ax in axes[:, 0]:
        ax.set_ylabel("exposure share")
    fig.savefig(path, dpi=90)


def _scaling_section(results: Mapping[str, EvalResult], scaling: Sequence[ScalingPoint], k: int) -> list[str]:
    lines = [
        "## Scaling out: N workers",
        "",
        "Viewers split over N workers as Kafka's default partitioner and the group split them. *Shared*: every "
        "worker folds one item-signal log (co-occurrence, popularity, trending from every viewer), as the worker "
        "runs. *Per worker*: each worker learns the item side from its own viewers only.",
        "",
        "![HR and reasons against workers](scaling.png)",
        "",
        f"| workers | HR@{k} shared | reasons true shared | HR@{k} per worker | reasons true per worker |",
        "|---:|---:|---:|---:|---:|",
    ]
    for point in sorted(scaling, key=lambda p: p.workers):
        shared, apart = results[point.system], results[point.per_worker_system]
        lines.append(
            f"| {point.workers} | {_fmt(shared.hr)} | {_fmt(shared.reasons_true, 3)} | {_fmt(apart.hr)} | "
            f"{_fmt(apart.reasons_true, 3)} |"
        )
    return [*lines, ""]


def plot_scaling(results: Mapping[str, EvalResult], scaling: Sequence[ScalingPoint], path: Path) -> None:
    """HR@k and the share of verifiably true reasons against the number of workers, shared vs per-worker items."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    hr_ax, reasons_ax = fig.subplots(1, 2, sharex=True)
    points = sorted(scaling, key=lambda p: p.workers)
    xs = [p.workers for p in points]
    k = next(iter(results.values())).k if results else 10
    for attr, label in (
        ("system", "item side shared (item-signal log)"),
        ("per_worker_system", "item side per worker"),
    ):
        runs = [results[getattr(p, attr)] for p in points]
        hr_ax.plot(xs, [r.hr for r in runs], marker="o", label=label)
        reasons_ax.plot(xs, [100 * r.reasons_true for r in runs], marker="o", label=label)
    hr_ax.set_ylabel(f"HR@{k}")
    reasons_ax.set_ylabel("reasons verifiably true (%)")
    for ax in (hr_ax, reasons_ax):
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel("workers")
        ax.grid(alpha=0.3)
    hr_ax.set_ylim(bottom=0)
    hr_ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


def _thousands(value: float, _pos: int | None = None) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    return f"{value / 1_000:g}k" if abs(value) >= 1_000 else f"{value:g}"


def plot_hr_over_time(results: Mapping[str, EvalResult], path: Path) -> None:
    """Cumulative and rolling HR@k against events processed, one line per system."""
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    cumulative, rolling = fig.subplots(1, 2, sharex=True)
    k = next(iter(results.values())).k if results else 10
    for name, r in results.items():
        xs = [p.events for p in r.hr_over_time]
        cumulative.plot(xs, [p.cumulative for p in r.hr_over_time], label=name)
        rolling.plot(xs, [p.rolling for p in r.hr_over_time], label=name)
    window = next(iter(results.values())).rolling_window if results else 0
    cumulative.set_title(f"cumulative HR@{k}")
    rolling.set_title(f"rolling HR@{k} (last {window:,} evaluation points)")
    for ax in (cumulative, rolling):
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
        ax.set_xlabel("events processed")
        ax.set_ylabel(f"HR@{k}")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    if results:
        cumulative.legend(fontsize="small")
    fig.savefig(path, dpi=110)


def plot_calibration_tradeoff(
    results: Mapping[str, EvalResult], calibration: Sequence[CalibrationPoint], path: Path
) -> None:
    """HR@k against miscalibration: streamrec once per calibration weight (a line), other systems as points."""
    fig = Figure(figsize=(6.5, 4.8), layout="constrained")
    ax = fig.subplots()
    k = next(iter(results.values())).k if results else 10
    swept = {p.system for p in calibration}
    curve = [
        (p.weight, results[p.system])
        for p in sorted(calibration, key=lambda p: p.weight)
        if results[p.system].miscalibration is not None
    ]
    if curve:
        xs = [r.miscalibration or 0.0 for _, r in curve]
        ys = [r.hr for _, r in curve]
        ax.plot(xs, ys, marker="o", color="C0", label="streamrec (calibration weight)")
        for (weight, _), x, y in zip(curve, xs, ys, strict=True):
            ax.annotate(f"{weight:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small")
    markers = iter("s^Dvp*h")
    for i, (name, r) in enumerate(results.items()):
        if name in swept or r.miscalibration is None:
            continue
        ax.scatter([r.miscalibration], [r.hr], marker=next(markers, "x"), color=f"C{i + 1}", label=name)
    if not curve:
        ax.text(0.5, 0.95, "streamrec not evaluated", transform=ax.transAxes, ha="center", va="top")
    ax.set_xlabel("miscalibration KL(p || q~) (lower is better)")
    ax.set_ylabel(f"HR@{k}")
    ax.set_title("accuracy vs calibration")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


def results_document(
    results: Mapping[str, EvalResult],
    info: RunInfo,
    calibration: Sequence[CalibrationPoint] = (),
    scaling: Sequence[ScalingPoint] = (),
) -> dict[str, Any]:
    return {
        "run": {
            "dataset": info.dataset,
            "events": info.events,
            "seconds": info.seconds,
            "cpu_seconds": info.cpu_seconds,
            "settings": dict(info.settings),
            "notes": list(info.notes),
        },
        "results": {name: r.to_dict() for name, r in results.items()},
        "calibration": [{"weight": p.weight, "system": p.system} for p in calibration],
        "scaling": [
            {"workers": p.workers, "system": p.system, "per_worker_system": p.per_worker_system} for p in scaling
        ],
    }


def write_report(
    out_dir: Path,
    results: Mapping[str, EvalResult],
    info: RunInfo,
    calibration: Sequence[CalibrationPoint] = (),
    scaling: Sequence[ScalingPoint] = (),
) -> ReportFiles:
    """Write report.md, hr_over_time.png, calibration_tradeoff.png, results.json, for a catalog with creators
    creator_exposure.png and, for a run over several numbers of workers, scaling.png under `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        report=out_dir / "report.md",
        hr_over_time=out_dir / "hr_over_time.png",
        calibration_tradeoff=out_dir / "calibration_tradeoff.png",
        results=out_dir / "results.json",
    )
    plot_hr_over_time(results, files.hr_over_time)
    plot_calibration_tradeoff(results, calibration, files.calibration_tradeoff)
    if any(r.creator_shares for r in results.values()):
        plot_creator_exposure(results, out_dir / "creator_exposure.png")
    if scaling:
        plot_scaling(results, scaling, out_dir / "scaling.png")
    document = results_document(results, info, calibration, scaling)
    files.results.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    files.report.write_text(render_markdown(results, info, calibration, scaling), encoding="utf-8")
    return files
