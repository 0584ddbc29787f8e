"""Helpers for edge tests that talk to real Mosquitto brokers (no MQTT mocks).

- `floor`: a second private Mosquitto where the "devices" (this test's publisher) speak their vendor
  dialects, separate from the uplink broker so that the uplink can be cut while devices keep talking;
- `Collector`: a client on the uplink that records every canonical message the edge sends, decoded
  with the contract module;
- `edge_config()`: an EdgeConfig for a broker pair and a tmp buffer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.agent import EdgeAgent
from edge.config import EdgeConfig
from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.contract import Channel, CommandResult, EdgeStatus, EventBatch, TelemetryBatch
from gateway.mqtt import Incoming, MqttClient, MqttSettings
from tests.support.edge import edge_data, merge_sections

SITE = "hq"
EDGE = "edge-f3"

DEVICES: list[dict[str, Any]] = [
    {"id": "strip-f3-01", "kind": "strip_meter", "zone": "f3-z1", "vendor": "tasmota", "address": "strip-f3-01",
     "rated_a": 10},
    {"id": "plug-f3-s001", "kind": "smart_plug", "zone": "f3-z1", "vendor": "shelly",
     "address": "shellyplugsg3-a1b2c3", "rated_a": 10, "cuttable": True, "strip": "strip-f3-01"},
    {"id": "plug-f3-s002", "kind": "smart_plug", "zone": "f3-z1", "vendor": "shelly",
     "address": "shellyplugsg3-d4e5f6", "rated_a": 10, "essential": True},
    {"id": "strip-f3-02-o2", "kind": "smart_plug", "zone": "f3-z1", "vendor": "tasmota", "address": "strip-f3-02",
     "channel": 2, "rated_a": 10},
    {"id": "smoke-f3-z1-01", "kind": "smoke_detector", "zone": "f3-z1", "vendor": "zigbee2mqtt",
     "address": "smoke-f3-z1-01", "siren": "siren-f3-z1"},
    {"id": "siren-f3-z1", "kind": "siren", "zone": "f3-z1", "vendor": "zigbee2mqtt", "address": "siren-f3-z1"},
    {"id": "door-f3-main", "kind": "door_controller", "zone": "f3-z1", "vendor": "generic",
     "address": "door-f3-main", "door_type": "egress"},
]


def edge_config(uplink: MqttSettings, floor: MqttSettings, buffer_path: Path, **sections: Any) -> EdgeConfig:
    defaults = {"uplink": {"reconnect_max_s": 1}, "commands": {"confirm_timeout_s": 10},
                "supervision": {"silent_after_intervals": 3, "status_interval_s": 0.2}}
    return EdgeConfig.model_validate(merge_sections(
        edge_data(SITE, EDGE, uplink, buffer_path, DEVICES, floor=floor, max_messages=100_000, max_age_ms=100,
                  **defaults), sections))


class Collector:
    """Everything the edge publishes on the uplink, decoded by the contract."""

    def __init__(self, settings: MqttSettings, name: str = "collector", persistent: bool = False) -> None:
        self.lock = threading.Lock()
        self.telemetry: list[TelemetryBatch] = []
        self.events: list[EventBatch] = []
        self.statuses: list[EdgeStatus] = []
        self.results: list[CommandResult] = []
        self.order: list[tuple[str, int]] = []  # (channel, seq) in arrival order
        self.client = MqttClient(settings, f"test-{name}", on_message=self._on_message, persistent_session=persistent)
        for channel in (Channel.TELEMETRY, Channel.EVENTS, Channel.STATUS, Channel.COMMAND_RESULT):
            self.client.subscribe(contract.edge_filter(channel, SITE, EDGE), 1)
        self.client.start()
        assert self.client.wait_connected(10) and self.client.wait_subscribed(10)

    def _on_message(self, message: Incoming) -> None:
        _route, payload = contract.decode(message.topic, message.payload)
        with self.lock:
            if isinstance(payload, TelemetryBatch):
                self.telemetry.append(payload)
                self.order.append(("telemetry", payload.seq))
            elif isinstance(payload, EventBatch):
                self.events.append(payload)
                self.order.append(("events", payload.seq))
            elif isinstance(payload, EdgeStatus):
                self.statuses.append(payload)
            elif isinstance(payload, CommandResult):
                self.results.append(payload)

    def readings(self) -> list[Any]:
        with self.lock:
            return [r for batch in self.telemetry for r in batch.readings]

    def all_events(self) -> list[Any]:
        with self.lock:
            return [e for batch in self.events for e in batch.events]

    def stop(self) -> None:
        self.client.stop()


class Devices:
    """The floor: publishes vendor payloads and records what the edge sends to devices."""

    def __init__(self, settings: MqttSettings) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.handlers: dict[str, Callable[[bytes], None]] = {}
        self.lock = threading.Lock()
        self.client = MqttClient(settings, "test-devices", on_message=self._on_message)
        self.client.start()
        assert self.client.wait_connected(10)

    def listen(self, topic: str, handler: Callable[[bytes], None] | None = None) -> None:
        if handler is not None:
            self.handlers[topic] = handler
        self.client.subscribe(topic, 1)
        assert self.client.wait_subscribed(10), f"the SUBACK for {topic} before the test acts"

    def _on_message(self, message: Incoming) -> None:
        with self.lock:
            self.received.append((message.topic, message.payload))
        handler = self.handlers.get(message.topic)
        if handler is not None:
            handler(message.payload)

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p in self.received if t == topic]

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload.encode() if isinstance(payload, str) else payload, 1, retain)

    def stop(self) -> None:
        self.client.stop()


@pytest.fixture
def devices(floor: EmbeddedBroker) -> Iterator[Devices]:
    d = Devices(floor.client_settings())
    yield d
    d.stop()


def start_agent(agents: list[EdgeAgent], config: EdgeConfig, uplink_down: bool = False) -> EdgeAgent:
    """Start an agent (stopped by the fixture that holds `agents`) and wait for its SUBACKs on both brokers
    (on the floor broker only when the test has stopped the uplink's)."""
    agent = EdgeAgent(config)
    agents.append(agent)
    agent.start()
    assert agent.uplink is not None and agent.floor is not None
    assert agent.floor.wait_connected(10) and agent.floor.wait_subscribed(10), "the floor subscriptions"
    assert uplink_down or agent.uplink.wait_subscribed(10), "the uplink's command subscription"
    if agent.discovery is not None:  # its own clean session at QoS 0: what comes before its SUBACK is not heard
        assert agent.discovery.wait_connected(10) and agent.discovery.wait_subscribed(10), "the discovery filters"
    return agent
