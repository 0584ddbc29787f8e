"""Real firmware setups through the real edge agent and real Mosquitto brokers: each malformed sourced
sample leaves the edge alive, goes upstream as a decode_error event (topic, reason, first bytes) and the
next valid message of that device is decoded. The samples and their sources are in test_firmware_setups."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.agent import DECODE_ERROR_PAYLOAD_BYTES, EdgeAgent
from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.contract import Action, Channel, Command, EventType
from tests.edge.conftest import EDGE, SITE, Collector, Devices, edge_config
from tests.edge.test_firmware_setups import (
    BRIDGE_OFFLINE_TEXT,
    BRIDGE_ONLINE_JSON,
    ESP_RFID_HEARTBEAT,
    POWER_BLANK,
    RDM6300_GHOST,
    RDM6300_READ,
    SENSOR_AM2301_NULL,
    SENSOR_DS18B20_BME280,
    SENSOR_GERMAN,
    SENSOR_SI7021_BME280,
    STATE_TEXT_RESULT,
    STATE_TEXT_TELE,
    STATUS8_DS18B20_F,
)
from tests.support.wait import wait_until

DEVICES: list[dict[str, Any]] = [
    {"id": "temp-de", "kind": "temp_sensor", "zone": "z", "vendor": "tasmota", "address": "sonoff-nodemcu",
     "sensor": "BME280"},
    {"id": "temp-th10", "kind": "temp_sensor", "zone": "z", "vendor": "tasmota", "address": "th10",
     "sensor": "AM2301", "full_topic": "%topic%/%prefix%/"},
    {"id": "sonoff1", "kind": "smart_plug", "zone": "z", "vendor": "tasmota", "address": "sonoff1", "rated_a": 10},
    {"id": "temp-fridge", "kind": "temp_sensor", "zone": "z", "vendor": "tasmota", "address": "nodemcu",
     "sensor": "DS18B20-1"},
    {"id": "door-rdm", "kind": "door_controller", "zone": "z", "vendor": "tasmota", "address": "wemos9",
     "sensor": "RDM6300"},
    {"id": "smoke-1", "kind": "smoke_detector", "zone": "z", "vendor": "zigbee2mqtt", "address": "smoke-1",
     "base_topic": "zigbee-f3"},
]


@pytest.fixture
def agent(mosquitto: EmbeddedBroker, floor: EmbeddedBroker, tmp_path: Path) -> Iterator[EdgeAgent]:
    config = edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "b.sqlite",
                         devices=DEVICES, supervision={"report_unknown_devices": False})
    agent = EdgeAgent(config)
    agent.start()
    assert agent.floor is not None and agent.floor.wait_connected(10)
    yield agent
    agent.stop(drain_s=0.5)


def heard(devices: Devices, collector: Collector, topic: str, payload: bytes, device: str, **expected: Any) -> bool:
    """Publish until the edge has sent a reading of `device` with the expected metrics (subscriptions race)."""
    def seen() -> bool:
        devices.publish(topic, payload)
        return any(r.device == device and all(r.metrics.get(k) == v for k, v in expected.items())
                   for r in collector.readings())
    return bool(wait_until(seen, 15, step=0.3))


def test_malformed_samples_go_upstream_and_the_next_valid_one_is_decoded(
        mosquitto: EmbeddedBroker, devices: Devices, agent: EdgeAgent) -> None:
    collector = Collector(mosquitto.client_settings())
    # The edge is listening (a first valid message is heard), then each device sends a malformed sample
    # followed by a valid one.
    assert heard(devices, collector, "stat/nodemcu/STATUS8", STATUS8_DS18B20_F, "temp-fridge", temperature_c=6.83)
    bad = [("tele/sonoff-nodemcu/SENSOR", SENSOR_GERMAN, "temp-de", "BME280 has no Temperature"),
           ("th10/tele/SENSOR", SENSOR_AM2301_NULL, "temp-th10", "AM2301.Temperature is null"),
           ("stat/sonoff1/POWER", POWER_BLANK, "sonoff1", "POWER is neither 'OFF' nor 'ON'"),
           ("tele/wemos9/SENSOR", RDM6300_GHOST, "door-rdm", "RDM6300.UID is all zeros")]
    for topic, payload, _, _ in bad:
        devices.publish(topic, payload)
    devices.publish("tele/sonoff-nodemcu/SENSOR", SENSOR_DS18B20_BME280)
    devices.publish("stat/sonoff1/RESULT", b'{"POWER":"ON"}')
    devices.publish("tele/wemos9/SENSOR", RDM6300_READ)
    assert wait_until(lambda: {r.device for r in collector.readings()} >= {"temp-de", "sonoff1"}, 10)
    assert {r.device: dict(r.metrics) for r in collector.readings() if r.device in ("temp-de", "sonoff1")} == {
        "temp-de": {"temperature_c": 27.8, "humidity_pct": 54.5}, "sonoff1": {"relay_on": True}}
    assert wait_until(lambda: [e for e in collector.all_events()
                               if e.type is EventType.ACCESS_GRANTED and e.badge == "7DDFFDDF"], 10)
    errors = wait_until(lambda: [e for e in collector.all_events() if e.type is EventType.DECODE_ERROR]
                        if len([e for e in collector.all_events() if e.type is EventType.DECODE_ERROR]) == 4
                        else None, 10)
    assert errors
    got = {e.device: json.loads(e.detail) for e in errors}
    for topic, payload, device, reason in bad:
        assert got[device]["topic"] == topic and got[device]["reason"].startswith(reason)
        assert got[device]["payload"] == payload[:DECODE_ERROR_PAYLOAD_BYTES].decode()
    # A second bad message of the same device within the minute is counted, not sent again.
    devices.publish("th10/tele/SENSOR", SENSOR_AM2301_NULL)
    assert wait_until(lambda: agent.decode_errors == 5, 10)
    assert wait_until(lambda: [s for s in collector.statuses if s.decode_errors == 5], 10)
    assert len([e for e in collector.all_events() if e.type is EventType.DECODE_ERROR]) == 4
    # Constructed: the SI7021 sample under the AM2301 name (no public AM2301 sample with values was found).
    devices.publish("th10/tele/SENSOR", SENSOR_SI7021_BME280.replace(b"SI7021", b"AM2301"))
    assert wait_until(lambda: any(r.device == "temp-th10" for r in collector.readings()), 10)
    collector.stop()


def test_esp_rfid_heartbeats_reach_the_uplink(mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices,
                                              tmp_path: Path) -> None:
    """An egress door controller that nobody badges at is heard through its heartbeats only: each must
    leave the edge, or the server calls a healthy door offline (door.egress_controller_offline, 200 s)."""
    door = {"id": "door-lobby", "kind": "door_controller", "zone": "z", "vendor": "esp-rfid",
            "address": "esprfid-lobby", "door_type": "egress"}
    config = edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "hb.sqlite",
                         devices=[door], supervision={"report_unknown_devices": False})
    collector = Collector(mosquitto.client_settings(), "heartbeats")
    edge = EdgeAgent(config)
    edge.start()
    try:
        assert edge.floor is not None and edge.floor.wait_subscribed(10)
        for _ in range(3):
            devices.publish("esprfid-lobby/send", ESP_RFID_HEARTBEAT)
        assert wait_until(lambda: len([r for r in collector.readings() if r.device == "door-lobby"]) == 3, 10), \
            collector.readings()
        assert {r.metrics["uptime_s"] for r in collector.readings()} == {3600}
    finally:
        edge.stop(drain_s=0.5)
        collector.stop()


def test_a_bridge_going_offline_is_one_event_upstream(mosquitto: EmbeddedBroker, devices: Devices,
                                                      agent: EdgeAgent) -> None:
    collector = Collector(mosquitto.client_settings())
    assert heard(devices, collector, "stat/nodemcu/STATUS8", STATUS8_DS18B20_F, "temp-fridge", temperature_c=6.83)
    devices.publish("zigbee-f3/bridge/state", BRIDGE_ONLINE_JSON)
    devices.publish("zigbee-f3/bridge/state", BRIDGE_OFFLINE_TEXT)
    devices.publish("stat/nodemcu/RESULT", STATE_TEXT_RESULT)  # unrelated traffic keeps flowing
    bridge = wait_until(lambda: [e for e in collector.all_events() if e.type is EventType.BRIDGE_OFFLINE], 10)
    assert [(e.device, e.count, json.loads(e.detail)) for e in bridge] == [
        ("smoke-1", 1, {"bridge": "zigbee-f3", "devices": ["smoke-1"]})]
    collector.stop()


def test_after_an_edge_restart_the_bridges_retained_online_goes_upstream(
        mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices, tmp_path: Path) -> None:
    """The edge reported the bridge offline, then restarts while the bridge comes back: the server still
    holds the bridge offline, so the retained "online" the new edge sees first must reach it."""
    collector = Collector(mosquitto.client_settings())
    config = edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "b.sqlite",
                         devices=DEVICES, supervision={"report_unknown_devices": False})

    def bridge_events(kind: EventType) -> list[contract.Event]:
        return [e for e in collector.all_events() if e.type is kind]

    first = EdgeAgent(config)
    first.start()
    try:
        assert first.floor is not None and first.floor.wait_connected(10)
        assert heard(devices, collector, "stat/nodemcu/STATUS8", STATUS8_DS18B20_F, "temp-fridge",
                     temperature_c=6.83)
        devices.publish("zigbee-f3/bridge/state", BRIDGE_OFFLINE_TEXT, retain=True)  # its Last Will
        assert wait_until(lambda: bridge_events(EventType.BRIDGE_OFFLINE), 10)
    finally:
        first.stop(drain_s=0.5)
    devices.publish("zigbee-f3/bridge/state", BRIDGE_ONLINE_JSON, retain=True)  # back while the edge is down
    second = EdgeAgent(config)
    second.start()
    try:
        assert second.floor is not None and second.floor.wait_connected(10)
        online = wait_until(lambda: bridge_events(EventType.BRIDGE_ONLINE), 15)
        assert [(e.device, e.count, json.loads(e.detail or "")) for e in online] == [
            ("smoke-1", 1, {"bridge": "zigbee-f3", "devices": ["smoke-1"]})]
        assert len(bridge_events(EventType.BRIDGE_OFFLINE)) == 1
    finally:
        second.stop(drain_s=0.5)
        collector.stop()


def test_a_cut_is_confirmed_by_a_plug_whose_state_text_is_0_1(mosquitto: EmbeddedBroker, floor: EmbeddedBroker,
                                                              devices: Devices, tmp_path: Path) -> None:
    """The issue's case: a plug with StateText 0/1 never confirmed a cut. Custom FullTopic too."""
    plug = {"id": "printer", "kind": "smart_plug", "zone": "z", "vendor": "tasmota", "address": "printer",
            "channel": 1, "rated_a": 10, "cuttable": True, "state_text": ["0", "1"], "full_topic": "%topic%/%prefix%/"}

    def tasmota_plug(request: bytes) -> None:  # answers as in jneilliii/OctoPrint-TasmotaMQTT#36
        word = b"1" if request.strip().upper() in (b"ON", b"1") else b"0"
        devices.publish("printer/stat/RESULT", b'{"POWER1":"' + word + b'"}')

    devices.listen("printer/cmnd/POWER1", tasmota_plug)
    collector = Collector(mosquitto.client_settings())
    agent = EdgeAgent(edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "b.sqlite",
                                  devices=[plug], supervision={"report_unknown_devices": False}))
    agent.start()
    try:
        assert agent.floor is not None and agent.floor.wait_connected(10)
        assert heard(devices, collector, "printer/tele/STATE", STATE_TEXT_TELE, "printer", relay_on=False)
        now = datetime.now(UTC)
        cut = Command(id="c-cut", device="printer", action=Action.RELAY_OFF, reason="test", issued_at=now,
                      expires_at=now + timedelta(seconds=30))
        on = Command(id="c-on", device="printer", action=Action.RELAY_ON, reason="test", issued_at=now,
                     expires_at=now + timedelta(seconds=30))
        for cmd in (on, cut):
            collector.client.publish_payload(contract.edge_topic(SITE, EDGE, Channel.COMMANDS), cmd)
        results = wait_until(lambda: {r.id: r for r in collector.results} if len(collector.results) >= 2 else None, 10)
        assert results and results["c-on"].ok and results["c-cut"].ok
        assert results["c-cut"].reported == {"relay_on": False}
        assert devices.on("printer/cmnd/POWER1") == [b"ON", b"OFF"]
    finally:
        agent.stop(drain_s=0.5)
        collector.stop()
