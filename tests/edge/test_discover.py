"""`floorwatch edge discover` against simulated devices announcing themselves on a real Mosquitto
(issue #17 item 4): the table names vendor, model, suggested kind and address; the draft edge file
validates; unreadable announcements are counted, not fatal."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from edge import cli
from edge.config import Kind, parse_config
from edge.discover import Discovery, adoption_drafts, broker_settings, listen, parse_announcement
from gateway.broker import EmbeddedBroker
from gateway.mqtt import Incoming, MqttClient
from simulators.vendors import shelly, tasmota, zigbee2mqtt
from simulators.vendors.base import Publication

LOCAL = datetime(2026, 12, 6, 19, 0, 0, tzinfo=UTC)  # Tasmota prints local time without an offset


def announcements() -> list[Publication]:
    state = tasmota.TasmotaState(channels=[tasmota.ChannelEnergy(power_w=40, current_a=0.2)] * 2)
    return [
        tasmota.encode_lwt("strip-f3-07", True),
        tasmota.encode_info1("strip-f3-07", "Athom 4 outlet"),
        tasmota.encode_sensor("strip-f3-07", state, LOCAL),
        tasmota.encode_lwt("mr-probes", True),
        tasmota.encode_probe_sensor("mr-probes", {"DS18B20-1": ("3C01D0756611", 21.1),
                                                  "DS18B20-2": ("3C01E076647F", 20.4)}, LOCAL),
        shelly.encode_gen1_online("shellyht-6A9C51", True),
        shelly.encode_online("shellyplugsg3-a1b2c3", True),
        zigbee2mqtt.encode_bridge_devices({"smoke-f3-z1-01": ("0x00158d0001a2b3c4", "smoke"),
                                           "leak-f3-wc": ("0x00158d0001a2b3c5", "leak"),
                                           "siren-f3-z1": ("0x00158d0001a2b3c6", "siren")}, base="zigbee-f3"),
    ]


# What a Gen1 plug answers to `shellies/command` `announce`; a broken answer first (counted, not fatal).
ON_ANNOUNCE = [Publication("shellies/announce", b"{not json", qos=1),
               shelly.encode_gen1_announce("shellyplug-s-040BAD", "SHPLG-S", "A4CF12040BAD", "192.168.1.41")]
# A Tasmota probe box whose LWT is not retained: known only by its answers to `Status` and `Status 8`.
QUIET_PROBE = tasmota.encode_probe_sensor("wc-probe", {"SHT3X": (None, 23.5)}, LOCAL)
ON_STATUS = {b"": tasmota.encode_status("wc-probe", "WC probe"), b"8": tasmota.encode_status8("wc-probe", QUIET_PROBE)}


def publish(broker: EmbeddedBroker, items: list[Publication]) -> MqttClient:
    """The simulated devices: retained announcements now (as the firmwares retain them: every message
    is retained here so that a listener arriving later hears it), Gen1 answers when asked."""
    def on_message(message: Incoming) -> None:
        if message.topic == "shellies/command" and message.payload == b"announce":
            for item in ON_ANNOUNCE:
                client.publish(item.topic, item.payload, 1, False)
        if message.topic == "cmnd/tasmotas/Status" and message.payload in ON_STATUS:
            answer = ON_STATUS[message.payload]
            client.publish(answer.topic, answer.payload, 1, False)

    client = MqttClient(broker.client_settings(), "sim-announcer", on_message=on_message)
    client.subscribe("shellies/command", 1)
    client.subscribe("cmnd/tasmotas/Status", 1)
    client.start()
    # A request the broker routes before it granted these subscriptions reaches no device and is never answered.
    assert client.wait_connected(10) and client.wait_subscribed(10), "the devices' SUBACK before anyone asks"
    for item in items:
        client.publish(item.topic, item.payload, 1, True)
    return client


def test_discover_lists_simulated_devices_and_writes_a_valid_draft(floor: EmbeddedBroker, tmp_path: Path) -> None:
    client = publish(floor, announcements())
    found = listen(floor.client_settings(), 2.0)
    client.stop()
    rows = {(f.vendor.value, f.address, f.sensor): (f.model, f.kind) for f in found.rows()}
    assert rows == {
        ("tasmota", "strip-f3-07", None): ("Athom 4 outlet", Kind.STRIP_METER),
        ("tasmota", "mr-probes", None): ("?", None),
        ("tasmota", "mr-probes", "3C01D0756611"): ("DS18B20", Kind.TEMP_SENSOR),
        ("tasmota", "mr-probes", "3C01E076647F"): ("DS18B20", Kind.TEMP_SENSOR),
        ("tasmota", "wc-probe", None): ("WC probe", None),
        ("tasmota", "wc-probe", "SHT3X"): ("SHT3X", Kind.TEMP_SENSOR),
        ("shelly", "shellyplug-s-040BAD", None): ("SHPLG-S", Kind.SMART_PLUG),
        ("shelly", "shellyht-6A9C51", None): ("H&T", Kind.TEMP_SENSOR),
        ("shelly", "shellyplugsg3-a1b2c3", None): ("shellyplugsg3", Kind.SMART_PLUG),
        ("zigbee2mqtt", "smoke-f3-z1-01", None): ("Heiman HS1SA", Kind.SMOKE_DETECTOR),
        ("zigbee2mqtt", "leak-f3-wc", None): ("Aqara SJCGQ11LM", Kind.LEAK_SENSOR),
        ("zigbee2mqtt", "siren-f3-z1", None): ("Heiman HS2WD-E", Kind.SIREN),
    }
    assert found.ignored == 1
    table = found.table()
    assert table.splitlines()[0].split() == ["vendor", "model", "suggested", "kind", "address"]
    assert "zigbee-f3/smoke-f3-z1-01" in table and "shelly gen1" in table
    draft = parse_config(found.edge_yaml("hq", "edge-f3", floor.client_settings()), "edge-draft.yaml")
    by_id = {d.id: d for d in draft.devices}
    assert len(by_id) == 10  # the probe hosts themselves have no kind and are left out
    assert by_id["shellyplug-s-040bad"].gen == 1
    assert by_id["smoke-f3-z1-01"].base_topic == "zigbee-f3"
    assert by_id["mr-probes-3c01d0756611"].sensor == "3C01D0756611"
    assert "edge: edge-f3" in found.site_yaml("edge-f3")


def test_the_command_prints_the_table_and_writes_drafts(floor: EmbeddedBroker, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    client = publish(floor, announcements()[:3])
    settings = floor.client_settings()
    url = f"mqtt://{settings.username}@{settings.host}:{settings.port}"
    assert cli.main(["discover", "--floor-broker", url, "--seconds", "1.5", "--out", str(tmp_path)]) == 0
    client.stop()
    out = capsys.readouterr().out
    assert "Athom 4 outlet" in out and "strip_meter" in out and "SHPLG-S" in out
    assert "4 device(s) heard in 1.5 s; 1 unreadable announcement(s)" in out
    draft = parse_config((tmp_path / "edge-draft.yaml").read_text(), "edge-draft.yaml")
    assert [(d.id, d.kind) for d in draft.devices] == [("shellyplug-s-040bad", Kind.SMART_PLUG),
                                                        ("strip-f3-07", Kind.STRIP_METER),
                                                        ("wc-probe-sht3x", Kind.TEMP_SENSOR)]


def test_passive_discovery_asks_nothing(floor: EmbeddedBroker) -> None:
    client = publish(floor, announcements()[:1])
    found = listen(floor.client_settings(), 1.0, ask=False)
    client.stop()
    assert [f.address for f in found.rows()] == ["strip-f3-07"]


@pytest.mark.parametrize(("url", "message"), [
    ("http://floor:1883", "expected mqtt://host[:port]"),
    ("mqtt://floor:port", "the port is not a number"),
])
def test_a_bad_broker_url_is_a_clear_error(url: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        broker_settings(url)
    assert cli.main(["discover", "--floor-broker", url, "--seconds", "1"]) == 2
    assert message in capsys.readouterr().err


def test_observe_is_pure_and_skips_the_coordinator() -> None:
    d = Discovery()
    d.observe("zigbee2mqtt/bridge/devices", zigbee2mqtt.encode_bridge_devices({}).payload)
    d.observe("tele/x/LWT", b"Offline")
    assert d.found == {} and d.ignored == 0


@pytest.mark.parametrize(("topic", "name", "base"), [
    ("zigbee-f3/floor3/zone1/plug-12/availability", "floor3/zone1/plug-12", "zigbee-f3"),
    ("site/hq/zigbee/floor3/zone1/leak-7/availability", "floor3/zone1/leak-7", "site/hq/zigbee"),
    ("zigbee2mqtt/floor3/zone1/leak-7/availability", "floor3/zone1/leak-7", None),
])
def test_the_adoption_draft_of_a_zigbee_stranger_keeps_its_bridge(topic: str, name: str, base: str | None) -> None:
    """The edge heard `<base>/<name>/availability`: the draft is heard on that bridge again only with its base
    topic, and the name's own levels stay in the address (the base is what precedes the name)."""
    heard = parse_announcement(f"zigbee2mqtt device {name!r} announced itself on {topic}; "
                               "it is in no configuration of this edge")
    assert heard is not None
    edge_yaml, site_yaml, guessed = adoption_drafts(heard, "edge-f3")
    [entry] = yaml.safe_load(edge_yaml)
    assert (entry["address"], entry.get("base_topic")) == (name, base)
    assert [(d["id"], d["edge"]) for d in yaml.safe_load(site_yaml)] == [(entry["id"], "edge-f3")]
    assert guessed is True  # an availability message does not say what the device is
    text = yaml.safe_dump({"site": "hq", "edge": "edge-f3", "devices": [{**entry, "zone": "z1"}]})
    [device] = parse_config(text, "edge.yaml").devices
    assert f"{device.base_topic or 'zigbee2mqtt'}/{device.address}/availability" == topic
