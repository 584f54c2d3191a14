"""An empty assignment from the coordinator is a failed join (aiokafka then joins again), not a dead consumer."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance

from streamrec.streams.internals.group_join import no_empty_assignment, tolerate_empty_assignments
from streamrec.streams.internals.upstream import MIRRORED, source_sha256

REBALANCE = SimpleNamespace(group_id="g")


def joining(result: tuple[str, bytes] | None) -> Any:
    async def join(rebalance: Any) -> tuple[str, bytes] | None:
        return result

    return join


async def test_an_empty_assignment_is_a_failed_join() -> None:
    assert await no_empty_assignment(joining(("faust", b"")))(REBALANCE) is None


async def test_an_assignment_and_a_failed_join_pass_through() -> None:
    assert await no_empty_assignment(joining(("faust", b"\x00\x01")))(REBALANCE) == ("faust", b"\x00\x01")
    assert await no_empty_assignment(joining(None))(REBALANCE) is None


def test_installed_once_and_the_upstream_pin_still_reads_the_library() -> None:
    tolerate_empty_assignments()
    installed = CoordinatorGroupRebalance.perform_group_join
    tolerate_empty_assignments()
    assert CoordinatorGroupRebalance.perform_group_join is installed
    assert inspect.unwrap(installed) is not installed
    name = "aiokafka.consumer.group_coordinator.CoordinatorGroupRebalance.perform_group_join"
    assert source_sha256(name) == MIRRORED[name]
