"""`streamrec evaluate`: prequential evaluation (the fast, in-process path) of streamrec and the baselines on a
dataset, written as report.md, hr_over_time.png, calibration_tradeoff.png and results.json."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from streamrec.models.base import Recommender

if TYPE_CHECKING:
    from streamrec.models.baselines import ALSParams
    from streamrec.models.blend import BlendPoint
    from streamrec.streams.tools.report import ScalingPoint
from streamrec.models.dataset import Dataset
from streamrec.models.evaluate import EvalResult, ProgressInfo, prequential
from streamrec.models.events import UserEvent
from streamrec.streams.settings import get_settings

# Events between an event and its item signal folded into every worker's item side, in the fast path's model of
# the item-signal log: about what a worker learns in one batch at a live rate (docs/evaluation/workers/).
DEFAULT_ITEM_HOP = 100
# Interactions between two retrainings of the item model in the deployed loop (`--retrain-every`): ten on
# MovieLens 100K, five on KuaiRand-Pure.
DEFAULT_RETRAIN_EVERY = 20_000

console = Console()


# ==============================================================================================================
# THE STREAMREC FACTORY: the one place that builds the system under evaluation (once per calibration weight).
# ==============================================================================================================
def build_streamrec(calibration_weight: float, searches: bool, *, top_n: int = 20) -> Recommender:
    """A fresh streamrec recommender for one evaluation run.

    `searches` says whether the stream carries searches (the system always learns from whatever it is fed).
    Raises ImportError while `models.recommender` is not available.
    """
    from streamrec.models.recommender import StreamRecommender

    # The worker's parameters. Its profiles live encoded in a RocksDB table; live ones compute the same lists here
    # (learning quantizes what it changes, so a profile equals its decoded form: test_live_profiles_rank_alike).
    params = get_settings().stream_params(calibration_weight=calibration_weight, top_n=top_n)
    return StreamRecommender(params)


def learnt_blends(systems: dict[str, Recommender]) -> dict[str, list[BlendPoint]]:
    """The blend weights each streamrec system learnt over the run (those that learnt any)."""
    from streamrec.models.evaluate.retraining import RetrainedLoop
    from streamrec.models.recommender import StreamRecommender

    blends = {}
    for name, system in systems.items():
        inner = system.recommender if isinstance(system, RetrainedLoop) else system
        if isinstance(inner, StreamRecommender) and inner.item_side.blend.updates:
            blends[name] = inner.item_side.blend.trajectory()
    return blends


def build_deployed_loop(calibration_weight: float, searches: bool, *, top_n: int, every: int) -> Recommender:
    """streamrec with its item model retrained every `every` interactions on the events so far and swapped in, as
    the worker swaps in what `streamrec train` saves (`models.evaluate.retraining`)."""
    from streamrec.models.evaluate.retraining import RetrainedLoop
    from streamrec.models.recommender import StreamRecommender

    params = get_settings().stream_params(calibration_weight=calibration_weight, top_n=top_n)
    return RetrainedLoop(StreamRecommender(params), every)


def add_deployed_loop(
    systems: dict[str, Recommender], swept: dict[float, str], weight: float, searches: bool, top_n: int, every: int
) -> str:
    """Add the deployed loop at `weight` right after the model-free streamrec of that weight; returns its name."""
    name = f"{streamrec_name(weight)} (deployed loop)"
    loop = build_deployed_loop(weight, searches, top_n=top_n, every=every)
    ordered: dict[str, Recommender] = {}
    for key, system in systems.items():
        ordered[key] = system
        if key == swept.get(weight):
            ordered[name] = loop
    ordered.setdefault(name, loop)
    systems.clear()
    systems.update(ordered)
    return name


def streamrec_available() -> bool:
    try:
        import streamrec.models.recommender  # noqa: F401
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


def parse_counts(text: str) -> list[int]:
    """'1, 2,4' -> [1, 2, 4] (sorted, de-duplicated, each >= 1)."""
    counts: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not part.isdigit() or int(part) < 1:
            raise typer.BadParameter(f"{part!r} is not a number of workers (>= 1)")
        counts.add(int(part))
    if not counts:
        raise typer.BadParameter("name at least one number of workers")
    return sorted(counts)


def add_deployments(
    systems: dict[str, Recommender], counts: list[int], weight: float, top_n: int, hop: int, *, per_worker: bool = True
) -> list[ScalingPoint]:
    """streamrec over each number of workers, the item side shared through the item-signal log (as the worker
    runs) and, for comparison, learnt by each worker from its own viewers."""
    from streamrec.models.evaluate.deployment import Deployment
    from streamrec.streams.kafka.partitioning import worker_of_viewer
    from streamrec.streams.tools.report import ScalingPoint

    settings = get_settings()
    params = settings.stream_params(calibration_weight=weight, top_n=top_n)
    partitions = max(settings.partitions, *counts)  # a deployment runs at most one worker per partition
    points = []
    for n in counts:
        worker_of = worker_of_viewer(n, partitions)
        shared, apart = f"streamrec, {n} workers", f"streamrec, {n} workers, item side per worker"
        systems[shared] = Deployment(params, n, worker_of, hop=hop)
        if per_worker:
            systems[apart] = Deployment(params, n, worker_of, shared_items=False)
        points.append(ScalingPoint(n, shared, apart))
    return points


def streamrec_name(weight: float) -> str:
    return f"streamrec λ={weight:g}"


def load_events(dataset: Dataset, *, plays: bool, searches: bool, seed: int) -> list[UserEvent]:
    """The evaluation stream: `models.simulate.event_stream` (ratings, plus simulated plays/searches, or the
    dataset's recorded plays)."""
    from streamrec.models.simulate import event_stream

    return list(event_stream(dataset, plays=plays, searches=searches, seed=seed))


def _events_text(dataset: Dataset, *, plays: bool, searches: bool, seed: int) -> str:
    if dataset.plays:
        return f"likes/hates as ratings{' + recorded plays' if plays else ''}"
    return f"ratings{' + simulated plays' if plays else ''}{' + searches' if searches else ''} (seed {seed})"


def load_data(name: str, path: Path | None, cache_dir: Path) -> Dataset:
    from streamrec.streams.tools.data import load_dataset

    return load_dataset(name=name, path=path, cache_dir=cache_dir)


def build_systems(
    *,
    baselines: bool,
    weights: list[float],
    searches: bool,
    top_n: int,
    als: ALSParams,
    factory: Callable[..., Recommender] | None = None,
) -> tuple[dict[str, Recommender], dict[float, str]]:
    """Baselines and one streamrec per calibration weight; returns the systems and weight -> system name."""
    from streamrec.models.baselines import ALSFoldIn, ALSRetrained, IncrementalPopularity
    from streamrec.models.ease import EASE
    from streamrec.models.item_knn import SequentialItemKNN
    from streamrec.models.trending import Trending

    systems: dict[str, Recommender] = {}
    if baselines:
        systems["popularity"] = IncrementalPopularity()
        systems["als-retrained"] = ALSRetrained.from_params(als)
        systems["als-foldin"] = ALSFoldIn.from_params(als)
        systems["trending"] = Trending()
        systems["item-knn"] = SequentialItemKNN()
        systems["ease"] = EASE()
    swept: dict[float, str] = {}
    learner: Recommender | None = None
    for weight in weights:
        name = streamrec_name(weight)
        if factory is not None:
            systems[name] = factory(weight, searches, top_n=top_n)
        elif learner is None:
            systems[name] = learner = build_streamrec(weight, searches, top_n=top_n)
        else:  # the same learnt state, ranked at another weight: learnt once (`CalibrationView`)
            systems[name] = calibration_view(learner, weight)
        swept[weight] = name
    return systems, swept


def calibration_view(learner: Recommender, weight: float) -> Recommender:
    from streamrec.models.evaluate.calibration_views import CalibrationView
    from streamrec.models.recommender import StreamRecommender

    assert isinstance(learner, StreamRecommender)
    return CalibrationView(learner, weight)


def _summary_table(results: dict[str, EvalResult]) -> Table:
    any_result = next(iter(results.values()))
    k, n_list = any_result.k, any_result.list_length
    table = Table(title=f"prequential evaluation: {any_result.eval_points:,} evaluation points")
    columns = ("system", f"HR@{k}", f"NDCG@{k}", f"MRR@{n_list}", "coverage", "Gini", "top 1%", "creator gap")
    for column in (*columns, "miscal.", "reasons", "CPU s"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r.hr:.4f}",
            f"{r.ndcg:.4f}",
            f"{r.mrr:.4f}",
            f"{r.coverage:.3f}",
            f"{r.exposure_gini:.3f}",
            f"{r.top_share:.3f}",
            "n/a" if r.creator_gap is None else f"{r.creator_gap:.3f}",
            "n/a" if r.miscalibration is None else f"{r.miscalibration:.3f}",
            f"{r.reasons_true:.3f}",
            f"{r.cpu_seconds:.1f}",
        )
    return table


