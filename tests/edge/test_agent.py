"""The agent end to end, through real Mosquitto brokers: an uplink broker (the `mosquitto` fixture or
one started here) and a separate floor broker where the test publishes vendor payloads."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.outbox import Outbox
from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.contract import Action, Channel, Command, EdgeState, EventType
from gateway.mqtt import MqttSettings
from tests.edge.conftest import EDGE, SITE, Collector, Devices, edge_config, start_agent
from tests.support.wait import wait_until

SHELLY_STATUS = {"id": 0, "source": "init", "output": True, "apower": 182.4, "voltage": 221.0, "current": 0.83,
                 "aenergy": {"total": 1234.5, "by_minute": [0, 0, 0], "minute_ts": 1788945300},
                 "temperature": {"tC": 41.2, "tF": 106.2}}


def shelly_status(**changes: object) -> bytes:
    return json.dumps({**SHELLY_STATUS, **changes}).encode()


def tasmota_sensor(power: float) -> bytes:
    energy = {"Total": 3.262, "Power": power, "Voltage": 229, "Current": round(power / 229, 3), "Factor": 0.9}
    return json.dumps({"Time": "2026-11-29T11:00:00", "ENERGY": energy}).encode()


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[list[EdgeAgent]]:
    agents: list[EdgeAgent] = []
    yield agents
    for agent in agents:
        if agent._worker is not None:
            agent.stop(drain_s=0.5)


def command(device: str, action: Action, *, cid: str, ttl_s: float = 30) -> Command:
    now = datetime.now(UTC)
    return Command(id=cid, device=device, action=action, reason="test", issued_at=now,
                   expires_at=now + timedelta(seconds=ttl_s))


def send(collector: Collector, cmd: Command) -> None:
    collector.client.publish_payload(contract.edge_topic(SITE, EDGE, Channel.COMMANDS), cmd)


# --------------------------------------------------------------------------------------------------


def test_readings_batches_status_and_will(mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices,
                                          agent_factory: list[EdgeAgent], tmp_path: Path) -> None:
    collector = Collector(mosquitto.client_settings())
    agent = start_agent(agent_factory, edge_config(mosquitto.client_settings(), floor.client_settings(),
                                                   tmp_path / "buf.sqlite"))
    devices.publish("shellyplugsg3-a1b2c3/status/switch:0", shelly_status())
    for n in range(450):
        devices.publish("tele/strip-f3-01/SENSOR", tasmota_sensor(float(n)))
    assert wait_until(lambda: len(collector.readings()) >= 451, 10)
    readings = collector.readings()
    plug = next(r for r in readings if r.device == "plug-f3-s001")
    assert plug.metrics == {"relay_on": True, "power_w": 182.4, "voltage_v": 221.0, "current_a": 0.83,
                            "energy_wh": 1234.5, "device_temp_c": 41.2}
    strip = [r.metrics["power_w"] for r in readings if r.device == "strip-f3-01"]
    assert strip == [float(n) for n in range(450)]  # all, once, in order
    sizes = [len(b.readings) for b in collector.telemetry]
    assert max(sizes) <= 200 and len(sizes) < 20  # batched, not one message per reading
    seqs = [b.seq for b in collector.telemetry]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    statuses = wait_until(lambda: [s for s in collector.statuses if s.state is EdgeState.ONLINE
                                   and s.last_seq is not None and s.last_seq >= max(seqs)], 5)
    assert statuses and statuses[-1].version
    assert wait_until(lambda: len(agent.outbox or []) == 0, 5)  # all acknowledged and deleted

    # A crash: the broker publishes the Last Will, retained, so late subscribers see it too.
    agent.kill()
    late = Collector(mosquitto.client_settings(), name="late")
    assert wait_until(lambda: late.statuses and late.statuses[-1].state is EdgeState.OFFLINE, 5)
    late.stop()
    collector.stop()


def test_life_safety_goes_out_at_once_and_sounds_the_local_siren(
        mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices, agent_factory: list[EdgeAgent],
        tmp_path: Path) -> None:
    collector = Collector(mosquitto.client_settings())
    devices.listen("zigbee2mqtt/siren-f3-z1/set")
    # Batches wait up to 60 s here: only the life-safety path can make this test pass in time.
    agent = start_agent(agent_factory, edge_config(mosquitto.client_settings(), floor.client_settings(),
                                                   tmp_path / "buf.sqlite", batch={"max_age_ms": 60_000}))
    devices.publish("tele/strip-f3-01/SENSOR", tasmota_sensor(100.0))
    assert wait_until(lambda: agent.supervisor.online("strip-f3-01"), 5), "the reading reached the edge first"
    sent = time.monotonic()
    # Heiman smoke detector payload, https://github.com/Koenkk/zigbee2mqtt/issues/1669
    devices.publish("zigbee2mqtt/smoke-f3-z1-01", b'{"smoke":true,"battery_low":false,"linkquality":26}')
    alarms = wait_until(lambda: [e for e in collector.all_events() if e.type is EventType.DETECTOR_ALARM], 5)
    assert alarms and time.monotonic() - sent < 1.0
    assert alarms[0].device == "smoke-f3-z1-01"
    # The reading that came before the alarm was flushed before it: order is kept.
    assert collector.order[0][0] == "telemetry" and collector.order[1][0] == "events"
    assert collector.order[0][1] < collector.order[1][1]
    # The local siren, without asking the server:
    [siren] = wait_until(lambda: devices.on("zigbee2mqtt/siren-f3-z1/set"), 5)
    assert json.loads(siren)["warning"]["mode"] == "fire"
    assert wait_until(lambda: [e for e in collector.all_events()
                               if e.type is EventType.INTERLOCK_TRIPPED and e.device == "siren-f3-z1"], 5)
    collector.stop()


def test_plug_overload_interlock_through_the_broker(mosquitto: EmbeddedBroker, floor: EmbeddedBroker,
                                                    devices: Devices, agent_factory: list[EdgeAgent],
                                                    tmp_path: Path) -> None:
    collector = Collector(mosquitto.client_settings())
    devices.listen("shellyplugsg3-a1b2c3/rpc")
    devices.listen("shellyplugsg3-d4e5f6/rpc")
    start_agent(agent_factory, edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "b.sqlite",
                                           interlocks={"plug_overload": {"ratio": 1.25, "hold_s": 0.5}}))
    devices.publish("shellyplugsg3-a1b2c3/status/switch:0", shelly_status(current=13.6, apower=2990.0))
    devices.publish("shellyplugsg3-d4e5f6/status/switch:0", shelly_status(current=20.0, apower=4400.0))
    # One message and then silence (Shelly reports on change): the edge trips on its own timer.
    [request] = wait_until(lambda: devices.on("shellyplugsg3-a1b2c3/rpc"), 5)
    body = json.loads(request)
    assert body["method"] == "Switch.Set" and body["params"] == {"id": 0, "on": False}
    trips = wait_until(lambda: [e for e in collector.all_events() if e.type is EventType.INTERLOCK_TRIPPED], 5)
    assert [e.device for e in trips] == ["plug-f3-s001"] and "13.60 A" in (trips[0].detail or "")
    # the scenario: the essential plug stays overloaded for twice the hold after the other one tripped
    time.sleep(1.0)
    assert devices.on("shellyplugsg3-d4e5f6/rpc") == []  # essential: never cut locally
    collector.stop()


def test_commands_confirmed_expired_replayed_unconfirmed(mosquitto: EmbeddedBroker, floor: EmbeddedBroker,
                                                         devices: Devices, agent_factory: list[EdgeAgent],
                                                         tmp_path: Path) -> None:
    def shelly_plug(request: bytes) -> None:  # a device that does what it is told and reports its state
        on = json.loads(request)["params"]["on"]
        devices.publish("shellyplugsg3-a1b2c3/status/switch:0", shelly_status(output=on, apower=0.0, current=0.0))

    devices.listen("shellyplugsg3-a1b2c3/rpc", shelly_plug)
    collector = Collector(mosquitto.client_settings())
    start_agent(agent_factory, edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "b.sqlite",
                                           commands={"confirm_timeout_s": 1}))
    send(collector, command("plug-f3-s001", Action.RELAY_OFF, cid="c-ok"))
    send(collector, command("plug-f3-s001", Action.RELAY_OFF, cid="c-old", ttl_s=-1))
    send(collector, command("plug-f3-s002", Action.RELAY_OFF, cid="c-silent"))  # nobody answers for it
    send(collector, command("plug-f3-nope", Action.RELAY_OFF, cid="c-unknown"))
    send(collector, command("smoke-f3-z1-01", Action.RELAY_OFF, cid="c-wrong"))
    results = wait_until(lambda: {r.id: r for r in collector.results} if len(collector.results) >= 5 else None, 8)
    assert results, collector.results
    assert results["c-ok"].ok and results["c-ok"].reported is not None
    assert results["c-ok"].reported["relay_on"] is False and results["c-ok"].device == "plug-f3-s001"
    assert (results["c-old"].ok, results["c-old"].error) == (False, "expired")
    assert (results["c-silent"].ok, results["c-silent"].error) == (False, "no confirmation from device")
    assert not results["c-unknown"].ok and "unknown device" in (results["c-unknown"].error or "")
    assert not results["c-wrong"].ok and "cannot relay_off" in (results["c-wrong"].error or "")
    requests_before = len(devices.on("shellyplugsg3-a1b2c3/rpc"))
    send(collector, command("plug-f3-s001", Action.RELAY_OFF, cid="c-ok"))  # a replay
    # commands are taken in order: once the next one is answered, the replay was handled (or dropped)
    send(collector, command("plug-f3-s001", Action.RELAY_ON, cid="c-next"))
    assert wait_until(lambda: any(r.id == "c-next" for r in collector.results), 8), "the command after the replay"
    assert [r.id for r in collector.results].count("c-ok") == 1  # answered once, ever
    assert len(devices.on("shellyplugsg3-a1b2c3/rpc")) == requests_before + 1  # and not run again (c-next ran)
    collector.stop()


def test_bad_vendor_payloads_are_counted_logged_once_and_harmless(
        mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices, agent_factory: list[EdgeAgent],
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    collector = Collector(mosquitto.client_settings())
    start_agent(agent_factory, edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "b.sqlite"))
    with caplog.at_level(logging.WARNING, logger="edge.agent"):
        for _ in range(5):
            devices.publish("shellyplugsg3-a1b2c3/status/switch:0", b"{oops")
        devices.publish("access/door-f3-main/event", b'{"type": "badge", "result": "maybe", "badge": "B77777"}')
        devices.publish("shellyplugsg3-a1b2c3/status/switch:0", shelly_status())
        assert wait_until(lambda: collector.readings(), 5)
        status = wait_until(lambda: [s for s in collector.statuses if s.decode_errors == 6], 5)
    assert status
    lines = [r.getMessage() for r in caplog.records if "cannot decode" in r.getMessage()]
    assert len([m for m in lines if "plug-f3-s001" in m]) == 1 and len(lines) == 2
    assert not any("B77777" in m for m in caplog.messages)  # no badge numbers in logs
    collector.stop()


def test_device_offline_and_online(mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices,
                                   agent_factory: list[EdgeAgent], tmp_path: Path) -> None:
    collector = Collector(mosquitto.client_settings())
    config = edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "b.sqlite")
    devices_cfg = [d.model_dump() for d in config.devices]
    devices_cfg[3]["reporting_interval_s"] = 0.3  # strip-f3-02-o2 reports every 0.3 s
    config = config.model_copy(update={"devices": [type(config.devices[0]).model_validate(d)
                                                   for d in devices_cfg]})
    start_agent(agent_factory, config)
    devices.publish("tele/strip-f3-01/LWT", "Offline", retain=True)  # the Tasmota's Last Will
    devices.publish("zigbee2mqtt/smoke-f3-z1-01/availability", '{"state":"offline"}')

    def changes() -> list[tuple[str, EventType]]:
        return [(e.device, e.type) for e in collector.all_events()
                if e.type in (EventType.DEVICE_OFFLINE, EventType.DEVICE_ONLINE)]

    assert wait_until(lambda: len(changes()) >= 3, 5)  # two by availability, one by silence
    assert set(changes()) == {("strip-f3-01", EventType.DEVICE_OFFLINE),
                              ("smoke-f3-z1-01", EventType.DEVICE_OFFLINE),
                              ("strip-f3-02-o2", EventType.DEVICE_OFFLINE)}
    devices.publish("tele/strip-f3-01/LWT", "Online", retain=True)
    devices.publish("stat/strip-f3-02/POWER2", "ON")
    assert wait_until(lambda: len(changes()) >= 5, 5)
    assert set(changes()[3:]) == {("strip-f3-01", EventType.DEVICE_ONLINE), ("strip-f3-02-o2", EventType.DEVICE_ONLINE)}
    collector.stop()


def test_unconfigured_devices_announcing_themselves_are_reported_once(
        mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices, agent_factory: list[EdgeAgent],
        tmp_path: Path) -> None:
    """A private Tasmota strip, an unregistered Shelly plug and a newly joined Zigbee device come online
    on the floor broker: each is reported once (RULES.md elec.strip_cascade, S02), the configured ones
    stay plain availability, and an unknown device's readings are still ignored."""
    collector = Collector(mosquitto.client_settings())
    start_agent(agent_factory, edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "u.sqlite"))
    devices.publish("tele/tasmota_7C2E4F/LWT", "Online", retain=True)
    devices.publish("tele/tasmota_7C2E4F/SENSOR", tasmota_sensor(350.0))
    devices.publish("tele/tasmota_7C2E4F/LWT", "Online", retain=True)  # a reconnect: not a second report
    devices.publish("shellyplugsg3-ffee01/online", "true", retain=True)
    devices.publish("zigbee2mqtt/0x00124b0029aa0f1e/availability", '{"state":"online"}')
    devices.publish("tele/tasmota_DEAD01/LWT", "Offline", retain=True)  # offline: nothing new on the floor
    devices.publish("tele/strip-f3-01/LWT", "Offline", retain=True)  # configured: availability as before

    def unknown() -> list[contract.Event]:
        return [e for e in collector.all_events() if e.type is EventType.UNKNOWN_DEVICE]

    assert wait_until(lambda: len(unknown()) >= 3, 10)
    # a marker after everything above: once it is through, nothing more is on its way
    devices.publish("zigbee2mqtt/0x00124b00ffff0001/availability", "online")
    assert wait_until(lambda: len(unknown()) >= 4, 10)
    got = {e.device: e.detail or "" for e in unknown()}
    assert sorted(got) == ["shelly.shellyplugsg3-ffee01", "tasmota.tasmota_7c2e4f",
                           "zigbee2mqtt.0x00124b0029aa0f1e", "zigbee2mqtt.0x00124b00ffff0001"]
    assert "'tasmota_7C2E4F'" in got["tasmota.tasmota_7c2e4f"] and "tele/tasmota_7C2E4F/LWT" in got[
        "tasmota.tasmota_7c2e4f"]
    assert not [r for r in collector.readings() if "tasmota_7c2e4f" in r.device]
    assert ("strip-f3-01", EventType.DEVICE_OFFLINE) in [(e.device, e.type) for e in collector.all_events()]
    collector.stop()


