"""GET /api/unknown-devices against the real stack (Mosquitto, the edge agent, the server): simulated
devices the edge does not know announce themselves on its floor broker; the API lists each with the
edge and site `devices:` entries that adopt it, and those entries, completed as docs/devices.md says,
pass the edge file's and the site file's checks. Closing the alarm (device adopted) ends the listing."""

from __future__ import annotations

from typing import Any

import httpx
import yaml

from edge.config import parse_config
from gateway.mqtt import MqttClient
from server.domain.site import parse_site
from simulators.vendors import shelly, tasmota
from tests.e2e.conftest import HERE, Stack
from tests.support.wait import wait_until

TASMOTA_PLUG = "athom-S009"  # Tasmota topics are case-sensitive: the draft keeps the exact address


def announce(stack: Stack) -> MqttClient:
    client = MqttClient(stack.broker.client_settings(), "sim-strangers")
    client.start()
    assert client.wait_connected(10)
    for item in (tasmota.encode_lwt(TASMOTA_PLUG, True), shelly.encode_gen1_online("shellyplug-s-040BAD", True)):
        client.publish(item.topic, item.payload, 1, True)
    return client


def listed(stack: Stack) -> dict[str, dict[str, Any]]:
    return {d["device"]: d for d in stack.client.get("/api/unknown-devices").json()}


def test_unknown_devices_are_listed_with_their_adoption_drafts(stack: Stack) -> None:
    assert stack.client.get("/api/unknown-devices").json() == []
    client = announce(stack)
    try:
        found = wait_until(lambda: (d := listed(stack)) and len(d) == 2 and d, timeout=30)
    finally:
        client.stop()
    assert found, "the edge's unknown_device reports never reached the API"
    plug, shelly_plug = found["tasmota.athom-s009"], found["shelly.shellyplug-s-040bad"]
    assert (plug["edge"], plug["vendor"], plug["address"], plug["topic"]) == (
        "edge-e2e", "tasmota", TASMOTA_PLUG, f"tele/{TASMOTA_PLUG}/LWT")
    assert plug["edge_yaml"] == (
        "- {id: athom-s009, kind: smart_plug, zone: unassigned, vendor: tasmota, address: athom-S009}\n")
    assert plug["site_yaml"] == "- {id: athom-s009, kind: smart_plug, zone: unassigned, edge: edge-e2e}\n"
    assert plug["kind_guessed"] is True  # an LWT does not say what the device is
    # Shelly Gen1's own online topic says it is a Gen1 plug (as discover reads it): nothing guessed.
    assert shelly_plug["edge_yaml"] == ("- {id: shellyplug-s-040bad, kind: smart_plug, zone: unassigned, "
                                        "vendor: shelly, address: shellyplug-s-040BAD, gen: 1}\n")
    assert shelly_plug["kind_guessed"] is False and shelly_plug["state"] == "active"

    # Pasted under devices: with the zone and rating set (docs/devices.md), both files pass their checks.
    site_doc = yaml.safe_load((HERE / "site.yaml").read_text())
    edge_doc: dict[str, Any] = {"site": "e2e", "edge": "edge-e2e", "devices": []}
    for item in (plug, shelly_plug):
        [edge_entry] = yaml.safe_load(item["edge_yaml"])
        [site_entry] = yaml.safe_load(item["site_yaml"])
        edge_doc["devices"].append({**edge_entry, "zone": "z1", "rated_a": 10})
        site_doc["devices"].append({**site_entry, "zone": "z1", "rated_a": 10})
    adopted = parse_config(yaml.safe_dump(edge_doc), "edge.yaml")
    assert {d.address for d in adopted.devices} == {TASMOTA_PLUG, "shellyplug-s-040BAD"}
    assert {"athom-s009", "shellyplug-s-040bad"} <= set(parse_site(yaml.safe_dump(site_doc), "site.yaml").devices)

    # Closing the alarm (the device was adopted or removed) takes it off the list.
    closed = stack.client.post(f"/api/alarms/{plug['alarm_id']}/close", json={"reason": "adopted as athom-s009"})
    assert closed.status_code == 200, closed.text
    assert set(listed(stack)) == {"shelly.shellyplug-s-040bad"}
    assert httpx.get(f"{stack.url}/api/unknown-devices").status_code == 401
