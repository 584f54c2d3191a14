"""The bench's plots, from its results: throughput side by side (`throughput.png`), freshness by offered rate
with each run's latency distribution (`freshness.png`), and the cores each process used at each rate
(`cores.png`). A plot without data is not written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from streamrec.benchmarks.results import CORE_USERS, FRESHNESS_TARGET_S, THROUGHPUT_TARGETS, sweep_points

_SYSTEMS = (
    ("raw", "raw aiokafka + orjson"),
    ("raw_sgd", "raw + numpy SGD"),
    ("faust_null", "Faust null agent"),
    ("batching_null", "streamrec consumer, null handler"),
    ("pipeline", "streamrec pipeline"),
)


def write_plots(results: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """The plots the results have data for, written under `out_dir`; returns their paths."""
    scenarios: list[Mapping[str, Any]] = list(results.get("scenarios", []))
    events = results.get("meta", {}).get("events")
    written = []
    if plot_throughput(scenarios, out_dir / "throughput.png", events):
        written.append(out_dir / "throughput.png")
    if plot_freshness(scenarios, out_dir / "freshness.png"):
        written.append(out_dir / "freshness.png")
    if plot_cores(scenarios, out_dir / "cores.png"):
        written.append(out_dir / "cores.png")
    return written


def _rate(scenario: Mapping[str, Any], phase: str) -> float | None:
    part = scenario.get(phase)
    value = part.get("events_per_s") if isinstance(part, Mapping) else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def plot_throughput(scenarios: Sequence[Mapping[str, Any]], path: Path, events: int | None = None) -> bool:
    """Events/s of each system, grouped by catalog (log scale: they span two orders of magnitude)."""
    rates = [[_rate(s, phase) for phase, _ in _SYSTEMS] for s in scenarios]
    if not any(r is not None for row in rates for r in row):
        return False
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(_SYSTEMS)
    for k, (_, label) in enumerate(_SYSTEMS):
        xs = [i + (k - (len(_SYSTEMS) - 1) / 2) * width for i in range(len(scenarios))]
        heights = [row[k] or 0.0 for row in rates]
        bars = ax.bar(xs, heights, width, label=label, color=f"C{k}")
        for bar, value in zip(bars, heights, strict=True):
            if value:
                ax.annotate(
                    f"{value:,.0f}",
                    (bar.get_x() + bar.get_width() / 2, value),
                    ha="center",
                    va="bottom",
                    fontsize="x-small",
                    xytext=(0, 2),
                    textcoords="offset points",
                )
    targeted = [
        (i, THROUGHPUT_TARGETS[s["catalog"]]) for i, s in enumerate(scenarios) if s.get("catalog") in THROUGHPUT_TARGETS
    ]
    for n, (i, target) in enumerate(targeted):
        ax.hlines(
            target,
            i - 0.45,
            i + 0.45,
            colors="black",
            linestyles="--",
            label="target for the pipeline" if n == 0 else "_target",  # "_": not in the legend
        )
    ax.set_xticks(
        range(len(scenarios)), [f"{s.get('catalog')} ({s.get('catalog_items', 0):,} items)" for s in scenarios]
    )
    ax.set_yscale("log")
    ax.set_ylabel("events/s (one worker process)")
    backlog = f"{events:,}-event " if events else ""
    ax.set_title(f"throughput on the same {backlog}backlog, side by side")
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)
    return True


def _freshness_runs(scenario: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    runs = list(sweep_points(scenario))
    for phase in ("freshness", "freshness_sustainable"):
        part = scenario.get(phase)
        if isinstance(part, Mapping) and "latency_s" in part and part.get("offered_per_s"):
            runs.append(part)
    return sorted(runs, key=lambda r: float(r["offered_per_s"]))


def plot_freshness(scenarios: Sequence[Mapping[str, Any]], path: Path) -> bool:
    """Left: p50 and p99 against the rate achieved, per catalog (hollow: lag grew), with the 100 ms target.
    Right: each run's latency distribution (share of events whose list arrived within x)."""
    runs = {str(s.get("catalog")): _freshness_runs(s) for s in scenarios}
    if not any(runs.values()):
        return False
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    by_rate, cdf = fig.subplots(1, 2)
    for i, (catalog, points) in enumerate(runs.items()):
        for p, style in (("p50", "--"), ("p99", "-")):
            measured = [r for r in points if (r["latency_s"] or {}).get(p) is not None]
            xs = [float(r["offered_per_s"]) for r in measured]
            ys = [float(r["latency_s"][p]) for r in measured]
            by_rate.plot(xs, ys, style, color=f"C{i}", label=f"{catalog} {p}")
            for r, x, y in zip(measured, xs, ys, strict=True):
                by_rate.plot([x], [y], "o", color=f"C{i}", markerfacecolor="none" if r.get("lag_grew") else f"C{i}")
        fastest = max(float(r["offered_per_s"]) for r in points) if points else 1.0
        for r in points:
            quantiles = r.get("latency_quantiles_s") or {}
            delivered = [q for q in range(1, 100) if quantiles.get(f"p{q}") is not None]
            if delivered:
                rate = float(r["offered_per_s"])
                cdf.plot(
                    [float(quantiles[f"p{q}"]) for q in delivered],
                    [q / 100 for q in delivered],
                    color=f"C{i}",
                    alpha=0.3 + 0.7 * rate / fastest,  # darker: faster
                    label=f"{catalog} at {rate:,.0f}/s",
                )
    by_rate.axhline(FRESHNESS_TARGET_S, color="grey", linestyle=":", label="target p99 100 ms")
    cdf.axvline(FRESHNESS_TARGET_S, color="grey", linestyle=":")
    by_rate.set_xlabel("events/s achieved")
    by_rate.set_ylabel("event produced → its list seen (s)")
    by_rate.set_yscale("log")
    by_rate.set_title("freshness by offered rate (hollow: lag grew)")
    cdf.set_xscale("log")
    cdf.set_xlabel("event produced → its list seen (s)")
    cdf.set_ylabel("share of events")
    cdf.set_title("distribution per run")
    for ax in (by_rate, cdf):
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small")
    fig.savefig(path, dpi=110)
    return True


