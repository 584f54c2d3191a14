"""streams.tools.ports: a taken port, and the process holding it."""

from __future__ import annotations

import os
import socket

from streamrec.streams.tools.ports import Holder, listener_of, port_in_use
from streamrec.streams.tools.worker_process import free_port


def test_a_listening_port_is_in_use_and_its_holder_is_named() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        assert port_in_use(port)
        holder = listener_of(port)

    assert holder is not None and holder.pid == os.getpid()
    assert f"pid {os.getpid()}" in holder.describe()


def test_a_free_port_is_not_in_use_and_has_no_holder() -> None:
    port = free_port()
    assert not port_in_use(port)
    assert listener_of(port) is None


def test_holder_options_are_read_from_its_command_line() -> None:
    holder = Holder(7, ("noida-db", "start", "--data-dir", "/d", "--only=kafka"))
    assert holder.option("--data-dir") == "/d"
    assert holder.option("--only") == "kafka"
    assert holder.option("--kafka-port") is None
    assert Holder(8, ()).describe() == "pid 8 (command line not readable)"
