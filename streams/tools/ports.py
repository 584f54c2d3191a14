"""Is a local TCP port taken, and by which process: so `broker up` can refuse a port someone else serves and say who.

Linux only for naming the holder (/proc/net/tcp*, /proc/<pid>/fd); elsewhere the holder is simply unknown.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"  # TCP state in /proc/net/tcp*
_PROBE_TIMEOUT_S = 0.5


@dataclass(frozen=True, slots=True)
class Holder:
    """The process listening on a port (as far as /proc lets us see it)."""

    pid: int
    argv: tuple[str, ...]

    def describe(self) -> str:
        command = " ".join(" ".join(self.argv).split())  # one line, however the arguments were written
        return f"pid {self.pid} ({command[:160] or 'command line not readable'})"

    def option(self, name: str) -> str | None:
        """The value of `name` in the holder's command line (`--data-dir X` or `--data-dir=X`)."""
        for index, arg in enumerate(self.argv):
            if arg == name and index + 1 < len(self.argv):
                return self.argv[index + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
        return None


def port_in_use(port: int) -> bool:
    """Something listens on `port` at a loopback address (IPv4 or IPv6), or holds 127.0.0.1:`port` bound."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.settimeout(_PROBE_TIMEOUT_S)
                if probe.connect_ex((host, port)) == 0:
                    return True
        except OSError:
            continue  # e.g. no IPv6 on this host
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed socket's TIME_WAIT is no holder
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def listener_of(port: int, proc: Path = Path("/proc")) -> Holder | None:
    """The process with a socket listening on `port`, if /proc shows it (processes of other users may not)."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return Holder(int(pid_dir.name), _argv(pid_dir))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return None


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    return inodes


def _argv(pid_dir: Path) -> tuple[str, ...]:
    try:
        raw = (pid_dir / "cmdline").read_bytes()
    except OSError:
        return ()
    return tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)
