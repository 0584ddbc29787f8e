"""The real edge agent keeps a door's order on the wire (issue 13 item 4): a badge grant, then the door
state that follows it, reach the uplink in that order whatever the batching, through real Mosquitto
floor and uplink brokers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from gateway.broker import EmbeddedBroker
from gateway.contract import EventType
from tests.edge.conftest import Collector, Devices, edge_config
from tests.support.wait import wait_until

DOOR = "door-f3-main"
GRANT = json.dumps({"type": "badge", "result": "granted", "badge": "B1001", "direction": "in"})
OPEN = json.dumps({"door": "open", "lock": "locked"})
CLOSED = json.dumps({"door": "closed", "lock": "locked"})


@pytest.fixture
def wired(mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices,
          tmp_path: Path) -> Iterator[tuple[EdgeAgent, Collector]]:
    collector = Collector(mosquitto.client_settings())
    # A long batch age: the grant and the open always share one flush, the case that went wrong.
    config = edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "buffer.sqlite",
                         batch={"max_readings": 200, "max_age_ms": 2000})
    agent = EdgeAgent(config)
    agent.start()
    assert agent.floor is not None and agent.floor.wait_connected(10)
    assert agent.floor.wait_subscribed(10), "the edge's floor subscriptions (SUBACK) before the devices speak"
    yield agent, collector
    agent.stop(drain_s=0.5)
    collector.stop()


def wire_order(collector: Collector) -> list[str]:
    """The door's items in the order the server gets them: by message seq, then position in the message."""
    with collector.lock:
        items: list[tuple[int, int, str]] = []
        for batch in collector.telemetry:
            items += [(batch.seq, i, "open" if r.metrics.get("door_open") else "closed")
                      for i, r in enumerate(batch.readings) if r.device == DOOR and "door_open" in r.metrics]
        for events in collector.events:
            items += [(events.seq, i, e.type.value) for i, e in enumerate(events.events)
                      if e.device == DOOR and e.type in (EventType.ACCESS_GRANTED, EventType.DOOR_OPENED)]
    return [tag for _, _, tag in sorted(items)]


@pytest.mark.parametrize("after_s", [0.0, 0.1, 0.3, 1.5])
def test_grant_then_open_reach_the_uplink_in_that_order(wired: tuple[EdgeAgent, Collector], devices: Devices,
                                                        after_s: float) -> None:
    agent, collector = wired
    devices.publish(f"access/{DOOR}/state", CLOSED)
    assert wait_until(lambda: "closed" in wire_order(collector), 10)
    devices.publish(f"access/{DOOR}/event", GRANT)
    time.sleep(after_s)  # the scenario itself: the door opens this long after the grant
    devices.publish(f"access/{DOOR}/state", OPEN)
    assert wait_until(lambda: "open" in wire_order(collector), 10)
    assert wire_order(collector) == ["closed", "access_granted", "door_opened", "open"]
    assert agent.decode_errors == 0