def plot_cores(scenarios: Sequence[Mapping[str, Any]], path: Path) -> bool:
    """Per catalog, a stacked bar per freshness run: mean cores used by the worker (dashed: its event-loop thread),
    the broker, the bench's load generator and anything else, against the machine's cores (hatched: lag grew)."""
    runs = {
        str(s.get("catalog")): [r for r in _freshness_runs(s) if (r.get("cores") or {}).get("worker_cores") is not None]
        for s in scenarios
    }
    runs = {catalog: points for catalog, points in runs.items() if points}
    if not runs:
        return False
    fig = Figure(figsize=(5.5 * len(runs), 4.2), layout="constrained")
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    for ax, (catalog, points) in zip(axes, runs.items(), strict=True):
        labels = [f"{float(r['rate']):,.0f}" for r in points]
        bottoms = [0.0] * len(points)
        for i, who in enumerate(CORE_USERS):
            heights = [float(r["cores"].get(f"{who}_cores") or 0.0) for r in points]
            bars = ax.bar(labels, heights, bottom=bottoms, color=f"C{i}", label=who)
            for bar, r in zip(bars, points, strict=True):
                if r.get("lag_grew"):
                    bar.set_hatch("//")
            if who == "worker":  # its event-loop thread's share: with the GIL, its Python runs on ~1 core
                for n, (bar, r) in enumerate(zip(bars, points, strict=True)):
                    main = r["cores"].get("worker_main_thread_cores")
                    if main is not None:
                        x = bar.get_x()
                        ax.plot(
                            [x, x + bar.get_width()],
                            [main, main],
                            color="black",
                            linestyle="--",
                            linewidth=1.5,
                            label="worker's event loop" if n == 0 else None,
                        )
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        machine = max(float(r["cores"].get("machine_cores") or 0.0) for r in points)
        ax.axhline(machine, color="grey", linestyle=":", label=f"machine: {machine:.0f} cores")
        ax.set_xlabel("offered events/s")
        ax.set_ylabel("mean cores used")
        ax.set_title(f"{catalog}: who used the cores (hatched: lag grew)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize="x-small", loc="upper left")
    fig.savefig(path, dpi=110)
    return True
