"""`streamrec worker`: run the Faust worker in this process with the STREAMREC_* settings. SIGINT and SIGTERM stop
it gracefully (Faust commits offsets, flushes the producer, leaves the consumer group and closes RocksDB); the
process then exits with status 0. `python -m streamrec.streams.cli worker` is the same command without an installed
`streamrec` script.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import NoReturn

import typer

log = logging.getLogger(__name__)
_THREAD_GRACE_S = 10.0

_LEVELS = ("critical", "error", "warning", "info", "debug")


def worker(
    log_level: str = typer.Option("info", "--log-level", "-l", help=f"one of {', '.join(_LEVELS)}"),
    web_port: int | None = typer.Option(None, "--web-port", min=1, max=65535, help="override STREAMREC_WEB_PORT"),
) -> None:
    """Consume ratings/plays/searches/catalog, keep profiles, publish lists to `recommendations`."""
    import faust

    from streamrec.models.warm_up import compile_kernels
    from streamrec.streams.internals.state_healing import tell_discarded
    from streamrec.streams.internals.unclean_stop import LocalStateClaim, StateInUse
    from streamrec.streams.settings import get_settings
    from streamrec.streams.worker.app import create_app

    level = log_level.lower()
    if level not in _LEVELS:
        raise typer.BadParameter(f"log level must be one of {', '.join(_LEVELS)}", param_hint="--log-level")
    settings = get_settings()
    if web_port is not None:
        settings = settings.model_copy(update={"web_port": web_port})
    app = create_app(settings)
    # Local table state a killed worker left may be ahead of its changelogs: dropped before Faust opens it.
    local_state = LocalStateClaim(Path(app.conf.datadir), Path(app.conf.tabledir))
    try:
        discarded = local_state.claim()
    except StateInUse as error:
        raise typer.BadParameter(str(error), param_hint="STREAMREC_DATA_DIR") from None
    for state in discarded:
        tell_discarded(app, state)
    # Before joining the group: compiling in the first batch would block the event loop past the session timeout.
    started = time.perf_counter()
    compile_kernels(settings.stream_params())
    log.info("ranking and learning kernels ready in %.1f s", time.perf_counter() - started)
    runner = faust.Worker(app, loglevel=level, redirect_stdouts=False)
    # At WARNING and above Faust installs a terminal spinner that sets the root logger to DEBUG so it can spin
    # on every record: every aiokafka debug record is then built, several per event. No spinner.
    runner.spinner = None
    code: int = 1
    try:
        # execute_from_commandline installs the SIGINT/SIGTERM handlers and raises SystemExit when stopped.
        runner.execute_from_commandline()
        code = 0
    except SystemExit as stopped:
        code = 0 if stopped.code is None else stopped.code if isinstance(stopped.code, int) else 1
    finally:
        # Faust's stop has committed the offsets after flushing the producer: the state matches its changelogs.
        local_state.release(clean=code == 0)
    _exit(code)


def _exit(code: int) -> NoReturn:
    """Exit with `code`, giving leftover non-daemon threads a short grace period instead of waiting forever.

    Faust's consumer thread (not a daemon) can still be stuck in a group join when everything else has stopped
    (on noida-db a rebalance can stall for the rebalance timeout); everything that matters (offsets, producer,
    RocksDB) is done by then, so the process exits anyway instead of hanging."""
    deadline = time.monotonic() + _THREAD_GRACE_S
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [
        t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if stuck:
        log.warning("worker stopped; not waiting for stuck threads %s", stuck)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
