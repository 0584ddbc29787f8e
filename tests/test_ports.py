"""The ports the tests' brokers and servers take: a broker the test stops and starts again on its port keeps
one that nothing else on the machine is handed while it is down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.broker import EmbeddedBroker
from tests.conftest import persistent_mosquitto


@pytest.fixture
def restartable() -> Iterator[EmbeddedBroker]:
    yield from persistent_mosquitto("fw-ports-")


def test_a_broker_restarted_on_its_port_has_one_outside_the_kernels_ephemeral_range(
        restartable: EmbeddedBroker) -> None:
    # While the broker is down (an outage test), any outgoing connection on the machine may be given a port
    # of this range by the kernel, and the restart would find its port in use.
    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert not low <= restartable.port <= high, f"port {restartable.port} is in the ephemeral range {low}-{high}"