OUT_OPTION = typer.Option(Path(".streamrec/evaluation"), "--out", help="where the report files go")
DATASET_OPTION = typer.Option(
    "ml-100k", "--dataset", help="a dataset by name: ml-100k (fetched) or kuairand-pure (the shared local copy)"
)
PATH_OPTION = typer.Option(
    None,
    "--path",
    exists=True,
    file_okay=False,
    help="a MovieLens 'latest' CSV folder (overrides --dataset), or with --dataset kuairand-pure its folder",
)
K_OPTION = typer.Option(10, "--k", min=1, help="HR/NDCG cut-off")
LIST_LENGTH_OPTION = typer.Option(
    None, "--list-length", min=1, help="length of the held list (the MRR cut-off); default STREAMREC_TOP_N"
)
WEIGHTS_OPTION = typer.Option(
    None,
    "--calibration-weights",
    help="comma-separated streamrec calibration weights, one streamrec run each (e.g. 0,0.1,0.3,0.5,0.9); "
    "default STREAMREC_CALIBRATION_WEIGHT",
)
PLAYS_OPTION = typer.Option(True, "--plays/--no-plays", help="add the simulated plays to the ratings")
SEARCHES_OPTION = typer.Option(False, "--searches/--no-searches", help="add the (simulated) searches")
SEED_OPTION = typer.Option(0, "--seed", help="simulation seed")
BASELINES_OPTION = typer.Option(True, "--baselines/--no-baselines", help="evaluate the baselines too")
STREAMREC_OPTION = typer.Option(True, "--streamrec/--no-streamrec", help="evaluate streamrec")
ALS_EVERY_OPTION = typer.Option(
    None, "--als-every", min=1, help="ALS retrain period in interactions [default: models.baselines.ALSParams]"
)
ALS_FACTORS_OPTION = typer.Option(
    None, "--als-factors", min=1, help="ALS latent factors [default: models.baselines.ALSParams]"
)
LIMIT_OPTION = typer.Option(None, "--limit", min=1, help="only the first N events (a quick look)")
E2E_OPTION = typer.Option(
    False,
    "--e2e",
    help="end-to-end path: replay through a broker and a worker subprocess, score the lists read back from "
    "`recommendations`, and compare with the fast path over the same events (writes e2e.md and e2e.json)",
)
LOCKSTEP_OPTION = typer.Option(
    False, "--lockstep/--free-running", help="with --e2e: wait for each event's list before sending the next"
)
BOOTSTRAP_OPTION = typer.Option(
    None, "--bootstrap", help="with --e2e: an existing broker (empty input topics) instead of a fresh embedded one"
)
WORKERS_OPTION = typer.Option(
    None,
    "--workers",
    help="simulate streamrec deployed over N workers (a list: 1,2,4,8): viewers split as Kafka's default "
    "partitioner and the group split them, one item-signal log folded by every worker (`--item-hop` events late), "
    "compared with each worker learning the item side from its own viewers only; one calibration weight",
)
ITEM_HOP_OPTION = typer.Option(
    DEFAULT_ITEM_HOP, "--item-hop", min=0, help="with --workers: events between an event and its item signal folded"
)
RETRAIN_EVERY_OPTION = typer.Option(
    DEFAULT_RETRAIN_EVERY,
    "--retrain-every",
    min=0,
    help="also run streamrec as deployed: its item model retrained every N interactions on the events so far and "
    "swapped in (at STREAMREC_CALIBRATION_WEIGHT, or the first weight swept); 0: not run",
)
KEEP_DIR_OPTION = typer.Option(
    None, "--keep-dir", help="with --e2e: keep the run's state and worker log here (default: a temp dir, removed)"
)


