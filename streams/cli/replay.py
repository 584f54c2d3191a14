"""`streamrec replay`: send a dataset's catalog and event stream to Kafka, resumably, with a progress bar."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from streamrec.models.simulate import DEFAULT_SEARCH_RATE, DEFAULT_SEED
from streamrec.streams.cli.dataset import NAME_OPTION, PATH_OPTION
from streamrec.streams.settings import get_settings

console = Console()
CHECKPOINT_OPTION = typer.Option(
    None, "--checkpoint", dir_okay=False, help="checkpoint file (default: in STREAMREC_DATA_DIR/replay)"
)


class EventRateColumn(ProgressColumn):
    """Events per second sent by this run (the average: sends come in bursts between flushes)."""

    def render(self, task: Task) -> Text:
        sent = task.completed - task.fields.get("already", 0)
        elapsed = task.finished_time if task.finished else task.elapsed
        rate = sent / elapsed if elapsed and sent > 0 else None
        text = "– events/s" if rate is None else f"{rate:,.{0 if rate >= 10 else 1}f} events/s"
        return Text(text, style="progress.data.speed")


def replay(
    name: str = NAME_OPTION,
    path: Path | None = PATH_OPTION,
    rate: float = typer.Option(0.0, "--rate", min=0.0, help="events per second; 0 = as fast as possible"),
    limit: int | None = typer.Option(
        None, "--limit", min=0, help="replay only the stream's first N events (counted from its start)"
    ),
    plays: bool = typer.Option(True, "--plays/--no-plays", help="derived plays (one per rating)"),
    searches: bool = typer.Option(False, "--searches/--no-searches", help="the dataset's tags and simulated searches"),
    search_rate: float = typer.Option(
        DEFAULT_SEARCH_RATE, "--search-rate", min=0.0, max=1.0, help="share of watches preceded by a search"
    ),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="seed of the play/search simulation"),
    lockstep: bool = typer.Option(
        False, "--lockstep", help="wait for each event's recommendation list before sending the next"
    ),
    lockstep_timeout: float = typer.Option(
        30.0, "--lockstep-timeout", min=0.1, help="seconds to wait for a list in --lockstep mode"
    ),
    resume: bool | None = typer.Option(
        None,
        "--resume/--from-start",
        help="continue after the events the checkpoint records as sent / ignore it and send everything",
    ),
    checkpoint: Path | None = CHECKPOINT_OPTION,
) -> None:
    """Replay a dataset into Kafka: the catalog, then ratings/plays/searches in time order, keyed by user."""
    from streamrec.streams.kafka import BrokerUnavailableError, DeliveryError, wait_for_broker
    from streamrec.streams.tools.data import DatasetError, load_dataset
    from streamrec.streams.tools.replay import ReplayError, ReplayOptions, StreamOptions, default_checkpoint_path
    from streamrec.streams.tools.replay import replay as run_replay

    settings = get_settings()
    try:
        dataset = load_dataset(name=name, path=path, cache_dir=settings.cache_dir)
    except DatasetError as error:
        console.print(f"[red]✗ {error}[/red]")
        raise typer.Exit(1) from error
    checkpoint_path = checkpoint or default_checkpoint_path(settings, dataset.name)
    progress = Progress(
        TextColumn(f"[bold]replay {dataset.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        EventRateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    task = progress.add_task("replay", total=None)

    def on_start(total: int, already: int) -> None:
        if already:
            console.print(f"resuming after {already:,} events recorded in {checkpoint_path}")
        progress.reset(
            task, total=total, completed=already, already=already
        )  # the clock starts now, not while preparing
        progress.start()

    async def run() -> None:
        await wait_for_broker(settings.bootstrap_servers, timeout_s=5.0)
        try:
            result = await run_replay(
                dataset,
                bootstrap=settings.bootstrap_servers,
                settings=settings,
                checkpoint_path=checkpoint_path,
                stream=StreamOptions(plays=plays, searches=searches, seed=seed, search_rate=search_rate),
                options=ReplayOptions(
                    rate=rate,
                    limit=limit,
                    lockstep=lockstep,
                    lockstep_timeout_s=lockstep_timeout,
                    resume=resume,
                ),
                on_start=on_start,
                on_sent=lambda n: progress.advance(task, n),
            )
        finally:
            progress.stop()
        console.print(
            f"[green]✔[/green] {result.sent:,} events sent ({result.skipped:,} already sent earlier), "
            f"{result.catalog_items:,} catalog items, in {result.elapsed_s:.1f} s; "
            f"checkpoint {checkpoint_path}"
        )

    try:
        asyncio.run(run())
    except BrokerUnavailableError as error:
        console.print(f"[red]✗ {error}[/red]\n  start the embedded one with `streamrec broker up`")
        raise typer.Exit(1) from error
    except (ReplayError, DeliveryError) as error:
        console.print(f"[red]✗ {error}[/red]")
        raise typer.Exit(1) from error
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/yellow]: `--resume` continues from {checkpoint_path}")
        raise typer.Exit(130) from None


def register(app: typer.Typer) -> None:
    app.command(name="replay")(replay)
