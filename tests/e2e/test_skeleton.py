"""The walking skeleton, end to end through a real broker: a Tasmota power strip in its own dialect,
the real edge agent, the server's rule and alarm, SQLite, the API and the page."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from gateway import contract
from gateway.mqtt import Incoming, MqttClient
from simulators.vendors.tasmota import ChannelEnergy, TasmotaState, encode_lwt, encode_sensor
from tests.e2e.conftest import Stack


def publish_strip(stack: Stack, amps: float, seconds: float) -> None:
    """The strip reports its load every 0.5 s, as a Tasmota device would (tele/<topic>/SENSOR)."""
    device = MqttClient(stack.broker.client_settings(), "tasmota-strip-z1-01")
    device.start()
    assert device.wait_connected(10)
    state = TasmotaState(channels=[ChannelEnergy(power_w=amps * 220, current_a=amps)])
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sensor = encode_sensor("strip-z1-01", state, datetime.now(UTC))
        device.publish(sensor.topic, sensor.payload, qos=0)
        time.sleep(0.5)
    device.stop()


def test_strip_overload_travels_from_a_tasmota_payload_to_the_api_and_page(stack: Stack) -> None:
    started = time.monotonic()
    publish_strip(stack, amps=12.5, seconds=5)  # 125 % of a 10 A strip, past the (shortened) 3 s hold

    alarms = stack.wait_for("/api/alarms?state=active", lambda body: any(
        a["rule"] == "elec.strip_overload" for a in body), timeout=20)
    alarm = next(a for a in alarms if a["rule"] == "elec.strip_overload")
    assert alarm["device"] == "strip-z1-01" and alarm["zone"] == "z1"
    assert alarm["value"] == 12.5
    assert alarm["severity"] in {"major", "critical"}
    assert time.monotonic() - started < 20

    devices = {d["id"]: d for d in stack.client.get("/api/devices").json()}
    assert devices["strip-z1-01"]["metrics"]["current_a"] == 12.5
    assert devices["strip-z1-01"]["online"] is True

    page = stack.client.get("/")
    assert page.status_code == 200 and "Floorwatch" in page.text

    # Exactly one alarm for the (rule, device), however many readings kept it up.
    all_alarms = stack.client.get("/api/alarms").json()
    assert sum(a["rule"] == "elec.strip_overload" for a in all_alarms) == 1
    audit = stack.client.get(f"/api/alarms/{alarm['id']}/audit").json()
    assert audit[0]["action"] == "raise"


def test_every_alarm_change_is_published_for_integrations_with_its_unit_and_both_languages(stack: Stack) -> None:
    """`floorwatch/v1/{site}/alarms/{id}` (AlarmChange) is what dashboards and displays read without the API."""
    received: list[Incoming] = []
    heard = threading.Event()

    def on_message(message: Incoming) -> None:
        received.append(message)
        heard.set()

    listener = MqttClient(stack.broker.client_settings(), "test-alarm-listener", on_message=on_message)
    listener.start()
    assert listener.wait_connected(10)
    listener.subscribe(contract.site_topic("e2e", contract.SiteChannel.ALARMS, "+"))
    assert listener.wait_subscribed(10)
    publish_strip(stack, amps=12.5, seconds=5)
    alarm = stack.wait_for("/api/alarms?state=active", lambda b: any(
        a["rule"] == "elec.strip_overload" for a in b), timeout=20)[0]
    assert heard.wait(10), "no AlarmChange was published"
    listener.stop()
    changes = [contract.AlarmChange.model_validate_json(m.payload) for m in received]
    assert [m.topic for m in received] == [
        contract.site_topic("e2e", contract.SiteChannel.ALARMS, str(c.id)) for c in changes]
    change = next(c for c in changes if c.rule == "elec.strip_overload")
    assert (change.id, change.site, change.device, change.zone) == (alarm["id"], "e2e", "strip-z1-01", "z1")
    assert change.state == alarm["state"] and change.severity.value == alarm["severity"]
    assert (change.value, change.raised_value, change.unit) == (12.5, 12.5, "A")
    assert change.peak is not None and change.peak >= 12.5
    assert change.message and change.message_zh and change.message_zh != change.message


def test_acknowledge_through_the_api_records_who(stack: Stack) -> None:
    publish_strip(stack, amps=12.0, seconds=4.5)
    alarm = stack.wait_for("/api/alarms?state=active", lambda b: bool(b), timeout=20)[0]
    acked = stack.client.post(f"/api/alarms/{alarm['id']}/ack", json={"note": "heater removed"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged" and acked.json()["acknowledged_by"] == "admin"
    again = stack.client.post(f"/api/alarms/{alarm['id']}/ack", json={"note": "twice"})
    assert again.status_code == 409


def test_nobody_unauthenticated_gets_anything_but_health(stack: Stack) -> None:
    import httpx

    anonymous = httpx.Client(base_url=stack.url)
    health = anonymous.get("/api/health")
    assert health.status_code == 200
    # the boards' alarm and inspection history has a writer of its own: its drops are reported too
    history = health.json()["dependencies"]["timeseries"]["history"]
    assert {"buffered", "written", "dropped", "error"} <= set(history) and history["dropped"] == 0
    for path in ("/api/alarms", "/api/devices", "/api/dead-letters", "/api/readings?device=x&metric=y"):
        assert anonymous.get(path).status_code == 401, path
    assert anonymous.post("/api/alarms/1/ack", json={}).status_code == 401


def test_an_unregistered_strip_coming_online_raises_strip_cascade(stack: Stack) -> None:
    """Ad-hoc wiring (S02): a private Tasmota strip joins the floor broker; the real edge reports the
    stranger, the server raises elec.strip_cascade (major) naming edge and device; its readings stay out."""
    device = MqttClient(stack.broker.client_settings(), "tasmota-private-strip")
    device.start()
    assert device.wait_connected(10)
    lwt = encode_lwt("tasmota_7C2E4F", True)
    device.publish(lwt.topic, lwt.payload, qos=1, retain=True)
    sensor = encode_sensor("tasmota_7C2E4F", TasmotaState(channels=[ChannelEnergy(power_w=350, current_a=1.6)]),
                           datetime.now(UTC))
    device.publish(sensor.topic, sensor.payload, qos=1)
    alarms = stack.wait_for("/api/alarms", lambda b: any(a["rule"] == "elec.strip_cascade" for a in b))
    cascade = [a for a in alarms if a["rule"] == "elec.strip_cascade"]
    assert len(cascade) == 1
    assert cascade[0]["subject"] == "edge-e2e/tasmota.tasmota_7c2e4f" and cascade[0]["severity"] == "major"
    assert "tasmota_7C2E4F" in cascade[0]["message"]
    assert "tasmota.tasmota_7c2e4f" not in [d["id"] for d in stack.client.get("/api/devices").json()]
    device.stop()
