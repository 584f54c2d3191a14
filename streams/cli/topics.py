"""`streamrec topics create|list`: the project's topics on the broker at STREAMREC_BOOTSTRAP_SERVERS."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from streamrec.streams.settings import get_settings

_T = TypeVar("_T")

topics_app = typer.Typer(help="Create and inspect the project's Kafka topics.", no_args_is_help=True)
console = Console()


@topics_app.command()
def create(
    partitions: int | None = typer.Option(
        None, "--partitions", min=1, help="partitions per topic (default: STREAMREC_PARTITIONS)"
    ),
) -> None:
    """Create the input, output and dead-letter topics; existing topics are reported, never changed."""
    from streamrec.streams.kafka.admin import TopicCreationError, create_topics, default_topics

    settings = get_settings()
    if partitions is not None:
        settings = settings.model_copy(update={"partitions": partitions})
    specs = default_topics(settings)
    try:
        results = _run(lambda: create_topics(settings.bootstrap_servers, specs))
        errors: dict[str, str] = {}
    except TopicCreationError as error:
        results, errors = error.results, error.errors
    table = Table(title=f"topics at {settings.bootstrap_servers}")
    for column in ("topic", "partitions", "compacted", "result"):
        table.add_column(column)
    for spec in specs:
        outcome = results.get(spec.name) or f"[red]failed: {errors.get(spec.name)}[/red]"
        if "NOT" in outcome:
            outcome = f"[yellow]{outcome}[/yellow]"
        table.add_row(spec.name, str(spec.partitions), "yes" if spec.compacted else "no", outcome)
    console.print(table)
    if errors:
        raise typer.Exit(1)


@topics_app.command("list")
def list_() -> None:
    """List the topics on the broker with their partition counts; flag the project's missing topics."""
    from streamrec.streams.kafka.admin import default_topics, list_topics

    settings = get_settings()
    counts = _run(lambda: list_topics(settings.bootstrap_servers))
    table = Table(title=f"topics at {settings.bootstrap_servers}")
    table.add_column("topic")
    table.add_column("partitions", justify="right")
    for name in sorted(counts):
        table.add_row(name, str(counts[name]))
    console.print(table)
    missing = [spec.name for spec in default_topics(settings) if spec.name not in counts]
    if missing:
        console.print(f"[yellow]missing: {', '.join(missing)}[/yellow] (run `streamrec topics create`)")


def _run(call: Callable[[], Awaitable[_T]]) -> _T:
    """Run an admin call, turning an unreachable broker into a one-line error instead of a traceback."""
    from streamrec.streams.kafka.admin import BrokerUnavailableError, wait_for_broker

    async def checked() -> _T:
        await wait_for_broker(get_settings().bootstrap_servers, timeout_s=5.0)
        return await call()

    try:
        return asyncio.run(checked())
    except BrokerUnavailableError as error:
        console.print(f"[red]✗ {error}[/red]\n  start the embedded one with `streamrec broker up`")
        raise typer.Exit(1) from error


def register(app: typer.Typer) -> None:
    app.add_typer(topics_app, name="topics")
