"""The `streamrec` command line. Each sub-command lives in its own module and registers itself here; other
packages add theirs through the `streamrec.commands` entry point group (the benchmarks add `bench`)."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import typer
from pydantic import ValidationError

from streamrec.streams.settings import SettingsError

app = typer.Typer(
    name="streamrec",
    help="Real-time recommendations on Kafka: broker, topics, model, worker, replay, evaluation, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a traceback's locals can hold a secret (the SASL password, the token)
)

# Sub-command modules, each exposing `register(app)`; imported lazily so `--help` stays fast.
_MODULES = ("broker", "topics", "dataset", "train", "worker", "replay", "demo", "evaluate")
COMMANDS_GROUP = "streamrec.commands"


def _register_all() -> None:
    for name in _MODULES:
        module = importlib.import_module(f"streamrec.streams.cli.{name}")
        module.register(app)
    for entry in entry_points(group=COMMANDS_GROUP):
        entry.load()(app)


def main() -> None:
    _register_all()
    try:
        app()
    except (ValidationError, SettingsError) as error:  # bad STREAMREC_* settings: say which, no traceback
        typer.echo(f"invalid settings: {error}", err=True)
        raise SystemExit(2) from None
