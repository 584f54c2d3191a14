"""A `streamrec worker` in a subprocess, configured by a `Settings` (`WorkerProcess`): for the demo, the end-to-end
evaluation, the benchmarks and the integration tests. `ManagedProcess` is the subprocess handling underneath, also
used for the benchmarks' other subprocesses (a Faust null agent, py-spy).
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Self

import orjson
from pydantic import SecretStr

from streamrec.streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]  # the project root: workers run from there
STOP_TIMEOUT_S = 150.0  # a stop during a rebalance can take 60 s+


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a subprocess see exactly `settings` (and no stray STREAMREC_* values)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):  # the child needs the secret itself, not its mask
            env[f"STREAMREC_{name.upper()}"] = value.get_secret_value()
        elif value is not None:  # unset: the setting's default (None), not the text "None"
            env[f"STREAMREC_{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def http_get(url: str, timeout_s: float = 10.0, *, token: SecretStr | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body); status 0 when nothing answers. `token`: sent as `Authorization: Bearer <token>`
    (the worker's STREAMREC_HTTP_TOKEN)."""
    headers = {} if token is None else {"Authorization": f"Bearer {token.get_secret_value()}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s) as response:
            return int(response.status), dict(response.headers.items()), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), dict(error.headers.items()), bytes(error.read())
    except (urllib.error.URLError, OSError):
        return 0, {}, b""


class WorkerError(RuntimeError):
    """The worker exited, or did not become healthy, or answered with an error; the message has its log."""


def _limit_address_space(limit_bytes: int | None) -> Callable[[], None] | None:
    if limit_bytes is None:
        return None

    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


class ManagedProcess:
    """A subprocess with its output appended to `log_path`; `stop()` is one SIGTERM and a long wait (a second
    SIGTERM, then SIGKILL, only if it hangs; a SIGKILL is noted in `killed`). Never SIGKILL first: on the embedded
    broker a consumer killed with SIGKILL stays in its group until the broker restarts, and a stop during a
    rebalance can need the group's rebalance timeout (60 s) before the consumer leaves.

    `own_session`: the child gets its own session, so a Ctrl-C in the terminal reaches only us and we stop it
    ourselves. `memory_limit_bytes`: an address-space limit (RLIMIT_AS) for the child, so an oversized
    allocation fails there instead of pushing a shared machine into the OOM killer.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        own_session: bool = False,
        memory_limit_bytes: int | None = None,
    ) -> None:
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self.own_session = own_session
        self.memory_limit_bytes = memory_limit_bytes
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed = False
        self._log: IO[bytes] | None = None
        self._terminated = False

    def command(self) -> list[str]:
        return self.argv

    def environment(self) -> dict[str, str]:
        return dict(os.environ) if self.env is None else self.env

    def start(self) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=self.own_session,
            preexec_fn=_limit_address_space(self.memory_limit_bytes),
        )
        return self

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def terminate(self) -> None:
        """Send SIGTERM without waiting (to stop several processes at once; then call `stop`)."""
        if self.proc is not None and self.proc.poll() is None and not self._terminated:
            self.proc.send_signal(signal.SIGTERM)
            self._terminated = True

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """One SIGTERM and a long wait; a second SIGTERM, then SIGKILL, only if it hangs. The exit status."""
        proc = self.proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                # Only one SIGTERM up front: a second one arriving after a worker closed its loop (and with it
                # the signal handlers) would kill it mid-shutdown.
                self.terminate()
                try:
                    proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(15)
                    except subprocess.TimeoutExpired:
                        self.killed = True
                        proc.kill()
                        proc.wait()
            return int(proc.returncode)
        finally:
            self.proc = None
            self._terminated = False
            if self._log is not None:
                self._log.close()
                self._log = None

    async def stop_async(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        return await asyncio.to_thread(self.stop, timeout_s)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class WorkerProcess(ManagedProcess):
    """`python -m streamrec.streams.cli worker --log-level <log_level>` with exactly `settings` in its environment."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        log_level: str = "info",
        own_session: bool = False,
        *,
        memory_limit_bytes: int | None = None,
    ) -> None:
        super().__init__([], log_path, own_session=own_session, memory_limit_bytes=memory_limit_bytes)
        self.settings = settings
        self.log_level = log_level

    def command(self) -> list[str]:
        return [sys.executable, "-m", "streamrec.streams.cli", "worker", "--log-level", self.log_level]

    def environment(self) -> dict[str, str]:
        return settings_env(self.settings)

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    async def get(self, path: str, timeout_s: float = 30.0) -> tuple[int, bytes]:
        url = self.base_url + path
        status, _, body = await asyncio.to_thread(http_get, url, timeout_s, token=self.settings.http_token)
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
