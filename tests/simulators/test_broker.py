"""Against a real Mosquitto: simulated devices obey vendor commands, and load mode delivers its count."""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
import time
from typing import Any

import pytest

from gateway.broker import EmbeddedBroker
from gateway.mqtt import Incoming, MqttClient
from simulators import cli
from simulators.load import run_load
from simulators.model import DEMO_FLOOR, load_floor
from simulators.runner import ScenarioRun
from simulators.scenario import parse_scenario
from simulators.transport import MqttTransport
from tests.support.wait import wait_until

pytestmark = pytest.mark.mosquitto

FLOOR = load_floor(DEMO_FLOOR)
SHELLY = FLOOR.devices["plug-f3-s001"]
TASMOTA = next(d for d in FLOOR.devices.values() if d.vendor == "tasmota" and d.channel == 2)
SCENARIO = f"""\
name: obey
title: relay commands over a real broker
start: 2026-11-30T10:00:00+08:00
duration: 90s
background: {{scope: none}}
timeline:
  - {{at: 1s, name: load_a, action: seat_load, device: {SHELLY.id}, watts: 150}}
  - {{at: 1s, name: load_b, action: seat_load, device: {TASMOTA.id}, watts: 120}}
expect:
  - {{rule: elec.relay_mismatch, subject: {SHELLY.id}}}
"""


class Listener:
    def __init__(self, broker: EmbeddedBroker, filters: list[str]) -> None:
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.client = MqttClient(broker.client_settings(), "test-edge", on_message=self._on)
        for topic_filter in filters:
            self.client.subscribe(topic_filter, 1)
        self.client.start()
        assert self.client.wait_connected(5) and self.client.wait_subscribed(5)

    def _on(self, message: Incoming) -> None:
        self.inbox.put((message.topic, message.payload))

    def wait_for(self, topic: str, check: Any = None, timeout: float = 10.0) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got, payload = self.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if got == topic and (check is None or check(payload)):
                return payload
        raise AssertionError(f"nothing on {topic} within {timeout} s")


def test_shelly_and_tasmota_obey_relay_off(mosquitto: EmbeddedBroker) -> None:
    prefix, topic = SHELLY.address, TASMOTA.address
    listener = Listener(mosquitto, [f"{prefix}/#", "test-edge/rpc", f"stat/{topic}/#", f"tele/{topic}/SENSOR"])
    floor = load_floor(DEMO_FLOOR)
    run = ScenarioRun(
        parse_scenario(SCENARIO, "obey.yaml", floor),
        floor,
        MqttTransport(mosquitto.client_settings(), "sim-under-test"),
        speed=30,
    )
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(run.run()), daemon=True)
    thread.start()
    try:
        status = json.loads(listener.wait_for(f"{prefix}/status/switch:0", lambda p: json.loads(p)["apower"] > 100))
        assert status["output"] is True
        # Shelly: JSON-RPC Switch.Set on <prefix>/rpc, answer on <src>/rpc, then the new status
        request = {"id": 7, "src": "test-edge", "method": "Switch.Set", "params": {"id": 0, "on": False}}
        listener.client.publish(f"{prefix}/rpc", json.dumps(request).encode(), 1)
        reply = json.loads(listener.wait_for("test-edge/rpc"))
        assert reply == {"id": 7, "src": prefix, "dst": "test-edge", "result": {"was_on": True}}
        off = json.loads(listener.wait_for(f"{prefix}/status/switch:0", lambda p: not json.loads(p)["output"]))
        assert off["apower"] == 0
        # Tasmota multi-outlet strip: cmnd/<topic>/POWER<n> OFF -> stat/<topic>/POWER<n> OFF, then telemetry
        channel = TASMOTA.channel
        listener.client.publish(f"cmnd/{topic}/POWER{channel}", b"OFF", 1)
        assert listener.wait_for(f"stat/{topic}/POWER{channel}") == b"OFF"
        sensor = json.loads(listener.wait_for(f"tele/{topic}/SENSOR"))
        assert sensor["ENERGY"]["Power"][channel - 1] == 0
    finally:
        thread.join(15)
        listener.client.stop()
    assert not thread.is_alive()
    commands = {c["topic"] for c in result["commands"]}
    assert {f"{prefix}/rpc", f"cmnd/{topic}/POWER{channel}"} <= commands