def test_a_zigbee_stranger_with_a_three_level_name_is_reported_and_the_configured_ones_still_heard(
        mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices, agent_factory: list[EdgeAgent],
        tmp_path: Path) -> None:
    """Zigbee2MQTT allows `/` in friendly names at any depth: `floor3/zone1/plug-12` coming online is a
    stranger like any other, its /set and /get are nobody's announcement, and the configured smoke detector
    is decoded on the same `zigbee2mqtt/#` subscription exactly once."""
    collector = Collector(mosquitto.client_settings())
    start_agent(agent_factory, edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "z.sqlite"))
    devices.publish("zigbee2mqtt/floor3/zone1/plug-12/set", '{"state": "ON"}')
    devices.publish("zigbee2mqtt/floor3/zone1/plug-12/get", '{"state": ""}')
    devices.publish("zigbee2mqtt/floor3/zone1/plug-12/availability", '{"state":"online"}', retain=True)
    devices.publish("zigbee2mqtt/b1/floor3/zone1/desk-fan 4/availability", "online")
    devices.publish("zigbee2mqtt/smoke-f3-z1-01", json.dumps({"smoke": False, "battery": 88}))

    def unknown() -> list[contract.Event]:
        return [e for e in collector.all_events() if e.type is EventType.UNKNOWN_DEVICE]

    def batteries() -> list[float]:
        return [r.metrics["battery_pct"] for r in collector.readings()
                if r.device == "smoke-f3-z1-01" and "battery_pct" in r.metrics]

    assert wait_until(lambda: len(unknown()) >= 2 and batteries(), 10), (unknown(), batteries())
    got = {e.device: e.detail or "" for e in unknown()}
    assert sorted(got) == ["zigbee2mqtt.b1-floor3-zone1-desk-fan-4", "zigbee2mqtt.floor3-zone1-plug-12"]
    assert "'floor3/zone1/plug-12' announced itself on zigbee2mqtt/floor3/zone1/plug-12/availability" in got[
        "zigbee2mqtt.floor3-zone1-plug-12"]
    devices.publish("zigbee2mqtt/smoke-f3-z1-01", json.dumps({"smoke": False, "battery": 87}))  # a marker
    assert wait_until(lambda: len(batteries()) >= 2, 10)
    assert batteries() == [88, 87], "each state message decoded once"
    assert len(unknown()) == 2
    collector.stop()


