"""The embedded Kafka broker: noida-db (one local binary) started in the background for dev, tests and demo.

`up` / `down` / `status` wrap the `noida-db` CLI for the data dir `settings.broker_dir` and the port in
`settings.bootstrap_servers`; point that setting at a real cluster and nothing here is needed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.resources
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from streamrec.streams.kafka.admin import BrokerUnavailableError, wait_for_broker
from streamrec.streams.settings import Settings
from streamrec.streams.tools.ports import listener_of, port_in_use

_T = TypeVar("_T")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
_KAFKA_LINE = re.compile(r"kafka\s+(?P<host>[\w.\-]+):(?P<port>\d+)")
_CLI_TIMEOUT_S = 30.0

# Known noida-db 0.2.3 gaps (work around them, don't rely on them):
# - a consumer killed with SIGKILL stays in its group until the broker restarts: stop workers gracefully;
# - writes acknowledged in the last ~1 s can be lost if the broker itself is SIGKILLed: stop it with `down`;
# - auto-created topics get 1 partition: create topics explicitly (`streams.kafka.admin.create_topics`);
# - the whole log lives in memory and is saved as one JSON file (`kafka.json`) in the data dir;
# - `cleanup.policy=compact` is accepted and reported, but logs are never compacted (all versions stay);
# - the server is its own process group: an interrupted test run can leave it running (`noida-db down`);
# - the binary prints a harmless GLIBC "weak version" warning on stderr, filtered out here.


class BrokerError(RuntimeError):
    """The embedded broker could not be started, stopped or queried."""


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    running: bool
    data_dir: Path
    pid: int | None = None
    kafka_address: str | None = None  # "host:port" while Kafka is served, else None
    version: str | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "noida.log"


def up(settings: Settings, *, timeout_s: float = 30.0) -> BrokerStatus:
    """Start the broker (Kafka only) unless it already runs on `settings.broker_dir`; return once it answers.

    Blocks the calling thread; from async code use `await asyncio.to_thread(up, settings)`.
    Raises BrokerError if it cannot start (e.g. the port is taken by any other process, another broker
    included), if it already runs on this data dir with another Kafka port, or if it does not answer a metadata
    request within `timeout_s`.
    """
    host, port = embedded_address(settings.bootstrap_servers)
    data_dir = settings.broker_dir.resolve()
    current = status(settings)
    if current.running:
        _check_serves_port(current, port)
    else:
        # Checked before starting: whatever answers on the port then is not ours, and clients would reach it.
        if port_in_use(port):
            raise BrokerError(port_taken_message(port))
        data_dir.mkdir(parents=True, exist_ok=True)
        result = _run_cli("up", "--data-dir", str(data_dir), "--only", "kafka", "--kafka-port", str(port))
        if result.returncode != 0:
            if "already in use" in _output(result):  # taken between the check and the start
                raise BrokerError(port_taken_message(port))
            raise BrokerError(_output(result) or f"noida-db did not start; see {data_dir / 'noida.log'}")
        current = status(settings)
        if not current.running:
            raise BrokerError(f"noida-db exited right after starting; see {current.log_path}")
        _check_serves_port(current, port)
    deadline = time.monotonic() + timeout_s
    _wait_for_port(host, port, deadline, current.log_path)
    bootstrap = f"{host}:{port}"
    try:
        _run_coroutine(wait_for_broker(bootstrap, timeout_s=max(deadline - time.monotonic(), 1.0)))
    except BrokerUnavailableError as error:
        raise BrokerError(f"{error}; see {current.log_path}") from error
    return current


def down(settings: Settings, *, timeout_s: float = 30.0) -> BrokerStatus:
    """Stop the broker on `settings.broker_dir` gracefully (data is saved); a no-op if it isn't running."""
    before = status(settings)
    if not before.running:
        return before
    result = _run_cli("down", "--data-dir", str(settings.broker_dir.resolve()))
    if result.returncode != 0:
        raise BrokerError(f"noida-db down failed:\n{_output(result)}")
    if before.pid is not None:
        _wait_for_exit(before.pid, time.monotonic() + timeout_s)
    return status(settings)


