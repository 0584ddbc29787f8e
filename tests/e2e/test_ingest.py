"""Ingest through a real broker: bad input goes to dead letters without costing the good readings
beside it; a gap in an edge's seq that does not fill raises the loss alarm; replays apply once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gateway import contract
from gateway.mqtt import MqttClient
from tests.e2e.conftest import Stack


def canonical_publisher(stack: Stack, edge: str = "edge-e2e") -> MqttClient:
    client = MqttClient(stack.broker.client_settings(), f"test-{edge}")
    client.start()
    assert client.wait_connected(10)
    return client


def batch(seq: int, amps: float, edge: str = "edge-e2e") -> contract.TelemetryBatch:
    now = datetime.now(UTC)
    return contract.TelemetryBatch(edge=edge, seq=seq, sent_at=now, readings=[
        contract.Reading(device="strip-z1-01", ts=now, metrics={"current_a": amps})])


def test_a_bad_reading_is_dead_lettered_and_its_neighbours_still_count(stack: Stack) -> None:
    stack.agent.stop()  # this test speaks for the edge itself
    client = canonical_publisher(stack)
    topic = contract.edge_topic("e2e", "edge-e2e", contract.Channel.TELEMETRY)
    good = json.loads(contract.encode(batch(10_000, 3.25)))
    good["readings"].append({"device": "strip-z1-01", "ts": good["sent_at"], "metrics": {"current_a": "lots"}})
    client.publish(topic, json.dumps(good).encode())
    client.publish(topic, b"\x00 not json at all")
    client.publish(contract.edge_topic("e2e", "edge-e2e", contract.Channel.EVENTS), b'{"v": 1}')

    letters = stack.wait_for("/api/dead-letters", lambda b: len(b) >= 3)
    reasons = " | ".join(letter["reason"] for letter in letters)
    assert "readings.1" in reasons and "not JSON" in reasons and "edge" in reasons
    assert any('"lots"' in letter["payload"] for letter in letters), "the bad part is kept as received"
    device = stack.wait_for("/api/devices", lambda b: b[0]["metrics"].get("current_a") == 3.25)
    assert device[0]["online"] is True
    health = stack.client.get("/api/health").json()
    assert health["ingest"]["invalid"] >= 3
    client.stop()


def test_a_seq_gap_that_never_fills_raises_the_loss_alarm_with_the_count(stack: Stack) -> None:
    stack.agent.stop()
    client = canonical_publisher(stack)
    topic = contract.edge_topic("e2e", "edge-e2e", contract.Channel.TELEMETRY)
    for seq in (20_000, 20_001, 20_005):  # 20_002..20_004 never arrive
        client.publish_payload(topic, batch(seq, 1.0))
    alarms = stack.wait_for("/api/alarms?state=active",
                            lambda b: any(a["rule"] == "sup.message_loss" for a in b), timeout=20)
    loss = next(a for a in alarms if a["rule"] == "sup.message_loss")
    assert loss["subject"] == "edge-e2e" and loss["value"] == 3.0
    assert "3 messages" in loss["message"]
    client.stop()


def test_a_replayed_batch_is_applied_once(stack: Stack) -> None:
    stack.agent.stop()
    client = canonical_publisher(stack)
    topic = contract.edge_topic("e2e", "edge-e2e", contract.Channel.TELEMETRY)
    client.publish_payload(topic, batch(30_000, 1.5))
    client.publish_payload(topic, batch(30_000, 9.5))  # same seq: a replay, whatever it says
    client.publish_payload(topic, batch(30_001, 2.5))
    stack.wait_for("/api/devices", lambda b: b[0]["metrics"].get("current_a") == 2.5)
    health = stack.client.get("/api/health").json()
    assert health["ingest"]["duplicates"] == 1
    client.stop()
