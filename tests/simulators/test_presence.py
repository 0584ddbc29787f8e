"""One simulator per floor on a broker (simulators/presence.py), against a real Mosquitto.

A demo's own simulator announces itself; `floorwatch simulate` of the same floor beside it is refused
(before it publishes anything) and says how to run the demo without its simulator. The announcement
goes when its simulator stops cleanly or its connection drops (its Last Will)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.broker import EmbeddedBroker
from gateway.mqtt import Incoming, MqttClient
from simulators import cli, presence
from simulators.transport import MqttTransport
from tests.support.wait import wait_until

pytestmark = pytest.mark.mosquitto


def demo_simulator(broker: EmbeddedBroker) -> MqttTransport:
    """As server/demo.py's player connects for strip-overload."""
    return MqttTransport(broker.client_settings(), client_id="floorwatch-demo-strip-overload",
                         announce=("demo", "strip-overload"))


def test_simulate_beside_a_demos_simulator_is_refused_before_it_publishes(
        mosquitto: EmbeddedBroker, capsys: pytest.CaptureFixture[str]) -> None:
    device_messages: list[str] = []
    watcher = MqttClient(mosquitto.client_settings(), "watch-devices",
                         on_message=lambda m: device_messages.append(m.topic))
    for topic_filter in ("access/#", "zigbee2mqtt/#", "tele/#", "callpoint/#", "+/status/#"):
        watcher.subscribe(topic_filter)
    watcher.start()
    assert watcher.wait_subscribed(10)
    demo = demo_simulator(mosquitto)
    try:
        live = presence.running_on(mosquitto.client_settings(), "demo")
        assert live is not None and live["scenario"] == "strip-overload", live
        code = cli.main(["--scenario", "fire-drill", "--broker", f"127.0.0.1:{mosquitto.port}", "--server",
                         "http://127.0.0.1:9", "--token", "t", "--speed", "0"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "a simulator is already playing strip-overload on floor demo" in err
        assert "floorwatch-demo-strip-overload" in err and "--scenario none" in err
        assert "elec.relay_mismatch" in err and "Traceback" not in err
        assert device_messages == [], "the refused run published nothing"
        # another floor on the same broker is not this one's business
        assert presence.running_on(mosquitto.client_settings(), "other-floor") is None
    finally:
        demo.close()
        watcher.stop()
    assert presence.running_on(mosquitto.client_settings(), "demo") is None, "a clean stop clears it"


def test_a_simulator_that_dies_leaves_no_announcement(mosquitto: EmbeddedBroker) -> None:
    demo = demo_simulator(mosquitto)
    cleared: list[Incoming] = []
    watcher = MqttClient(mosquitto.client_settings(), "watch-presence",
                         on_message=lambda m: cleared.append(m) if not m.payload else None)
    watcher.subscribe(presence.topic("demo"))
    watcher.start()
    try:
        assert watcher.wait_subscribed(10)
        assert presence.running_on(mosquitto.client_settings(), "demo") is not None
        demo.client.kill()  # as a crash: no DISCONNECT, the broker sends the Will at once
        assert wait_until(lambda: bool(cleared), 10), "the Last Will cleared the announcement"
        assert presence.running_on(mosquitto.client_settings(), "demo") is None
    finally:
        watcher.stop()


def test_simulate_on_a_free_floor_announces_itself_while_it_runs_and_clears_it(mosquitto: EmbeddedBroker,
                                                                                tmp_path: Path) -> None:
    seen: list[bytes] = []
    watcher = MqttClient(mosquitto.client_settings(), "watch-presence", on_message=lambda m: seen.append(m.payload))
    watcher.subscribe(presence.topic("demo"))
    watcher.start()
    try:
        assert watcher.wait_subscribed(10)
        code = cli.main(["--scenario", "strip-overload", "--broker", f"127.0.0.1:{mosquitto.port}", "--speed", "0",
                         "--out", str(tmp_path / "log.json")])
        assert code == 0
        assert wait_until(lambda: len(seen) >= 2, 10), seen
    finally:
        watcher.stop()
    assert json.loads(seen[0])["scenario"] == "strip-overload" and seen[-1] == b""
    assert presence.running_on(mosquitto.client_settings(), "demo") is None