def evaluate(
    out: Path = OUT_OPTION,
    dataset_name: str = DATASET_OPTION,
    path: Path | None = PATH_OPTION,
    k: int = K_OPTION,
    list_length: int | None = LIST_LENGTH_OPTION,
    calibration_weights: str | None = WEIGHTS_OPTION,
    plays: bool = PLAYS_OPTION,
    searches: bool = SEARCHES_OPTION,
    seed: int = SEED_OPTION,
    baselines: bool = BASELINES_OPTION,
    streamrec: bool = STREAMREC_OPTION,
    als_every: int | None = ALS_EVERY_OPTION,
    als_factors: int | None = ALS_FACTORS_OPTION,
    limit: int | None = LIMIT_OPTION,
    e2e: bool = E2E_OPTION,
    lockstep: bool = LOCKSTEP_OPTION,
    bootstrap: str | None = BOOTSTRAP_OPTION,
    keep_dir: Path | None = KEEP_DIR_OPTION,
    workers: str | None = WORKERS_OPTION,
    item_hop: int = ITEM_HOP_OPTION,
    retrain_every: int = RETRAIN_EVERY_OPTION,
) -> None:
    """Prequential evaluation of streamrec and the baselines; writes report.md, plots and results.json.

    With --e2e: the end-to-end path against the fast path instead (streamrec only, one calibration weight)."""
    from streamrec.models.baselines import ALSParams

    als = ALSParams(
        every=als_every if als_every is not None else ALSParams.every,
        factors=als_factors if als_factors is not None else ALSParams.factors,
    )
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

    from streamrec.streams.tools.data import DatasetError

    try:
        dataset = load_data(dataset_name, path, settings.cache_dir)
    except DatasetError as error:
        console.print(f"[red]✗ {error}[/red]")
        raise typer.Exit(1) from error
    events = load_events(dataset, plays=plays, searches=searches, seed=seed)
    if limit is not None:
        events = events[:limit]
    if e2e:
        if len(weights) != 1:
            console.print("[red]✗ --e2e evaluates one calibration weight[/red] (and needs streamrec)")
            raise typer.Exit(2)
        run_settings_e2e: dict[str, object] = {
            "dataset": dataset.name,
            "events": _events_text(dataset, plays=plays, searches=searches, seed=seed),
            "limit": limit if limit is not None else "none",
            "k": k,
            "held list length (STREAMREC_TOP_N of the worker)": n_list,
            "calibration weight": weights[0],
            "lockstep": lockstep,
            "worker coalescing (STREAMREC_COALESCE)": get_settings().coalesce,
            "partitions": 4,
            "broker": bootstrap or "fresh embedded noida-db",
            "machine": f"{platform.machine()}, Python {platform.python_version()}",
        }
        counts = parse_counts(workers) if workers else [1]
        if len(counts) != 1:
            console.print("[red]✗ --e2e runs one number of workers[/red] (e.g. --workers 4)")
            raise typer.Exit(2)
        run_settings_e2e["workers"] = counts[0]
        if workers:
            run_settings_e2e["fast path"] = f"{counts[0]} simulated workers, item signals folded {item_hop} events late"
        _evaluate_e2e(
            dataset,
            events,
            out,
            k,
            n_list,
            weights[0],
            searches,
            lockstep,
            bootstrap,
            keep_dir,
            run_settings_e2e,
            workers=counts[0] if workers else None,
            item_hop=item_hop,
        )
        return
    systems, swept = build_systems(
        baselines=baselines,
        weights=[] if workers else weights,
        searches=searches,
        top_n=n_list,
        als=als,
    )
    scaling: list[ScalingPoint] = []
    if workers:
        if len(weights) != 1:
            console.print("[red]✗ --workers evaluates one calibration weight[/red] (and needs streamrec)")
            raise typer.Exit(2)
        scaling = add_deployments(systems, parse_counts(workers), weights[0], n_list, item_hop)
    loop_weight = settings.calibration_weight if settings.calibration_weight in weights or not weights else weights[0]
    loop_name = None
    if retrain_every and weights and not workers:
        loop_name = add_deployed_loop(systems, swept, loop_weight, searches, n_list, retrain_every)
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

    from streamrec.streams.tools.blend_report import write_blend
    from streamrec.streams.tools.report import CalibrationPoint, RunInfo, write_report

    run_settings: dict[str, object] = {
        "reproduce": f"`make evaluate` (both datasets), or this run alone: `{_command_line()}`",
        "dataset": dataset.name,
        "events": _events_text(dataset, plays=plays, searches=searches, seed=seed),
        "k": k,
        "held list length (MRR cut-off)": n_list,
        "calibration weights": ", ".join(f"{w:g}" for w in weights) or "(streamrec not run)",
        "ALS (both variants)": (
            f"implicit {_implicit_version()} (CPU, conjugate gradient), factors {als.factors}, regularization "
            f"{als.regularization:g}, iterations {als.iterations}, confidence {_confidence_text(als)}; retrained "
            f"on all interactions so far every {als.every:,} new interactions; 1 BLAS thread"
        ),
        "other baselines": (
            "trending (interactions decayed with a 1-day half-life), sequential item-kNN (the viewer's last 5 items, "
            "pairs weighted 1/distance, divided by pop^0.5), EASE (λ 500, refitted every 5,000 new interactions)"
        ),
        "deployed loop": _loop_text(systems, loop_name, loop_weight, retrain_every),
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
    files = write_report(out, results, info, calibration, scaling)
    write_blend(out, learnt_blends(systems))
    console.print(_summary_table(results))
    console.print(
        f"[green]✔[/green] {len(events):,} events in {seconds:.1f} s ({cpu_seconds:.1f} s CPU); wrote "
        f"{files.report}, {files.hr_over_time.name}, {files.calibration_tradeoff.name}, {files.results.name}"
    )


def _evaluate_e2e(
    dataset: Dataset,
    events: list[UserEvent],
    out: Path,
    k: int,
    n_list: int,
    weight: float,
    searches: bool,
    lockstep: bool,
    bootstrap: str | None,
    keep_dir: Path | None,
    run_settings: dict[str, object],
    *,
    workers: int | None = None,
    item_hop: int = DEFAULT_ITEM_HOP,
) -> None:
    """`workers`: that many worker processes, compared with the fast path's simulation of them (`Deployment`);
    None: one worker, compared with streamrec in one process."""
    import asyncio

    from streamrec.streams.tools.e2e import E2EError, E2EOptions, compare, run_e2e, write_e2e_report
    from streamrec.streams.tools.worker_process import WorkerError

    options = E2EOptions(
        list_length=n_list,
        calibration_weight=weight,
        lockstep=lockstep,
        bootstrap=bootstrap,
        keep_dir=keep_dir,
        workers=workers or 1,
    )
    console.print(
        f"{dataset.name}: {len(events):,} events, {len(dataset.items):,} items; end to end "
        f"({'lockstep' if lockstep else 'free-running'}), then the fast path over the same events"
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        sent = progress.add_task("events sent", total=len(events))
        lists = progress.add_task("lists read", total=len(events))

        def on_progress(what: str, count: int) -> None:
            progress.update(sent if what == "sent" else lists, completed=count)

        try:
            run = asyncio.run(run_e2e(get_settings(), dataset.items, events, options, on_progress))
        except (E2EError, WorkerError) as error:
            console.print(f"[red]✗ {error}[/red]")
            raise typer.Exit(1) from error
    if run.teardown_warning:
        console.print(f"[yellow]! {run.teardown_warning}[/yellow]")
    console.print(f"read {run.lists_received:,} lists in {run.replay_seconds:.1f} s; scoring both paths")
    system = build_streamrec(weight, searches, top_n=n_list)
    if workers is not None:
        deployments: dict[str, Recommender] = {}
        add_deployments(deployments, [workers], weight, n_list, item_hop, per_worker=False)
        system = deployments[f"streamrec, {workers} workers"]
    comparison = compare(dataset.items, events, run, system, name=streamrec_name(weight), k=k, list_length=n_list)
    md, js = write_e2e_report(out, comparison, run, dict(run_settings))
    table = Table(title=f"fast path vs end to end: {comparison.points:,} evaluation points")
    for column in ("metric", "fast", "e2e", "|diff|"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for key, label in (("hr", f"HR@{k}"), ("ndcg", f"NDCG@{k}"), ("mrr", f"MRR@{n_list}")):
        fast_value, e2e_value = getattr(comparison.fast, key), getattr(comparison.e2e, key)
        table.add_row(label, f"{fast_value:.4f}", f"{e2e_value:.4f}", f"{comparison.metric_diffs[key]:.4f}")
    console.print(table)
    console.print(
        f"held lists identical at {comparison.lists_identical:,} of {comparison.points:,} points; "
        f"{comparison.missing_lists:,} points without a list; wrote {md} and {js}"
    )


def _loop_text(systems: dict[str, Recommender], name: str | None, weight: float, every: int) -> str:
    from streamrec.models.evaluate.retraining import RetrainedLoop

    if name is None:
        return "not run"
    loop = systems[name]
    swaps = f" ({loop.swaps} swaps)" if isinstance(loop, RetrainedLoop) else ""
    return (
        f"streamrec λ={weight:g} with its item model (`train_item_model`: ALS, 32 factors, 15 iterations, and a "
        f"co-occurrence snapshot) retrained every {every:,} interactions on the ratings (confidence: the rating) and "
        f"plays (1) learnt so far, turned onto the model before it, and swapped in before the next event{swaps}"
    )


def _command_line() -> str:
    """The command as run, with its arguments as given."""
    import shlex
    import sys

    return shlex.join(["streamrec", *sys.argv[1:]])


def _confidence_text(als: ALSParams) -> str:
    if als.rating_weight == 0:
        return f"{als.alpha:g} per interacted pair (ratings and plays alike)"
    return f"{als.alpha:g} x (1 + {als.rating_weight:g} x (rating - 1) / 4) per rated pair, {als.alpha:g} per play"


def _implicit_version() -> str:
    from importlib.metadata import version

    return version("implicit")


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
