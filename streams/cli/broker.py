"""`streamrec broker up|down|status`: the embedded noida-db Kafka broker (see streams/tools/broker.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from streamrec.streams.settings import get_settings

if TYPE_CHECKING:
    from streamrec.streams.tools.broker import BrokerStatus

broker_app = typer.Typer(
    help="The embedded Kafka broker (noida-db) at STREAMREC_BOOTSTRAP_SERVERS, data in STREAMREC_BROKER_DIR.",
    no_args_is_help=True,
)
console = Console()


@broker_app.command()
def up(
    timeout: float = typer.Option(30.0, "--timeout", min=1.0, help="seconds to wait for the broker to answer"),
) -> None:
    """Start the broker in the background (a no-op if it already runs) and wait until it answers."""
    from streamrec.streams.tools import broker

    try:
        current = broker.up(get_settings(), timeout_s=timeout)
    except broker.BrokerError as error:
        console.print(f"[red]✗ {escape(str(error))}[/red]")
        raise typer.Exit(1) from error
    _print_status(current)


@broker_app.command()
def down() -> None:
    """Stop the broker gracefully; its data is saved in the broker dir."""
    from streamrec.streams.tools import broker

    settings = get_settings()
    try:
        was_running = broker.status(settings).running
        broker.down(settings)
    except broker.BrokerError as error:
        console.print(f"[red]✗ {escape(str(error))}[/red]")
        raise typer.Exit(1) from error
    message = "stopped" if was_running else "was not running"
    console.print(f"[green]✔[/green] broker {message} (data dir {settings.broker_dir.resolve()})")


@broker_app.command()
def status() -> None:
    """Show whether the broker runs and where; exit code 1 when it doesn't."""
    from streamrec.streams.tools import broker

    current = broker.status(get_settings())
    _print_status(current)
    if not current.running:
        raise typer.Exit(1)


def _print_status(current: BrokerStatus) -> None:
    if current.running:
        console.print(
            f"[green]✔[/green] noida-db {current.version or ''} running, pid {current.pid}, "
            f"Kafka at [bold]{current.kafka_address}[/bold], data dir {current.data_dir}"
        )
    else:
        console.print(f"[yellow]○[/yellow] broker not running (data dir {current.data_dir})")


def register(app: typer.Typer) -> None:
    app.add_typer(broker_app, name="broker")
