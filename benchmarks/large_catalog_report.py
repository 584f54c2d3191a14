"""`streamrec large-catalog`: `large_catalog.run_large_catalog` over real streams, with a progress bar; results as
JSON and a markdown table."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from streamrec.benchmarks.large_catalog import EVERY, EXACT, LARGE, SOURCES, run_large_catalog
from streamrec.models.evaluate import ProgressInfo
from streamrec.models.simulate import event_stream
from streamrec.streams.settings import get_settings
from streamrec.streams.tools.data import load_dataset

_SHORT = {EXACT: "exact", LARGE: "large", EVERY: "every item"}


def run_datasets(
    names: list[str],
    *,
    limit: int | None,
    sample_every: int,
    calibration_weight: float | None,
    out: Path,
    console: Console,
    command: str,
    kuairand_path: Path | None = None,
) -> list[dict[str, Any]]:
    settings = get_settings()
    overrides = {} if calibration_weight is None else {"calibration_weight": calibration_weight}
    params = settings.stream_params(**overrides)
    runs: list[dict[str, Any]] = []
    for name in names:
        dataset = load_dataset(name=name, path=kuairand_path if name == "kuairand-pure" else None,
                               cache_dir=settings.cache_dir)  # fmt: skip
        events = event_stream(dataset, plays=True, searches=False, seed=0)
        if limit is not None:
            events = events[:limit]
        with Progress(
            TextColumn(f"[bold]{name}[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[hit_rates]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(name, total=len(events), hit_rates="")

            def show(info: ProgressInfo, task_id: Any = task) -> None:
                rates = " ".join(f"{_SHORT[system]} {hr:.4f}" for system, hr in info.hit_rates.items())
                progress.update(task_id, completed=info.events, hit_rates=f"HR@10 {rates}")

            run = run_large_catalog(name, events, dataset.items, params, sample_every=sample_every, on_progress=show)
        runs.append(run)
        console.print(render_markdown([run]))
    results = {
        "command": command,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "runs": runs,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(f"`{command}`\n\n" + render_markdown(runs))
    return runs


def _value(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render_markdown(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| stream | events | items | HR@10 exact | HR@10 large | HR@10 large, every item | recall@20 vs every item "
        "| recall@20 vs exact | identical lists vs exact | CPU s exact | CPU s large |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        s, n = run["systems"], run["top_n"]
        lines.append(
            f"| {run['dataset']} | {run['events']:,} | {run['items']:,} | {s[EXACT]['hr']:.4f} | {s[LARGE]['hr']:.4f} "
            f"| {s[EVERY]['hr']:.4f} | {_value(run[f'recall_at_{n}_vs_every_item'])} "
            f"| {_value(run[f'recall_at_{n}_vs_exact'])} | {_value(run['identical_vs_exact'], 3)} "
            f"| {s[EXACT]['cpu_seconds']:.1f} | {s[LARGE]['cpu_seconds']:.1f} |"
        )
    lines += ["", "Recall@20 of each candidate source against scoring every item (sampled points):", ""]
    names = (*SOURCES, "all sources")
    lines.append("| stream | points | mean candidates | " + " | ".join(names) + " |")
    lines.append("|---|---:|---:|" + "---:|" * len(names))
    for run in runs:
        recall = run["source_recall"]
        lines.append(
            f"| {run['dataset']} | {run['sampled_points']:,} | {_value(run['mean_candidates'], 0)} | "
            + " | ".join(_value(recall[name], 3) for name in names)
            + " |"
        )
    return "\n".join(lines) + "\n"
