"""Unknown-device discovery cannot crowd configured devices out of the edge's floor queue.

The edge keeps a persistent floor session, so the broker queues what configured devices publish while the
edge restarts. A stock Mosquitto queues at most 1000 messages per session (`max_queued_messages`) and drops
what comes after. Discovery listened to everything under the Zigbee2MQTT base topic on that same session at
QoS 1, so bridge logging, every stranger's state and the /set echoes filled the queue, and a configured
smoke detector's alarm sent during the restart was dropped. Against a real Mosquitto with the stock bound."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.drivers.zigbee2mqtt import Zigbee2MqttDriver
from gateway.broker import EmbeddedBroker, mosquitto_binary, wait_listening
from gateway.contract import EventType
from gateway.mqtt import MqttClient, MqttSettings
from tests.conftest import require_service, worker_free_port
from tests.edge.conftest import Collector, edge_config, start_agent
from tests.support.wait import wait_until

pytestmark = pytest.mark.mosquitto

STRANGERS = 3000  # three times the stock queue


@pytest.fixture
def stock_floor(tmp_path: Path) -> Iterator[MqttSettings]:
    """A floor Mosquitto as Debian and Zigbee2MQTT's guides leave it: max_queued_messages 1000."""
    binary = mosquitto_binary()
    require_service(binary is not None, "mosquitto")
    assert binary is not None
    port = worker_free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000\n", encoding="utf-8")
    conf.chmod(0o644)
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_listening("127.0.0.1", port), "the floor Mosquitto listens"
        yield MqttSettings(host="127.0.0.1", port=port, protocol="5")
    finally:
        process.terminate()
        process.wait(10)


def test_a_flood_of_strangers_during_an_edge_restart_does_not_drop_a_configured_detectors_alarm(
        mosquitto: EmbeddedBroker, stock_floor: MqttSettings, tmp_path: Path) -> None:
    config = edge_config(mosquitto.client_settings(), stock_floor, tmp_path / "o.sqlite",
                         supervision={"report_unknown_devices": True})
    collector = Collector(mosquitto.client_settings())
    devices = MqttClient(stock_floor, "test-z2m")
    devices.start()
    routed: list[bytes] = []  # the broker routed the alarm (so queued it for the edge's session too)
    witness = MqttClient(stock_floor, "test-witness", on_message=lambda m: routed.append(m.payload))
    witness.subscribe("zigbee2mqtt/smoke-f3-z1-01", 1)
    witness.start()
    agents: list[EdgeAgent] = []
    try:
        assert devices.wait_connected(10) and witness.wait_subscribed(10)
        start_agent(agents, config).stop(drain_s=0.5)  # its floor session stays on the broker
        for i in range(STRANGERS):  # what a busy Zigbee network says while the edge restarts
            topic = "zigbee2mqtt/bridge/logging" if i % 3 == 0 else f"zigbee2mqtt/stranger-{i % 40}"
            devices.publish(topic, json.dumps({"n": i, "linkquality": 80}).encode(), qos=1)
        devices.publish("zigbee2mqtt/smoke-f3-z1-01", json.dumps({"smoke": True, "battery": 90}).encode(), qos=1)
        assert wait_until(lambda: bool(routed), 30), "the broker took the alarm"
        start_agent(agents, config)

        def alarms() -> list[object]:
            return [e for e in collector.all_events()
                    if e.type is EventType.DETECTOR_ALARM and e.device == "smoke-f3-z1-01"]

        assert wait_until(lambda: bool(alarms()), 20), "the alarm queued during the restart reached the uplink"
        assert len(alarms()) == 1, alarms()
        # discovery still works while the edge is up
        devices.publish("zigbee2mqtt/0x00158d0001a2b3c4/availability", b'{"state":"online"}', qos=1)
        assert wait_until(lambda: any(e.type is EventType.UNKNOWN_DEVICE for e in collector.all_events()), 10)
    finally:
        for agent in agents:
            if agent._worker is not None:
                agent.stop(drain_s=0.5)
        devices.stop()
        witness.stop()
        collector.stop()


def test_nested_base_topics_are_discovered_through_one_filter() -> None:
    """`zigbee2mqtt` and `zigbee2mqtt/f4` on one broker: `zigbee2mqtt/#` covers both, and a second
    `zigbee2mqtt/f4/#` would hand every message under it over twice."""
    from edge.config import DeviceConfig

    devices = [DeviceConfig.model_validate(d) for d in (
        {"id": "smoke-a", "kind": "smoke_detector", "zone": "z", "vendor": "zigbee2mqtt", "address": "smoke-a"},
        {"id": "smoke-b", "kind": "smoke_detector", "zone": "z", "vendor": "zigbee2mqtt", "address": "smoke-b",
         "base_topic": "zigbee2mqtt/f4"})]
    driver = Zigbee2MqttDriver(devices)
    driver.discover = True
    assert driver.discovery_filters() == ["zigbee2mqtt/#"]
    assert not any(f.endswith("#") for f in driver.topic_filters()), "configured devices keep their own filters"
    assert driver.announced("zigbee2mqtt/f4/stranger/availability", b"online") == "stranger"
