"""A `streamrec worker` in a subprocess, configured by a `Settings`: for the demo, the end-to-end evaluation,
the benchmarks and the integration tests.

It is always stopped with one SIGTERM and a long wait, never SIGKILL first: on the embedded broker a
consumer killed with SIGKILL stays in its group until the broker restarts, and a stop during a rebalance
can need the group's rebalance timeout (60 s) before the consumer leaves.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a subprocess see exactly `settings` (and no stray STREAMREC_* values)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    for name, value in settings.model_dump().items():
        env[f"STREAMREC_{name.upper()}"] = str(value)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def http_get(url: str, timeout_s: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status), dict(response.headers.items()), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), dict(error.headers.items()), bytes(error.read())
    except (urllib.error.URLError, OSError):
        return 0, {}, b""


class WorkerError(RuntimeError):
    """The worker exited, or did not become healthy, or answered with an error; the message has its log."""


@dataclass
class WorkerProcess:
    settings: Settings
    log_path: Path
    log_level: str = "info"
    own_session: bool = False  # True: a Ctrl-C in the terminal reaches only us, and we stop the worker ourselves
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)
    _terminated: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    def start(self) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--log-level", self.log_level],
            cwd=ROOT,
            env=settings_env(self.settings),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=self.own_session,
        )
        return self

    async def get(self, path: str, timeout_s: float = 30.0) -> tuple[int, bytes]:
        status, _, body = await asyncio.to_thread(http_get, self.base_url + path, timeout_s)
        return status, body

    async def get_json(self, path: str) -> Any:
        status, body = await self.get(path)
        if status != 200:
            raise WorkerError(f"worker answered {status} to GET {path}: {body[:200]!r}\n{self.log_tail()}")
        return orjson.loads(body)

    async def wait_healthy(self, timeout_s: float = 120.0) -> dict[str, Any]:
        """The /health body once it answers 200 (a start includes a group join and table recovery)."""
        deadline = time.monotonic() + timeout_s
        last: tuple[int, bytes] = (0, b"")
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise WorkerError(f"worker exited with {self.proc.returncode}; log:\n{self.log_tail()}")
            last = await self.get("/health", timeout_s=10.0)
            if last[0] == 200:
                return dict(orjson.loads(last[1]))
            await asyncio.sleep(0.5)
        raise WorkerError(f"worker not healthy after {timeout_s:.0f} s (last {last!r}); log:\n{self.log_tail()}")

    def terminate(self) -> None:
        """Send SIGTERM without waiting (to stop several workers at once; then call `stop`)."""
        if self.proc is not None and self.proc.poll() is None and not self._terminated:
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, timeout_s: float = 150.0) -> int | None:
        """One SIGTERM and a long wait; a second SIGTERM, then SIGKILL, only if it hangs."""
        proc = self.proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                # Only one SIGTERM up front: a second one arriving after the worker closed its loop (and with it
                # the signal handlers) would kill it mid-shutdown.
                self.terminate()
                try:
                    proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            return int(proc.returncode)
        finally:
            self.proc = None
            self._terminated = False
            if self._log is not None:
                self._log.close()
                self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
