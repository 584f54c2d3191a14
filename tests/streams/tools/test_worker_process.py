"""`streams.tools.worker_process.ManagedProcess` (the subprocess handling under `WorkerProcess`): log file, graceful
stop, address-space limit. No broker, no worker: small Python children."""

from __future__ import annotations

import sys
from pathlib import Path

from streamrec.streams.settings import Settings
from streamrec.streams.tools.worker_process import ManagedProcess, WorkerProcess, settings_env

# Prints once it has its SIGTERM handler, then exits 3 on SIGTERM (a graceful stop with a recognisable status).
_GRACEFUL = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def _wait_for_line(process: ManagedProcess, line: str) -> None:
    import time

    deadline = time.monotonic() + 20
    while line not in process.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert line in process.log_text(), process.log_text()


def test_output_goes_to_the_log_and_stop_is_one_sigterm(tmp_path: Path) -> None:
    process = ManagedProcess([sys.executable, "-c", _GRACEFUL], tmp_path / "logs" / "child.log").start()
    assert process.alive() and process.pid is not None
    _wait_for_line(process, "ready")
    assert process.stop(timeout_s=20) == 3
    assert not process.killed and not process.alive() and process.proc is None
    assert process.log_tail(1) == "ready"
    assert process.stop() is None  # stopping twice is harmless


def test_the_address_space_limit_applies_to_the_child(tmp_path: Path) -> None:
    code = "import resource\nprint(resource.getrlimit(resource.RLIMIT_AS)[0], flush=True)\n"
    limit = 3 * 2**30
    process = ManagedProcess([sys.executable, "-c", code], tmp_path / "child.log", memory_limit_bytes=limit).start()
    assert process.proc is not None
    process.proc.wait(20)
    assert process.log_tail(1) == str(limit)
    assert process.stop() == 0


def test_worker_process_runs_the_worker_with_exactly_its_settings(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, app_id="wp-test", web_port=7123)  # type: ignore[call-arg]
    worker = WorkerProcess(settings, tmp_path / "w.log", log_level="warning", memory_limit_bytes=2**31)
    assert worker.command()[-4:] == ["streamrec.streams.cli", "worker", "--log-level", "warning"]
    assert worker.environment() == settings_env(settings)
    assert worker.environment()["STREAMREC_APP_ID"] == "wp-test"
    assert worker.base_url == "http://127.0.0.1:7123"
    assert worker.memory_limit_bytes == 2**31 and not worker.own_session