def test_unknown_device_reports_can_be_turned_off_for_a_shared_floor_broker(
        mosquitto: EmbeddedBroker, floor: EmbeddedBroker, devices: Devices, agent_factory: list[EdgeAgent],
        tmp_path: Path) -> None:
    collector = Collector(mosquitto.client_settings())
    start_agent(agent_factory, edge_config(mosquitto.client_settings(), floor.client_settings(), tmp_path / "o.sqlite",
                                           supervision={"report_unknown_devices": False}))
    devices.publish("tele/tasmota_7C2E4F/LWT", "Online", retain=True)
    devices.publish("tele/strip-f3-01/LWT", "Offline", retain=True)  # marker: the configured strip's LWT
    assert wait_until(lambda: any(e.type is EventType.DEVICE_OFFLINE for e in collector.all_events()), 10)
    assert not [e for e in collector.all_events() if e.type is EventType.UNKNOWN_DEVICE]
    collector.stop()


def test_a_batch_over_the_payload_limit_goes_out_in_parts_that_fit(tmp_path: Path) -> None:
    """The contract refuses a payload over its byte limit: the agent halves a batch until each part fits, and
    every reading and event goes out once, in its order, each part with its own seq."""
    config = edge_config(MqttSettings(), MqttSettings(), tmp_path / "o.sqlite")
    agent = EdgeAgent(config)  # not started: nothing connects, the outbox is all this test reads
    agent.outbox = outbox = Outbox(config.buffer.path, config.buffer.max_messages)
    ts = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    metrics = {f"metric_{i:02d}": 1234.5678 + i for i in range(contract.MAX_METRICS_PER_READING)}
    readings = [contract.Reading(device=f"plug-{i:04d}", ts=ts, metrics=metrics)
                for i in range(contract.MAX_BATCH_ITEMS)]
    events = [contract.Event(device=f"door-{i:04d}", ts=ts, type=EventType.DOOR_HELD_OPEN, detail="x" * 500)
              for i in range(contract.MAX_BATCH_ITEMS)]
    agent._emit_readings(readings)
    agent._emit_events(events)
    rows = outbox.after(0, 1000)
    assert all(len(row.payload) <= contract.MAX_PAYLOAD_BYTES for row in rows)
    batches = [contract.decode(row.topic, row.payload)[1] for row in rows]
    sent_readings = [b for b in batches if isinstance(b, contract.TelemetryBatch)]
    sent_events = [b for b in batches if isinstance(b, contract.EventBatch)]
    assert len(sent_readings) > 1 and len(sent_events) > 1
    assert [r for b in sent_readings for r in b.readings] == readings
    assert [e for b in sent_events for e in b.events] == events
    seqs = [b.seq for b in (*sent_readings, *sent_events)]
    assert seqs == sorted(set(seqs))
    outbox.close()
