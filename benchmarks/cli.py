"""`streamrec bench`: the benchmark phases in one run on the same pre-produced events; results as JSON, markdown
and plots under --out (see benchmarks/README.md). Added to the `streamrec` command line through the
`streamrec.commands` entry point group (`register`), so the streams package never imports the benchmarks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from streamrec.benchmarks.run import BenchConfig

console = Console()
_PHASES = ("raw", "faust", "pipeline", "freshness", "sweep", "state", "live", "ann")
_CATALOGS = {"ml-100k": ("ml-100k",), "synthetic-100k": ("synthetic-100k",), "both": ("ml-100k", "synthetic-100k")}


def parse_only(text: str) -> frozenset[str]:
    phases = frozenset(part.strip().lower() for part in text.split(",") if part.strip())
    unknown = sorted(phases - set(_PHASES))
    if unknown or not phases:
        raise typer.BadParameter(f"choose from {','.join(_PHASES)}; got {text!r}", param_hint="--only")
    return phases


def parse_rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        rates = ()
    if not rates or any(rate < 1.0 for rate in rates):
        raise typer.BadParameter(f"events/s >= 1, comma-separated; got {text!r}", param_hint="--sweep-rates")
    return rates


def bench(
    events: Annotated[
        int, typer.Option("--events", min=1_000, help="events produced for the throughput phases")
    ] = 200_000,
    only: Annotated[str, typer.Option("--only", help="phases to run, comma-separated")] = ",".join(_PHASES),
    catalog: Annotated[str, typer.Option("--catalog", help="ml-100k | synthetic-100k | both")] = "both",
    out: Annotated[Path, typer.Option("--out", help="directory for results.json and results.md")] = Path("docs/bench"),
    external: Annotated[
        bool,
        typer.Option("--external", help="use the cluster at STREAMREC_BOOTSTRAP_SERVERS instead of an embedded broker"),
    ] = False,
    broker_port: Annotated[
        int, typer.Option("--broker-port", min=0, max=65535, help="embedded broker port (0: free)")
    ] = 0,
    work_dir: Annotated[Path | None, typer.Option("--work-dir", help="broker data, worker state, logs (kept)")] = None,
    partitions: Annotated[int, typer.Option("--partitions", min=1, max=64)] = 4,
    pipeline_seconds: Annotated[float, typer.Option("--pipeline-seconds", min=5.0, help="time cap of phase 3")] = 120.0,
    freshness_rate: Annotated[float, typer.Option("--freshness-rate", min=1.0, help="offered events/s")] = 5_000.0,
    freshness_seconds: Annotated[float, typer.Option("--freshness-seconds", min=1.0)] = 60.0,
    sweep_rates: Annotated[
        str, typer.Option("--sweep-rates", help="offered events/s of the sweep phase, comma-separated")
    ] = "250,500,1000,1500,2000,3000",
    sweep_seconds: Annotated[float, typer.Option("--sweep-seconds", min=1.0, help="each sweep run")] = 20.0,
    state_users: Annotated[int, typer.Option("--state-users", min=1)] = 100_000,
    state_events_per_user: Annotated[int, typer.Option("--state-events-per-user", min=1)] = 2,
    state_mode: Annotated[str, typer.Option("--state-mode", help="auto | events | changelog (see README)")] = "auto",
    state_seconds: Annotated[
        float, typer.Option("--state-seconds", min=10.0, help="time cap of the events mode")
    ] = 900.0,
    ann_queries: Annotated[int, typer.Option("--ann-queries", min=10)] = 500,
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help="item model artifacts for the workers")] = None,
    memory_budget_gb: Annotated[
        float | None,
        typer.Option(
            "--memory-budget-gb", min=0.1, help="max worker co-occurrence matrix (default: half the free memory)"
        ),
    ] = None,
    profile_seconds: Annotated[
        int, typer.Option("--profile-seconds", min=0, help="py-spy the pipeline worker (0: off)")
    ] = 0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Measure streamrec against its baselines; rates are side by side in one run, so compare the ratios."""
    from streamrec.benchmarks.run import BenchConfig
    from streamrec.streams.settings import get_settings

    if catalog not in _CATALOGS:
        raise typer.BadParameter(f"choose one of {', '.join(_CATALOGS)}", param_hint="--catalog")
    if state_mode not in ("auto", "events", "changelog"):
        raise typer.BadParameter("choose auto, events or changelog", param_hint="--state-mode")
    settings = get_settings()
    config = BenchConfig(
        events=events,
        only=parse_only(only),
        catalogs=_CATALOGS[catalog],
        out=out,
        partitions=partitions,
        external_bootstrap=settings.bootstrap_servers if external else None,
        broker_port=broker_port,
        work_dir=work_dir,
        cache_dir=settings.cache_dir,
        model_dir=model_dir,
        pipeline_seconds=pipeline_seconds,
        freshness_rate=freshness_rate,
        freshness_seconds=freshness_seconds,
        sweep_rates=parse_rates(sweep_rates),
        sweep_seconds=sweep_seconds,
        state_users=state_users,
        state_events_per_user=state_events_per_user,
        state_mode=state_mode,
        state_seconds=state_seconds,
        ann_queries=ann_queries,
        memory_budget_bytes=None if memory_budget_gb is None else int(memory_budget_gb * 2**30),
        profile_seconds=profile_seconds,
        seed=seed,
        command="streamrec bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "streamrec bench",
    )
    _run(config)


def _run(config: BenchConfig) -> None:
    from streamrec.benchmarks.report import render_markdown
    from streamrec.benchmarks.run import run

    try:
        results = run(config, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; partial results (if any) are in[/yellow] " + str(config.out))
        raise typer.Exit(130) from None
    console.print()
    console.print(render_markdown(results))
    console.print(f"[green]✔[/green] results in {config.out / 'results.json'} and {config.out / 'results.md'}")


def large_catalog(
    datasets: Annotated[
        str, typer.Option("--datasets", help="comma-separated: ml-100k, kuairand-pure (the shared local copy)")
    ] = "ml-100k,kuairand-pure",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="only the first N events of each")] = None,
    sample_every: Annotated[
        int, typer.Option("--sample-every", min=1, help="evaluation points between two per-source recall samples")
    ] = 20,
    calibration_weight: Annotated[
        float | None,
        typer.Option("--calibration-weight", min=0.0, max=1.0, help="default STREAMREC_CALIBRATION_WEIGHT"),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="directory for results.json and results.md")] = Path(
        "docs/large-catalog"
    ),
    kuairand_path: Annotated[
        Path | None, typer.Option("--kuairand-path", help="the KuaiRand-Pure folder (default: the shared copy)")
    ] = None,
) -> None:
    """The large-catalog path forced on real interactions against the exact path: HR@10, CPU time, and the recall
    of its candidates against scoring every item (per source too)."""
    from streamrec.benchmarks.large_catalog_report import run_datasets

    run_datasets(
        [name.strip() for name in datasets.split(",") if name.strip()],
        limit=limit,
        sample_every=sample_every,
        calibration_weight=calibration_weight,
        out=out,
        console=console,
        command="streamrec large-catalog " + " ".join(sys.argv[2:]),
        kuairand_path=kuairand_path,
    )


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
    app.command("large-catalog")(large_catalog)