def test_load_mode_delivers_its_count(mosquitto: EmbeddedBroker) -> None:
    result = run_load(mosquitto.client_settings(), devices=200, rate=4000, duration=2.0, qos=1, verify=True)
    assert result.sent == 8000
    assert result.acked == 8000
    assert result.received == 8000
    assert result.errors == 0


def test_load_mode_cli(mosquitto: EmbeddedBroker, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        [
            "--load",
            "--broker",
            f"127.0.0.1:{mosquitto.port}",
            "--devices",
            "50",
            "--rate",
            "2000",
            "--duration",
            "1",
            "--verify",
            "--username",
            "floorwatch-local",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["sent"] == 2000 and summary["received"] == 2000 and summary["errors"] == 0
    assert "msg/s" in err  # the progress bar


def test_load_mode_verify_counts_only_its_own_devices(mosquitto: EmbeddedBroker) -> None:
    """Beside a floor already playing on the broker (its messages match the same topic filters), received
    counts the run's own messages: never more than were sent."""
    settings = mosquitto.client_settings()
    stop = threading.Event()

    def other_floor() -> None:
        client = MqttClient(settings, "other-floor")
        client.start()
        try:
            assert client.wait_connected(10)
            while not stop.is_set():
                client.publish("zigbee2mqtt/smoke-f3-z1-01", b'{"smoke": false}')
                client.publish("tele/strip-f3-01/SENSOR", b"{}")
                time.sleep(0.01)
        finally:
            client.stop()

    thread = threading.Thread(target=other_floor)
    thread.start()
    try:
        time.sleep(0.5)
        result = run_load(settings, devices=40, rate=1000, duration=1, qos=1, verify=True)
    finally:
        stop.set()
        thread.join(10)
    assert result.sent == 1000 and result.received == 1000 and result.errors == 0


def test_a_zigbee_siren_with_a_three_level_name_obeys_its_set(mosquitto: EmbeddedBroker) -> None:
    """A tester's floor may name a siren `floor3/zone1/siren-1` (Zigbee2MQTT allows it): the simulator hears
    its `/set` as it hears a one-level name's (it listened on `zigbee2mqtt/+/set` only, so the command was lost).
    The scenario outlasts any loaded machine (an hour at speed 30): the test waits for the command to be
    obeyed, then stops the run."""
    floor = load_floor(DEMO_FLOOR)
    siren = floor.devices["siren-f3-z1"]
    floor.devices[siren.id] = dataclasses.replace(siren, address="floor3/zone1/siren-1")
    scenario = ("name: deep\ntitle: a deep siren name\nstart: 2026-11-30T10:00:00+08:00\nduration: 1h\n"
                f"background: {{scope: zones, zones: [{siren.zone}]}}\ntimeline:\n"
                f"  - {{at: 1s, action: seat_load, device: {SHELLY.id}, watts: 150}}\n"
                f"expect:\n  - {{rule: elec.relay_mismatch, subject: {SHELLY.id}}}\n")
    run = ScenarioRun(parse_scenario(scenario, "deep.yaml", floor), floor,
                      MqttTransport(mosquitto.client_settings(), "sim-deep"), speed=30)
    result: dict[str, Any] = {}
    online: threading.Event = threading.Event()
    commander = MqttClient(mosquitto.client_settings(), "test-edge-deep", on_message=lambda _m: online.set())
    commander.subscribe("zigbee2mqtt/floor3/zone1/siren-1/availability", 1)
    commander.start()
    thread = threading.Thread(target=lambda: result.update(run.run()), daemon=True)
    try:
        assert commander.wait_connected(5) and commander.wait_subscribed(5)
        thread.start()
        assert online.wait(30), "the siren never came online"  # its run listens from before its birth
        warning = {"warning": {"mode": "fire", "level": "very_high", "strobe": True, "duration": 300}}
        commander.publish("zigbee2mqtt/floor3/zone1/siren-1/set", json.dumps(warning).encode(), 1)
        assert wait_until(lambda: bool(run.log.commands), 30), "the siren never obeyed its /set"
    finally:
        run.stop()
        if thread.is_alive():
            thread.join(30)
        commander.stop()
    assert not thread.is_alive()
    assert [c["topic"] for c in result["commands"]] == ["zigbee2mqtt/floor3/zone1/siren-1/set"]
