"""Defined outcomes for input that is wrong in ways a validator cannot see (issue: server core).

- A reading for a device not in the site file: a dead letter "unknown device" (once per device),
  counted; nothing else changes.
- A reading dated more than 2 min ahead of the server: a device clock fault; stored at its arrival
  time, counted, evaluated.
- A reading older than 24 h: history, not news; stored, counted, drives no rule and no live value.
- Batches out of order (seq 5 before 4): both applied, the late one counted as late.
- The same seq again: applied once, counted as a duplicate (test_ingest).
- A wrongly typed value: a dead letter naming the field; the batch's other readings are applied
  (test_ingest).
- A temperature or humidity outside what a sensor can read: reaches the plausibility rules
  (sensor.*), never a fire rule (tests/server/domain).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway import contract
from gateway.mqtt import MqttClient
from tests.e2e.conftest import Stack


def alarms_besides_the_stopped_edge(stack: Stack) -> list[dict[str, object]]:
    """Stopping the real edge agent (so the test can speak for it) rightly raises sup.gateway_offline."""
    return [a for a in stack.client.get("/api/alarms").json() if a["rule"] != "sup.gateway_offline"]


@pytest.fixture
def client(stack: Stack) -> Iterator[MqttClient]:
    """The test speaks for the edge; stopped however the test ends (left running, it kept reconnecting to
    the stopped broker through the tests after it)."""
    stack.agent.stop()
    client = MqttClient(stack.broker.client_settings(), "bad-input-edge")
    client.start()
    assert client.wait_connected(10)
    yield client
    client.stop()


def send(client: MqttClient, seq: int, readings: list[contract.Reading]) -> None:
    client.publish_payload(contract.edge_topic("e2e", "edge-e2e", contract.Channel.TELEMETRY),
                           contract.TelemetryBatch(edge="edge-e2e", seq=seq, sent_at=datetime.now(UTC),
                                                   readings=readings))


def reading(device: str, amps: float, ts: datetime | None = None) -> contract.Reading:
    return contract.Reading(device=device, ts=ts or datetime.now(UTC), metrics={"current_a": amps})


def test_unknown_devices_are_dead_lettered_once_and_change_nothing(stack: Stack, client: MqttClient) -> None:
    send(client, 100, [reading("strip-nobody-knows", 50.0), reading("strip-z1-01", 2.0)])
    send(client, 101, [reading("strip-nobody-knows", 51.0)])
    stack.wait_for("/api/health", lambda h: h["ingest"]["unknown_devices"] == 2)
    letters = stack.client.get("/api/dead-letters").json()
    assert [letter["reason"] for letter in letters] == ["unknown device 'strip-nobody-knows': not in the site file"]
    assert [d["id"] for d in stack.client.get("/api/devices").json()] == ["strip-z1-01"]
    assert alarms_besides_the_stopped_edge(stack) == []


def test_a_device_clock_in_the_future_is_stored_at_arrival_time(stack: Stack, client: MqttClient) -> None:
    ahead = datetime.now(UTC) + timedelta(hours=3)
    send(client, 200, [reading("strip-z1-01", 4.5, ts=ahead)])
    stack.wait_for("/api/health", lambda h: h["ingest"]["readings"] >= 1)
    device = stack.wait_for("/api/devices", lambda b: b[0]["metrics"].get("current_a") == 4.5)[0]
    assert datetime.fromisoformat(device["last_seen"]) < ahead - timedelta(hours=2)
    samples = stack.wait_for("/api/readings?device=strip-z1-01&metric=current_a", lambda b: bool(b))
    assert datetime.fromisoformat(samples[-1]["ts"]) < ahead - timedelta(hours=2)


def test_readings_older_than_a_day_are_history_and_raise_nothing(stack: Stack, client: MqttClient) -> None:
    old = datetime.now(UTC) - timedelta(days=2)
    # An overload that lasted 20 s two days ago (the test site's hold is 3 s): history only.
    send(client, 300, [reading("strip-z1-01", 14.0, ts=old + timedelta(seconds=s)) for s in range(20)])
    send(client, 301, [reading("strip-z1-01", 1.0)])  # and a current reading, to know ingest got there
    stack.wait_for("/api/devices", lambda b: b[0]["metrics"].get("current_a") == 1.0)
    stack.client.get("/api/health")
    health = stack.wait_for("/api/health", lambda h: h["ingest"]["readings"] >= 21)
    assert health["ingest"]["readings"] == 21
    assert alarms_besides_the_stopped_edge(stack) == []
    since = (old - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    history = stack.wait_for(f"/api/readings?device=strip-z1-01&metric=current_a&since={since}",
                             lambda b: len(b) >= 21)
    assert sum(s["value"] == 14.0 for s in history) == 20


def test_batches_out_of_order_are_all_applied(stack: Stack, client: MqttClient) -> None:
    send(client, 400, [reading("strip-z1-01", 1.0)])
    send(client, 402, [reading("strip-z1-01", 3.0)])
    send(client, 401, [reading("strip-z1-01", 2.0)])  # late, still inside the gap window
    health = stack.wait_for("/api/health", lambda h: h["ingest"]["readings"] == 3)
    assert health["ingest"]["duplicates"] == 0 and health["ingest"]["lost"] == 0
