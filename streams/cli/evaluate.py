"""`streamrec evaluate`: prequential evaluation (the fast, in-process path) of streamrec and the baselines on a
dataset, written as report.md, hr_over_time.png, calibration_tradeoff.png and results.json."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from models.base import Recommender
from models.dataset import Dataset
from models.events import UserEvent
from models.evaluation import EvalResult, ProgressInfo, prequential
from streams.settings import get_settings

console = Console()

DEFAULT_ALS_EVERY = 5000


# ==============================================================================================================
# THE STREAMREC FACTORY: the one place that builds the system under evaluation (once per calibration weight).
# ==============================================================================================================
def build_streamrec(calibration_weight: float, searches: bool, *, top_n: int = 20) -> Recommender:
    """A fresh streamrec recommender for one evaluation run.

    `searches` says whether the stream carries searches (the system always learns from whatever it is fed).
    Raises ImportError while `models.recommender` is not available.
    """
    from models.recommender import StreamParams, StreamRecommender

    return StreamRecommender(StreamParams(calibration_weight=calibration_weight, top_n=top_n))


def streamrec_available() -> bool:
    try:
        import models.recommender  # noqa: F401
    except ImportError:
        return False
    return True


def parse_weights(text: str) -> list[float]:
    """'0, 0.1,0.3' -> [0.0, 0.1, 0.3] (sorted, de-duplicated, each in [0, 1])."""
    weights: set[float] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise typer.BadParameter(f"{part!r} is not a number") from None
        if not 0.0 <= value <= 1.0:
            raise typer.BadParameter(f"calibration weight {value} is outside [0, 1]")
        weights.add(value)
    return sorted(weights)


def streamrec_name(weight: float) -> str:
    return f"streamrec λ={weight:g}"


def load_events(dataset: Dataset, *, plays: bool, searches: bool, seed: int) -> list[UserEvent]:
    """The evaluation stream: `models.simulate.event_stream` (ratings, plus simulated plays/searches)."""
    from models.simulate import event_stream

    return list(event_stream(dataset, plays=plays, searches=searches, seed=seed))


def load_data(name: str, path: Path | None, cache_dir: Path) -> Dataset:
    from streams.data import load_dataset

    return load_dataset(name=name, path=path, cache_dir=cache_dir)


def build_systems(
    *,
    baselines: bool,
    weights: list[float],
    searches: bool,
    top_n: int,
    als_every: int,
    als_factors: int,
    factory: Callable[..., Recommender] | None = None,
) -> tuple[dict[str, Recommender], dict[float, str]]:
    """Baselines and one streamrec per calibration weight; returns the systems and weight -> system name."""
    from models.baselines import ALSFoldIn, ALSRetrained, IncrementalPopularity

    systems: dict[str, Recommender] = {}
    if baselines:
        systems["popularity"] = IncrementalPopularity()
        systems["als-retrained"] = ALSRetrained(every=als_every, factors=als_factors)
        systems["als-foldin"] = ALSFoldIn(every=als_every, factors=als_factors)
    swept: dict[float, str] = {}
    make = factory or build_streamrec
    for weight in weights:
        name = streamrec_name(weight)
        systems[name] = make(weight, searches, top_n=top_n)
        swept[weight] = name
    return systems, swept


def _summary_table(results: dict[str, EvalResult]) -> Table:
    any_result = next(iter(results.values()))
    k, n_list = any_result.k, any_result.list_length
    table = Table(title=f"prequential evaluation: {any_result.eval_points:,} evaluation points")
    for column in ("system", f"HR@{k}", f"NDCG@{k}", f"MRR@{n_list}", "coverage", "miscal.", "reasons", "s"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r.hr:.4f}",
            f"{r.ndcg:.4f}",
            f"{r.mrr:.4f}",
            f"{r.coverage:.3f}",
            "n/a" if r.miscalibration is None else f"{r.miscalibration:.3f}",
            f"{r.reasons_true:.3f}",
            f"{r.seconds:.1f}",
        )
    return table


def evaluate(
    out: Path = typer.Option(Path(".streamrec/evaluation"), "--out", help="where the report files go"),
    dataset_name: str = typer.Option("ml-100k", "--dataset", help="a dataset that can be fetched by name"),
    path: Path | None = typer.Option(
        None, "--path", exists=True, file_okay=False, help="a MovieLens 'latest' CSV folder (overrides --dataset)"
    ),
    k: int = typer.Option(10, "--k", min=1, help="HR/NDCG cut-off"),
    list_length: int | None = typer.Option(
        None, "--list-length", min=1, help="length of the held list (MRR cut-off); default STREAMREC_TOP_N"
    ),
    calibration_weights: str | None = typer.Option(
        None,
        "--calibration-weights",
        help="comma-separated streamrec calibration weights, one streamrec run each (e.g. 0,0.1,0.3,0.5,0.9); "
        "default STREAMREC_CALIBRATION_WEIGHT",
    ),
    plays: bool = typer.Option(True, "--plays/--no-plays", help="add the simulated plays to the ratings"),
    searches: bool = typer.Option(False, "--searches/--no-searches", help="add (simulated) searches"),
    seed: int = typer.Option(0, "--seed", help="simulation seed"),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="evaluate the baselines too"),
    streamrec: bool = typer.Option(True, "--streamrec/--no-streamrec", help="evaluate streamrec"),
    als_every: int = typer.Option(DEFAULT_ALS_EVERY, "--als-every", min=1, help="ALS retrain period"),
    als_factors: int = typer.Option(64, "--als-factors", min=1, help="ALS factors"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="only the first N events (a quick look)"),
) -> None:
    """Prequential evaluation of streamrec and the baselines; writes report.md, plots and results.json."""
    settings = get_settings()
    n_list = max(k, list_length or settings.top_n)
    weights = parse_weights(calibration_weights) if calibration_weights else [settings.calibration_weight]
    notes: list[str] = []
    if streamrec and not streamrec_available():
        console.print("[yellow]streamrec (models.recommender) is not available: evaluating the baselines only")
        notes.append("streamrec was not available: baselines only")
        streamrec = False
    if not streamrec:
        weights = []
    if not baselines and not weights:
        console.print("[red]✗ nothing to evaluate[/red]: enable the baselines or streamrec")
        raise typer.Exit(2)

    from streams.data import DatasetError

    try:
        dataset = load_data(dataset_name, path, settings.cache_dir)
    except DatasetError as error:
        console.print(f"[red]✗ {error}[/red]")
        raise typer.Exit(1) from error
    events = load_events(dataset, plays=plays, searches=searches, seed=seed)
    if limit is not None:
        events = events[:limit]
    systems, swept = build_systems(
        baselines=baselines,
        weights=weights,
        searches=searches,
        top_n=n_list,
        als_every=als_every,
        als_factors=als_factors,
    )
    console.print(
        f"{dataset.name}: {len(events):,} events, {len(dataset.items):,} items; systems: {', '.join(systems)}"
    )

    wall0, cpu0 = time.perf_counter(), time.process_time()
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("evaluating", total=len(events))

        def on_progress(info: ProgressInfo) -> None:
            rates = "  ".join(f"{name} {hr:.3f}" for name, hr in info.hit_rates.items())
            progress.update(task, completed=info.events, description=f"HR@{k}  {rates}")

        results = prequential(
            events,
            dataset.items,
            systems,
            k=k,
            on_progress=on_progress,
            list_length=n_list,
        )
    seconds, cpu_seconds = time.perf_counter() - wall0, time.process_time() - cpu0

    from models.baselines import ALSParams
    from streams.report import CalibrationPoint, RunInfo, write_report

    als = ALSParams(every=als_every, factors=als_factors)
    run_settings: dict[str, object] = {
        "dataset": dataset.name,
        "events": f"ratings{' + simulated plays' if plays else ''}{' + searches' if searches else ''} (seed {seed})",
        "k": k,
        "held list length (MRR cut-off)": n_list,
        "calibration weights": ", ".join(f"{w:g}" for w in weights) or "(streamrec not run)",
        "ALS (both variants)": (
            f"implicit {_implicit_version()} CPU, factors {als.factors}, regularization {als.regularization}, "
            f"iterations {als.iterations}, confidence {als.alpha:g} x (1 + {als.rating_weight:g} x "
            f"(rating - 1) / 4) per rated/played pair, retrained on all interactions every {als.every:,} "
            "interactions, 1 BLAS thread"
        ),
        "limit": limit if limit is not None else "none",
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
    }
    info = RunInfo(
        dataset=dataset.name,
        events=len(events),
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        settings=run_settings,
        notes=tuple(notes),
    )
    calibration = [CalibrationPoint(weight, name) for weight, name in swept.items()]
    files = write_report(out, results, info, calibration)
    console.print(_summary_table(results))
    console.print(
        f"[green]✔[/green] {len(events):,} events in {seconds:.1f} s; wrote {files.report}, {files.hr_over_time.name}, "
        f"{files.calibration_tradeoff.name}, {files.results.name}"
    )


def _implicit_version() -> str:
    from importlib.metadata import version

    return version("implicit")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