def status(settings: Settings) -> BrokerStatus:
    """Ask noida-db whether a server runs on `settings.broker_dir`, and where it serves Kafka."""
    data_dir = settings.broker_dir.resolve()
    if not data_dir.is_dir():
        return BrokerStatus(running=False, data_dir=data_dir)
    result = _run_cli("status", "--data-dir", str(data_dir))
    text = _output(result)
    if result.returncode != 0 or "isn't running" in text:
        return BrokerStatus(running=False, data_dir=data_dir)
    control = _read_control_file(data_dir)
    kafka = _KAFKA_LINE.search(text)
    return BrokerStatus(
        running=True,
        data_dir=data_dir,
        pid=_int_or_none(control.get("pid")),
        kafka_address=f"{kafka['host']}:{kafka['port']}" if kafka else None,
        version=str(control["version"]) if "version" in control else None,
    )


def port_taken_message(port: int) -> str:
    """Why `up` refuses a port some other process holds, naming it where /proc shows it, and what to do."""
    holder = listener_of(port)
    who = "another process" if holder is None else holder.describe()
    message = f"port {port} is already in use by {who}, so the broker cannot serve Kafka there. "
    other_dir = holder.option("--data-dir") if holder is not None else None
    if other_dir is not None:
        message += (
            f"It is a noida-db broker with data dir {other_dir}: use it (STREAMREC_BROKER_DIR={other_dir}) or stop "
            f"it (STREAMREC_BROKER_DIR={other_dir} streamrec broker down); or"
        )
    else:
        message += "Stop that process, or"
    return message + " pick a free port: STREAMREC_BOOTSTRAP_SERVERS=127.0.0.1:<free port> streamrec broker up"


def embedded_address(bootstrap_servers: str) -> tuple[str, int]:
    """The (host, port) the embedded broker must serve; it only runs locally, on a single address."""
    servers = [server.strip() for server in bootstrap_servers.split(",") if server.strip()]
    if len(servers) != 1:
        raise BrokerError(f"the embedded broker serves one address, got bootstrap_servers={bootstrap_servers!r}")
    host, _, port_text = servers[0].rpartition(":")
    if host not in _LOOPBACK_HOSTS or not port_text.isdigit():
        raise BrokerError(
            f"the embedded broker runs on 127.0.0.1:<port>, got {servers[0]!r}; "
            "for a remote cluster skip `broker up` and just set STREAMREC_BOOTSTRAP_SERVERS"
        )
    return "127.0.0.1", int(port_text)


def noida_binary() -> Path:
    """The noida-db executable: the one shipped in the `noida_db` wheel, else the console script."""
    try:
        packaged = Path(str(importlib.resources.files("noida_db").joinpath("noida-db")))
    except ModuleNotFoundError:
        packaged = None
    if packaged is not None and os.access(packaged, os.X_OK):
        return packaged
    beside_python = Path(sys.executable).parent / "noida-db"
    if os.access(beside_python, os.X_OK):
        return beside_python
    found = shutil.which("noida-db")
    if found is None:
        raise BrokerError("noida-db not found: install the project (`make setup`) or `pip install noida-db`")
    return Path(found)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # stdin closed and outputs captured: the daemon `up` spawns writes to its own log, not to our pipes.
    try:
        return subprocess.run(
            [str(noida_binary()), *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=_CLI_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise BrokerError(f"`noida-db {' '.join(args)}` did not finish in {_CLI_TIMEOUT_S:.0f} s") from error


def _output(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stdout + result.stderr).splitlines()
    return "\n".join(line for line in lines if "GLIBC_" not in line).strip()


def _check_serves_port(current: BrokerStatus, port: int) -> None:
    if current.kafka_address is None:
        raise BrokerError(
            f"noida-db runs on {current.data_dir} without Kafka; stop it (`streamrec broker down`) and retry"
        )
    if not current.kafka_address.endswith(f":{port}"):
        raise BrokerError(
            f"noida-db already runs on {current.data_dir} serving Kafka at {current.kafka_address}, "
            f"not port {port}; stop it (`streamrec broker down`) or set STREAMREC_BOOTSTRAP_SERVERS"
        )


def _wait_for_port(host: str, port: int, deadline: float, log_path: Path) -> None:
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                message = f"Kafka port {host}:{port} never accepted connections ({error}); see {log_path}"
                raise BrokerError(message) from error
            time.sleep(0.1)


def _wait_for_exit(pid: int, deadline: float) -> None:
    while _process_alive(pid):
        if time.monotonic() >= deadline:
            raise BrokerError(f"noida-db (pid {pid}) still running after `down`")
        time.sleep(0.05)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_control_file(data_dir: Path) -> dict[str, Any]:
    try:
        loaded = json.loads((data_dir / "noida.control.json").read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _run_coroutine(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run `coroutine` on a private loop in a helper thread: safe whether or not the caller runs a loop, and
    it leaves the caller's current event loop untouched (asyncio.run in the main thread would reset it)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
