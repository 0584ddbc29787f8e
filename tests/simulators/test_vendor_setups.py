"""The simulators' new firmware setups (Tasmota INFO1 and probes, Shelly Gen1, Zigbee2MQTT bridge state and
device list) have the documented shape, and the edge's drivers read them: encoders and decoders were
written from the documentation separately, so each checks the other."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from edge.config import DeviceConfig, Kind, Vendor
from edge.drivers import ShellyDriver, TasmotaDriver, Zigbee2MqttDriver
from gateway.contract import Event, EventType, Reading
from simulators.vendors import shelly, tasmota, zigbee2mqtt

NOW = datetime(2026, 12, 6, 19, 0, tzinfo=UTC)


def dev(id: str, kind: Kind, vendor: Vendor, address: str, **kw: object) -> DeviceConfig:
    return DeviceConfig.model_validate({"id": id, "kind": kind, "zone": "z", "vendor": vendor, "address": address,
                                        **kw})


def test_tasmota_info1_and_probe_sensor() -> None:
    info = tasmota.encode_info1("strip-f3-07", "Athom 4 outlet")
    assert info.topic == "tele/strip-f3-07/INFO1"
    assert set(json.loads(info.payload)["Info1"]) == {"Module", "Version", "FallbackTopic", "GroupTopic"}
    sensor = tasmota.encode_probe_sensor("mr", {"DS18B20-1": ("3C01D0756611", 21.14), "AM2301": (None, 70.0)},
                                         NOW, unit="F")
    body = json.loads(sensor.payload)
    assert list(body) == ["Time", "DS18B20-1", "AM2301", "TempUnit"] and body["DS18B20-1"]["Id"] == "3C01D0756611"
    driver = TasmotaDriver([dev("t1", Kind.MR_PROBE, Vendor.TASMOTA, "mr", sensor="3C01D0756611"),
                            dev("t2", Kind.TEMP_SENSOR, Vendor.TASMOTA, "mr", sensor="AM2301")])
    items = driver.decode(sensor.topic, sensor.payload, NOW)
    got = {r.device: dict(r.metrics) for r in items if isinstance(r, Reading)}
    assert got == {"t1": {"temperature_c": -6.06}, "t2": {"temperature_c": 21.11}}


def test_shelly_gen1_relay_and_announce() -> None:
    pubs = shelly.encode_gen1_relay("shellyplug-s-040BAD", 0, True, 182.4, 6000)
    base = "shellies/shellyplug-s-040BAD/relay/0"
    assert [p.topic for p in pubs] == [base, f"{base}/power", f"{base}/energy"]
    driver = ShellyDriver([dev("p", Kind.SMART_PLUG, Vendor.SHELLY, "shellyplug-s-040BAD", gen=1, rated_a=10)])
    merged: dict[str, object] = {}
    for p in pubs:
        for item in driver.decode(p.topic, p.payload, NOW):
            assert isinstance(item, Reading)
            merged.update(item.metrics)
    assert merged == {"relay_on": True, "device_fault": False, "power_w": 182.4, "energy_wh": 100.0}
    announce = shelly.encode_gen1_announce("shellyht-6A9C51", "SHHT-1", "A4CF126A9C51", "192.168.1.9")
    assert set(json.loads(announce.payload)) == {"id", "model", "mac", "ip", "new_fw", "fw_ver"}
    driver.discover = True
    assert driver.announced(announce.topic, announce.payload) == "shellyht-6A9C51"
    online = shelly.encode_gen1_online("shellyplug-s-040BAD", False)
    [offline] = driver.decode(online.topic, online.payload, NOW)
    assert isinstance(offline, Event) and offline.type is EventType.DEVICE_OFFLINE and online.retain


def test_zigbee2mqtt_bridge_state_both_forms_and_device_list() -> None:
    driver = Zigbee2MqttDriver([dev("s", Kind.SMOKE_DETECTOR, Vendor.ZIGBEE2MQTT, "smoke-1", base_topic="zigbee-f3")])
    down = zigbee2mqtt.encode_bridge_state(False, base="zigbee-f3")
    assert (down.topic, down.payload, down.retain) == ("zigbee-f3/bridge/state", b'{"state":"offline"}', True)
    [event] = driver.decode(down.topic, down.payload, NOW)
    assert isinstance(event, Event) and event.type is EventType.BRIDGE_OFFLINE
    up = zigbee2mqtt.encode_bridge_state(True, base="zigbee-f3", legacy=True)
    assert up.payload == b"online"
    assert [e.type for e in driver.decode(up.topic, up.payload, NOW) if isinstance(e, Event)] == [
        EventType.BRIDGE_ONLINE]
    devices = json.loads(zigbee2mqtt.encode_bridge_devices({"smoke-1": ("0x00158d0001a2b3c4", "smoke")}).payload)
    assert [d["type"] for d in devices] == ["Coordinator", "EndDevice"]
    assert {e["property"] for e in devices[1]["definition"]["exposes"]} >= {"smoke", "battery"}
