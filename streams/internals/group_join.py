"""Group membership: a join that answers an empty assignment by joining again, instead of killing the consumer, and
a static member that can leave its group when it stops.

A SyncGroup answer may carry no assignment bytes at all: the leader's assignment did not name the member (kafkajs,
brod and kafka-tools each had to handle it). aiokafka 0.14 decodes the empty bytes as a consumer-protocol assignment
and its coordination routine dies ("unpack requires a buffer of 2 bytes"): the worker stays up with no partitions.
noida-db 0.2.3 sends such answers when members join together; any broker may, to a member its leader did not see.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.consumer.group_coordinator import CoordinatorGroupRebalance
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import LeaveGroupRequest

log = logging.getLogger(__name__)

_INSTALLED = "streamrec_no_empty_assignment"  # marks the wrapper, so it is installed once

GroupJoin = Callable[[Any], Awaitable[tuple[str, bytes] | None]]


def no_empty_assignment(join: GroupJoin) -> GroupJoin:
    """`join` (`CoordinatorGroupRebalance.perform_group_join`: `(protocol, assignment bytes)`, or None when the
    join failed) with an empty assignment turned into a failed join: aiokafka then waits its retry backoff and
    joins again (`GroupCoordinator._do_rejoin_group`), as for any failed join."""

    @functools.wraps(join)  # keeps `__wrapped__`: the upstream pin reads the library's source through it
    async def joined(rebalance: Any) -> tuple[str, bytes] | None:
        result = await join(rebalance)
        if result is not None and not result[1]:
            log.warning("group %s: empty assignment from the coordinator; joining again", rebalance.group_id)
            return None
        return result

    setattr(joined, _INSTALLED, True)
    return joined


def tolerate_empty_assignments() -> None:
    """Install `no_empty_assignment` for every aiokafka consumer of this process (once)."""
    join = CoordinatorGroupRebalance.perform_group_join
    if not getattr(join, _INSTALLED, False):
        CoordinatorGroupRebalance.perform_group_join = no_empty_assignment(join)


def leave_group_on_close(consumer: Any) -> None:
    """Make a started `aiokafka.AIOKafkaConsumer` with a `group_instance_id` send LeaveGroup when it closes.

    A static member does not leave on close (`GroupCoordinator._maybe_leave_group`): a restart with the same
    instance id takes its partitions back with no rebalance, and for good the broker waits the session timeout.
    For a worker taken away for good (scaling in), leaving moves its partitions at once: what a dynamic member does
    on close, and what Kafka 4's `CloseOptions.groupMembershipOperation(LEAVE_GROUP)` asks for (KIP-1092).
    A LeaveGroup v1 names the member id, which every broker accepts for a static member too (noida-db, which never
    expires a member by its session timeout, moves the partitions only this way)."""
    coordinator = consumer._coordinator

    async def leave() -> None:
        if coordinator.generation > 0:
            try:
                await coordinator._send_req(LeaveGroupRequest(coordinator.group_id, coordinator.member_id))
            except KafkaError as err:  # best effort, as aiokafka's own leave
                log.error("LeaveGroup request failed: %s", err)
            else:
                log.info("left group %s", coordinator.group_id)
        coordinator.reset_generation()

    coordinator._maybe_leave_group = leave
