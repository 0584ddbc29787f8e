"""Real firmware setups (issue #17): non-default topic layouts, Tasmota probes and STATUS answers, changed
StateText, Shelly Gen1 and NotifyFullStatus, Zigbee2MQTT bridge/state. Every sample is copied from the
public documentation or issue thread named beside it; none comes from our simulators. Values that are
only arithmetic checks (no public sample found) are marked "constructed" and are not counted as samples.
"""
# ruff: noqa: E501  (payloads are copied verbatim)

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from edge.agent import decode_error_event
from edge.config import ConfigError, DeviceConfig, EdgeConfig, Kind, Vendor, parse_config
from edge.drivers import DecodeError, EspRfidDriver, ShellyDriver, TasmotaDriver, UnsupportedCommand, Zigbee2MqttDriver
from edge.drivers.zigbee2mqtt import bridge_details
from gateway.contract import Action, Command, Event, EventType, Reading

NOW = datetime(2026, 12, 6, 19, 0, tzinfo=UTC)


def dev(id: str, kind: Kind, vendor: Vendor, address: str, **kw: Any) -> DeviceConfig:
    return DeviceConfig.model_validate({"id": id, "kind": kind, "zone": "f3-z1", "vendor": vendor,
                                        "address": address, **kw})


def metrics(items: list[Reading | Event]) -> dict[str, dict[str, Any]]:
    return {i.device: dict(i.metrics) for i in items if isinstance(i, Reading)}


def command(device: str, action: Action) -> Command:
    return Command(id="c-1", device=device, action=action, issued_at=NOW, expires_at=NOW)


# ==================================================================================================
# Tasmota probes, STATUS answers, StateText, FullTopic
# ==================================================================================================

# Status 8 of a NodeMCU with two DS18B20, TempUnit F (https://github.com/GaryMilne/Hubitat-Tasmota/issues/11)
STATUS8_DS18B20_F = b'{"StatusSNS":{"Time":"2025-03-03T20:47:51","DS18B20-1":{"Id":"0301A279D4D4","Temperature":44.3},"DS18B20-2":{"Id":"0301A279EA92","Temperature":2.4},"TempUnit":"F"}}'
# tele/Wetterstation2023/SENSOR and STATE (https://github.com/home-assistant/core/issues/98699)
SENSOR_DS18B20_BME280 = b'{"Time":"2023-08-20T11:09:47","DS18B20":{"Id":"3CE10457A8F9","Temperature":27.9},"BME280":{"Temperature":27.8,"Humidity":54.5,"DewPoint":17.8,"Pressure":1018.0},"BH1750":{"Illuminance":171},"PressureUnit":"hPa","TempUnit":"C"}'
STATE_WETTERSTATION = b'{"Time":"2023-08-20T11:09:47","Uptime":"0T00:20:10","UptimeSec":1210,"Heap":19,"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"POWER":"ON","Wifi":{"AP":1,"SSId":"WLS1924","BSSId":"7C:FF:4D:18:FB:54","Channel":11,"Mode":"11n","RSSI":28,"Signal":-86,"LinkCount":1,"Downtime":"0T00:00:04"}}'
# tele/sonoff-test/SENSOR, SI7021 (DHT22 on AM2301 driver) and BME280 (https://github.com/ioBroker/ioBroker.sonoff/issues/15)
SENSOR_SI7021_BME280 = b'{"Time":"2018-01-04T06:55:26","SI7021":{"Temperature":7.5,"Humidity":81.5},"BME280":{"Temperature":8.2,"Humidity":76.7,"Pressure":993.2},"TempUnit":"C"}'
# Same issue, the German build: keys are translated ("Temperatur"). Malformed for us.
SENSOR_GERMAN = b'{"Zeit":"2018.01.03 19:28:30","DS18B20":{"Temperatur":21.4},"BME280":{"Temperatur":23.1,"Feuchtigkeit":37.0,"Druck":990.1},"TempUnit":"C"}'
# tele/tasmota_794BE8/SENSOR, two DS18B20 by Id and a BMP280 (https://github.com/ioBroker/ioBroker.sonoff/issues/351)
SENSOR_TWO_DS18B20 = b'{"Time":"2024-02-25T11:27:00","DS18B20-1":{"Id":"3C01D0756611","Temperature":21.125},"DS18B20-2":{"Id":"3C01E076647F","Temperature":20.438},"BMP280":{"Temperature":28.520,"Pressure":753.3},"Shutter1":{"Position":50,"Direction":0,"Target":50,"Tilt":0},"TERMOSENSORS":{"TOP":21.125,"BOTTOM":20.438},"PressureUnit":"mmHg","TempUnit":"C"}'
# A TH10 whose AM2301 plug is loose: null values (https://github.com/arendst/Tasmota/issues/4637). Malformed.
SENSOR_AM2301_NULL = b'{"Time":"2018-12-19T09:22:43","AM2301":{"Temperature":null,"Humidity":null},"TempUnit":"C"}'
# The same with a DewPoint, tele/tasmota_510196/SENSOR (https://github.com/arendst/Tasmota/issues/8295). Malformed.
SENSOR_AM2301_NULL_DEWPOINT = b'{"Time":"2020-04-27T19:35:16","AM2301":{"Temperature":null,"Humidity":null,"DewPoint":0.0},"TempUnit":"C"}'
# StateText1 0 / StateText2 1 (https://github.com/jneilliii/OctoPrint-TasmotaMQTT/issues/36)
STATE_TEXT_TELE = b'{"Time":"2020-05-06T08:36:05","Uptime":"33T17:09:29","Vcc":3.174,"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"POWER1":"0"}'
STATE_TEXT_RESULT = b'{"POWER1":"1"}'
STATE_TEXT_POWER1 = b"0"
# The StatusSTS object of Status 11 with StateText 1 (https://github.com/jneilliii/OctoPrint-Tasmota/issues/150)
STATUS11_STATE_TEXT = b'{"StatusSTS":{"Time":"2021-05-01T21:56:39","Uptime":"0T01:11:00","UptimeSec":4260,"Heap":21,"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"POWER1":"1","Wifi":{"AP":1,"SSId":"xnetwork","BSSId":"D8:47:32:3C:FF:C5","Channel":11,"RSSI":92,"Signal":-54,"LinkCount":1,"Downtime":"0T00:00:03"}}}'
# StatusSNS with a three-phase ENERGY (https://github.com/evcc-io/evcc/issues/18879)
STATUS10_ENERGY = json.dumps({"StatusSNS": {"Time": "2025-02-16T21:28:28", "ENERGY": {
    "TotalStartTime": "2024-08-14T20:17:44", "Total": 0, "Yesterday": 0, "Today": 0, "Power": [1, 0, 0],
    "ApparentPower": [5, 0, 0], "ReactivePower": [5, 0, 0], "Factor": [0.16, 0, 0], "Frequency": [50, 50, 50],
    "Voltage": [230, 230, 230], "Current": [0.022, 0, 0]}}}).encode()
# FullTopic %topic%/%prefix%/: Sonoff213/stat/POWER1 = OFF and RESULT (https://github.com/arendst/Tasmota/issues/6947)
CUSTOM_RESULT = b'{"POWER1":"OFF"}'
# A power state that is blank, then "POWER" (https://github.com/arendst/Tasmota/issues/530). Malformed.
POWER_BLANK = b""
POWER_WORD = b"POWER"


@pytest.fixture
def probes() -> TasmotaDriver:
    return TasmotaDriver([
        dev("temp-fridge", Kind.TEMP_SENSOR, Vendor.TASMOTA, "nodemcu", sensor="DS18B20-1"),
        dev("temp-freezer", Kind.TEMP_SENSOR, Vendor.TASMOTA, "nodemcu", sensor="0301A279EA92"),
        dev("temp-ws-ds", Kind.TEMP_SENSOR, Vendor.TASMOTA, "Wetterstation2023", sensor="3CE10457A8F9"),
        dev("temp-ws-bme", Kind.TEMP_SENSOR, Vendor.TASMOTA, "Wetterstation2023", sensor="BME280"),
        dev("temp-si", Kind.TEMP_SENSOR, Vendor.TASMOTA, "sonoff-test", sensor="SI7021"),
        dev("temp-de", Kind.TEMP_SENSOR, Vendor.TASMOTA, "sonoff-nodemcu", sensor="DS18B20"),
        dev("temp-top", Kind.MR_PROBE, Vendor.TASMOTA, "tasmota_794BE8", sensor="3C01D0756611"),
        dev("temp-bottom", Kind.MR_PROBE, Vendor.TASMOTA, "tasmota_794BE8", sensor="DS18B20-2"),
        dev("temp-th10", Kind.TEMP_SENSOR, Vendor.TASMOTA, "th10", sensor="AM2301"),
    ])


def test_status8_with_two_ds18b20_in_fahrenheit_makes_two_devices_in_celsius(probes: TasmotaDriver) -> None:
    got = metrics(probes.decode("stat/nodemcu/STATUS8", STATUS8_DS18B20_F, NOW))
    assert got == {"temp-fridge": {"temperature_c": 6.83}, "temp-freezer": {"temperature_c": -16.44}}


def test_one_sensor_message_feeds_each_probe_by_name_or_id(probes: TasmotaDriver) -> None:
    got = metrics(probes.decode("tele/Wetterstation2023/SENSOR", SENSOR_DS18B20_BME280, NOW))
    assert got == {"temp-ws-ds": {"temperature_c": 27.9}, "temp-ws-bme": {"temperature_c": 27.8, "humidity_pct": 54.5}}
    assert metrics(probes.decode("tele/sonoff-test/SENSOR", SENSOR_SI7021_BME280, NOW)) == {
        "temp-si": {"temperature_c": 7.5, "humidity_pct": 81.5}}
    assert metrics(probes.decode("tele/tasmota_794BE8/SENSOR", SENSOR_TWO_DS18B20, NOW)) == {
        "temp-top": {"temperature_c": 21.125}, "temp-bottom": {"temperature_c": 20.438}}


def test_a_probe_has_no_relay_but_its_wifi_signal_is_kept(probes: TasmotaDriver) -> None:
    got = metrics(probes.decode("tele/Wetterstation2023/STATE", STATE_WETTERSTATION, NOW))
    assert got == {"temp-ws-ds": {"rssi_dbm": -86}, "temp-ws-bme": {"rssi_dbm": -86}}


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("tele/sonoff-nodemcu/SENSOR", SENSOR_GERMAN, "DS18B20 has no Temperature (a localised firmware build?"),
    ("tele/th10/SENSOR", SENSOR_AM2301_NULL, "AM2301.Temperature is null: the probe was not read"),
    ("tele/th10/SENSOR", SENSOR_AM2301_NULL_DEWPOINT, "AM2301.Temperature is null: the probe was not read"),
])
def test_unreadable_probe_payloads_are_clear_decode_errors(probes: TasmotaDriver, topic: str, payload: bytes,
                                                           reason: str) -> None:
    with pytest.raises(DecodeError) as error:
        probes.decode(topic, payload, NOW)
    assert error.value.reason.startswith(reason)


def test_a_probe_needs_its_sensor_name() -> None:
    with pytest.raises(ValueError, match="needs sensor"):
        dev("t", Kind.TEMP_SENSOR, Vendor.TASMOTA, "th10")


def test_state_text_0_1_is_read_back_as_relay_state() -> None:
    driver = TasmotaDriver([dev("printer", Kind.SMART_PLUG, Vendor.TASMOTA, "printer", channel=1, rated_a=10,
                                state_text=["0", "1"])])
    assert metrics(driver.decode("tele/printer/STATE", STATE_TEXT_TELE, NOW)) == {"printer": {"relay_on": False}}
    assert metrics(driver.decode("stat/printer/RESULT", STATE_TEXT_RESULT, NOW)) == {"printer": {"relay_on": True}}
    assert metrics(driver.decode("stat/printer/POWER1", STATE_TEXT_POWER1, NOW)) == {"printer": {"relay_on": False}}
    anet = TasmotaDriver([dev("anet", Kind.SMART_PLUG, Vendor.TASMOTA, "Anet-E10-Power", channel=1, rated_a=10,
                              state_text=["0", "1"])])
    assert metrics(anet.decode("stat/Anet-E10-Power/STATUS11", STATUS11_STATE_TEXT, NOW)) == {
        "anet": {"relay_on": True, "rssi_dbm": -54}}


@pytest.mark.parametrize("payload", [POWER_BLANK, POWER_WORD])
def test_a_power_word_that_is_not_the_state_text_is_refused_by_name(payload: bytes) -> None:
    driver = TasmotaDriver([dev("sonoff1", Kind.SMART_PLUG, Vendor.TASMOTA, "sonoff1", rated_a=10)])
    with pytest.raises(DecodeError, match=r"POWER is neither 'OFF' nor 'ON' \(StateText1/StateText2"):
        driver.decode("stat/sonoff1/POWER", payload, NOW)


def test_status10_energy_answer_is_read_like_a_sensor_message() -> None:
    driver = TasmotaDriver([dev("meter", Kind.STRIP_METER, Vendor.TASMOTA, "evcc", rated_a=16)])
    got = metrics(driver.decode("stat/evcc/STATUS10", STATUS10_ENERGY, NOW))
    assert got == {"meter": {"power_w": 1, "current_a": 0.022, "voltage_v": 230, "energy_wh": 0}}
    with pytest.raises(DecodeError, match="STATUS8 answer without a StatusSNS object"):
        driver.decode("stat/evcc/STATUS8", STATE_TEXT_RESULT, NOW)


def test_full_topic_topic_prefix_and_custom_layouts() -> None:
    # %topic%/%prefix%/ as in https://github.com/arendst/Tasmota/issues/6947 and fhem/%topic%/%prefix%/ as
    # in https://github.com/arendst/Tasmota/issues/23992 (fhem/H3_Garage_Temp/stat/STATUS).
    driver = TasmotaDriver([
        dev("sonoff213-1", Kind.SMART_PLUG, Vendor.TASMOTA, "Sonoff213", channel=1, rated_a=10,
            full_topic="%topic%/%prefix%/"),
        dev("garage", Kind.TEMP_SENSOR, Vendor.TASMOTA, "H3_Garage_Temp", sensor="BME280",
            full_topic="fhem/%topic%/%prefix%/"),
        dev("plain", Kind.SMART_PLUG, Vendor.TASMOTA, "plain", rated_a=10),
    ])
    assert metrics(driver.decode("Sonoff213/stat/POWER1", b"OFF", NOW)) == {"sonoff213-1": {"relay_on": False}}
    assert metrics(driver.decode("Sonoff213/stat/RESULT", CUSTOM_RESULT, NOW)) == {"sonoff213-1": {"relay_on": False}}
    assert driver.decode("fhem/H3_Garage_Temp/stat/STATUS", b'{"Status":{"Module":0}}', NOW) == []
    assert driver.decode("stat/Sonoff213/POWER1", b"OFF", NOW) == []  # not its layout
    assert "Sonoff213/stat/+" in driver.topic_filters() and "fhem/H3_Garage_Temp/tele/SENSOR" in driver.topic_filters()
    assert "tele/plain/SENSOR" in driver.topic_filters()
    assert driver.encode(command("sonoff213-1", Action.RELAY_OFF)) == ("Sonoff213/cmnd/POWER1", b"OFF")
    assert driver.devices_at("fhem/H3_Garage_Temp/tele/SENSOR") == ["garage"]


def test_custom_prefixes_and_the_edge_wide_dialect_block() -> None:
    config = parse_config("""
site: hq
edge: edge-f3
dialects:
  tasmota: {full_topic: "%topic%/%prefix%/", prefixes: {cmnd: c, stat: s, tele: t}, state_text: ["0", "1"]}
  zigbee2mqtt: {base_topic: zigbee-f3}
devices:
  - {id: printer, kind: smart_plug, zone: f3-z1, vendor: tasmota, address: printer, channel: 1, rated_a: 10}
  - {id: smoke-1, kind: smoke_detector, zone: f3-z1, vendor: zigbee2mqtt, address: smoke-1}
  - {id: smoke-2, kind: smoke_detector, zone: f3-z1, vendor: zigbee2mqtt, address: smoke-1, base_topic: zigbee-f4}
""", "edge.yaml")
    driver = TasmotaDriver(config.devices)
    assert metrics(driver.decode("printer/s/RESULT", STATE_TEXT_RESULT, NOW)) == {"printer": {"relay_on": True}}
    assert driver.encode(command("printer", Action.RELAY_ON)) == ("printer/c/POWER1", b"ON")
    z2m = Zigbee2MqttDriver(config.devices)
    assert {"zigbee-f3/smoke-1", "zigbee-f4/smoke-1", "zigbee-f3/bridge/state", "zigbee-f4/bridge/state"} <= set(
        z2m.topic_filters())


@pytest.mark.parametrize(("line", "message"), [
    ('full_topic: "%prefix%/%topic%"', "must end with '/'"),
    ('full_topic: "%prefix%/%hostname%/"', "needs %topic% exactly once"),
    ('full_topic: "%prefix%/%topic%/%id%/"', "level '%id%' is not supported"),
    ('state_text: ["ON", "ON"]', "the off and on words must differ"),
])
def test_bad_dialect_settings_name_file_line_and_field(line: str, message: str) -> None:
    text = f"""site: hq
edge: edge-f3
devices:
  - id: p
    kind: smart_plug
    zone: z
    vendor: tasmota
    address: p
    rated_a: 10
    {line}
"""
    with pytest.raises(ConfigError) as error:
        parse_config(text, "edge.yaml")
    assert any(p.startswith("edge.yaml:4: devices[0]:") and message in p for p in error.value.problems), error.value.problems


# ==================================================================================================
# Shelly Gen1, Gen2 prefixes with "/", NotifyFullStatus
# ==================================================================================================

# Shelly Plus H&T NotifyFullStatus after waking up (https://github.com/enesbcs/Shelly_MQTT/pull/99)
PLUS_HT_FULL = b'{"src":"shellyplusht-c049ef8bc088","dst":"shellyplusht-c049ef8bc088/events","method":"NotifyFullStatus","params":{"ts":1669541352.21,"ble":{},"cloud":{"connected":false},"devicepower:0":{"id": 0,"battery":{"V":0.43, "percent":0},"external":{"present":true}},"ht_ui":{},"humidity:0":{"id": 0,"rh":57.6},"mqtt":{"connected":true},"sys":{"mac":"C049EF8BC088","restart_required":false,"time":null,"unixtime":null,"uptime":0,"ram_size":235712,"ram_free":166028,"fs_size":458752,"fs_free":167936,"cfg_rev":14,"kvs_rev":0,"webhook_rev":0,"available_updates":{},"wakeup_reason":{"boot":"deepsleep_wake","cause":"status_update"},"wakeup_period":600},"temperature:0":{"id": 0,"tC":19.0, "tF":66.2},"wifi":{"sta_ip":"192.168.1.43","status":"got ip","ssid":"MyWifi","rssi":-60},"ws":{"connected":false}}}'
# Plus 2PM NotifyStatus with only the energy counter, topic prefix shellyplus2pm-Einfahrt
# (https://github.com/iobroker-community-adapters/ioBroker.shelly/issues/813)
PLUS2PM_NOTIFY = b'{"src":"shellyplus2pm-3ce90e2f7c34","dst":"shellyplus2pm-Einfahrt/events","method":"NotifyStatus","params":{"ts":1698999960.13,"switch:0":{"id":0,"aenergy":{"by_minute":[0.000,0.000,0.000],"minute_ts":1698999959,"total":123.585}}}}'
# Gen1 Shelly 3EM relay state (https://github.com/enesbcs/Shelly_MQTT/pull/64): shellies/shellyem3-68C63AFAF952/relay/0 off
GEN1_RELAY_OFF = b"off"
# Gen1 announce of a Plug S (https://github.com/bieniu/ha-shellies-discovery/issues/271)
GEN1_ANNOUNCE = b'{"id": "shellyplug-s-######", "mac": "#########", "ip": "192.168.43.67", "new_fw": false, "fw_ver": "20190516-073020/master@######"}'


def test_notify_full_status_of_a_plus_ht_is_a_temperature_reading() -> None:
    driver = ShellyDriver([dev("ht-1", Kind.TEMP_SENSOR, Vendor.SHELLY, "shellyplusht-c049ef8bc088")])
    got = metrics(driver.decode("shellyplusht-c049ef8bc088/events/rpc", PLUS_HT_FULL, NOW))
    assert got == {"ht-1": {"temperature_c": 19.0, "humidity_pct": 57.6, "battery_pct": 0}}


def test_a_gen2_topic_prefix_may_contain_slashes() -> None:
    # The Shelly_MQTT thread above sets the prefix "shellies/<id>"; the payload is the Plus 2PM's.
    driver = ShellyDriver([dev("plug-1", Kind.SMART_PLUG, Vendor.SHELLY, "shellies/shellyplus2pm-Einfahrt", rated_a=10),
                           dev("plug-2", Kind.SMART_PLUG, Vendor.SHELLY, "shellies", rated_a=10)])
    got = metrics(driver.decode("shellies/shellyplus2pm-Einfahrt/events/rpc", PLUS2PM_NOTIFY, NOW))
    assert got == {"plug-1": {"energy_wh": 123.585}}
    assert driver.devices_at("shellies/shellyplus2pm-Einfahrt/online") == ["plug-1"]
    assert driver.devices_at("shellies/online") == ["plug-2"]


def test_gen1_relay_power_energy_online_and_command() -> None:
    driver = ShellyDriver([dev("em3", Kind.STRIP_METER, Vendor.SHELLY, "shellyem3-68C63AFAF952", gen=1, rated_a=16),
                           dev("plug-s", Kind.SMART_PLUG, Vendor.SHELLY, "shellyplug-s-040BAD", gen=1, rated_a=10,
                               cuttable=True)])
    assert metrics(driver.decode("shellies/shellyem3-68C63AFAF952/relay/0", GEN1_RELAY_OFF, NOW)) == {
        "em3": {"relay_on": False, "device_fault": False}}
    # Topic and unit from https://shelly-api-docs.shelly.cloud/gen1/#shelly-plug-plugs-mqtt ("energy counter
    # in Watt-minute"); the numbers are constructed to check the conversion.
    assert metrics(driver.decode("shellies/shellyplug-s-040BAD/relay/0/energy", b"6000", NOW)) == {
        "plug-s": {"energy_wh": 100.0}}
    assert metrics(driver.decode("shellies/shellyplug-s-040BAD/relay/0/power", b"182.4", NOW)) == {
        "plug-s": {"power_w": 182.4}}
    assert metrics(driver.decode("shellies/shellyplug-s-040BAD/relay/0", b"overpower", NOW)) == {
        "plug-s": {"relay_on": False, "device_fault": True}}
    # availability_topic shellies/shelly1-XXXXXX/online, 'true'/'false' (https://pastebin.com/zWaNqRer)
    [online] = driver.decode("shellies/shellyplug-s-040BAD/online", b"true", NOW)
    assert isinstance(online, Event) and online.type is EventType.DEVICE_ONLINE
    assert driver.encode(command("plug-s", Action.RELAY_OFF)) == ("shellies/shellyplug-s-040BAD/relay/0/command", b"off")
    with pytest.raises(DecodeError, match="relay/0 is neither on, off nor overpower"):
        driver.decode("shellies/shellyplug-s-040BAD/relay/0", b"1", NOW)
    with pytest.raises(DecodeError, match="relay/0/power is not a number"):
        driver.decode("shellies/shellyplug-s-040BAD/relay/0/power", b"n/a", NOW)


def test_gen1_announce_reports_an_unconfigured_device() -> None:
    driver = ShellyDriver([dev("plug-s", Kind.SMART_PLUG, Vendor.SHELLY, "shellyplug-s-040BAD", gen=1, rated_a=10)])
    driver.discover = True
    assert {"shellies/announce", "shellies/+/online"} <= set(driver.topic_filters())
    assert driver.announced("shellies/announce", GEN1_ANNOUNCE) == "shellyplug-s-######"
    assert driver.announced("shellies/announce", b'{"id": "shellyplug-s-040BAD"}') is None  # ours
    assert driver.announced("shellies/shellyht-AAAA/online", b"true") == "shellyht-AAAA"


# ==================================================================================================
# Zigbee2MQTT bridge/state
# ==================================================================================================

# Legacy text: "offline" (https://github.com/Koenkk/zigbee2mqtt/issues/1882)
BRIDGE_OFFLINE_TEXT = b"offline"
# JSON since 1.28: {"state":"online"} (https://github.com/Dirnei/node-red-contrib-zigbee2mqtt-devices/issues/126)
BRIDGE_ONLINE_JSON = b'{"state":"online"}'
# {"state": "offline"} (https://github.com/Koenkk/zigbee2mqtt/issues/26706)
BRIDGE_OFFLINE_JSON = b'{ "state": "offline" }'


def test_an_unconfigured_zigbee_device_with_a_two_level_name_is_heard_announcing_itself() -> None:
    """Friendly names such as `living/new leak` are common; such a stranger is reported like a one-level one."""
    driver = Zigbee2MqttDriver([dev("smoke-1", Kind.SMOKE_DETECTOR, Vendor.ZIGBEE2MQTT, "f3/smoke-1"),
                                dev("smoke-2", Kind.SMOKE_DETECTOR, Vendor.ZIGBEE2MQTT, "a/b/smoke-2")])
    driver.discover = True
    assert driver.discovery_filters() == ["zigbee2mqtt/#"]  # every depth, on the discovery session
    assert "zigbee2mqtt/a/b/smoke-2" in driver.topic_filters()  # the configured ones on the floor session
    online = b'{"state":"online"}'
    assert driver.announced("zigbee2mqtt/living/new leak/availability", online) == "living/new leak"
    assert driver.announced("zigbee2mqtt/new-leak/availability", b"online") == "new-leak"
    assert driver.announced("zigbee2mqtt/f3/smoke-1/availability", online) is None  # configured
    assert driver.announced("zigbee2mqtt/bridge/x/availability", online) is None
    assert [e.type for e in driver.decode("zigbee2mqtt/f3/smoke-1/availability", b'{"state":"offline"}', NOW)
            if isinstance(e, Event)] == [EventType.DEVICE_OFFLINE]


def test_bridge_state_names_every_device_behind_that_bridge_once() -> None:
    driver = Zigbee2MqttDriver([
        dev("smoke-1", Kind.SMOKE_DETECTOR, Vendor.ZIGBEE2MQTT, "smoke-1"),
        dev("smoke-2", Kind.SMOKE_DETECTOR, Vendor.ZIGBEE2MQTT, "smoke-2"),
        dev("smoke-3", Kind.SMOKE_DETECTOR, Vendor.ZIGBEE2MQTT, "smoke-3", base_topic="zigbee-f4"),
    ])
    # The retained state at start-up is reported once: the server may still hold the bridge offline.
    start = driver.decode("zigbee2mqtt/bridge/state", BRIDGE_ONLINE_JSON, NOW)
    assert [(e.device, e.type, e.count, json.loads(e.detail or "")) for e in start if isinstance(e, Event)] == [
        ("smoke-1", EventType.BRIDGE_ONLINE, 2, {"bridge": "zigbee2mqtt", "devices": ["smoke-1", "smoke-2"]})]
    assert driver.decode("zigbee2mqtt/bridge/state", BRIDGE_ONLINE_JSON, NOW) == []  # a repeat
    down = driver.decode("zigbee2mqtt/bridge/state", BRIDGE_OFFLINE_JSON, NOW)
    assert [(e.device, e.type, e.count, json.loads(e.detail or "")) for e in down if isinstance(e, Event)] == [
        ("smoke-1", EventType.BRIDGE_OFFLINE, 2, {"bridge": "zigbee2mqtt", "devices": ["smoke-1", "smoke-2"]})]
    assert driver.decode("zigbee2mqtt/bridge/state", BRIDGE_OFFLINE_TEXT, NOW) == []  # a repeat
    up = driver.decode("zigbee2mqtt/bridge/state", b"online", NOW)
    assert [e.type for e in up if isinstance(e, Event)] == [EventType.BRIDGE_ONLINE]
    first = driver.decode("zigbee-f4/bridge/state", BRIDGE_OFFLINE_TEXT, NOW)  # offline first thing: reported
    assert [(e.device, e.detail) for e in first if isinstance(e, Event)] == [
        ("smoke-3", '{"bridge": "zigbee-f4", "devices": ["smoke-3"]}')]
    with pytest.raises(DecodeError, match="bridge/state is neither online nor offline"):
        driver.decode("zigbee2mqtt/bridge/state", b'{"state":"starting"}', NOW)


def test_a_long_device_list_is_split_over_events_that_each_fit() -> None:
    ids = [f"smoke-detector-floor-3-zone-{n:03d}" for n in range(40)]
    chunks = bridge_details("zigbee2mqtt", ids)
    assert [d for chunk, _ in chunks for d in chunk] == ids and len(chunks) > 1
    assert all(len(detail) <= 500 and json.loads(detail)["devices"] == chunk for chunk, detail in chunks)


def test_edge_config_keeps_devices_of_two_bridges_with_the_same_name_apart() -> None:
    config = EdgeConfig.model_validate({"site": "hq", "edge": "e", "devices": [
        {"id": "a", "kind": "smoke_detector", "zone": "z", "vendor": "zigbee2mqtt", "address": "s"},
        {"id": "b", "kind": "smoke_detector", "zone": "z", "vendor": "zigbee2mqtt", "address": "s",
         "base_topic": "zigbee-f4"}]})
    assert [d.id for d in config.devices] == ["a", "b"]


# ==================================================================================================
# RFID readers as door controllers: Tasmota RDM6300 / PN532, esp-rfid
# ==================================================================================================

# tele/sonoff/SENSOR of a PN532 (https://github.com/arendst/Tasmota/pull/4860)
PN532_READ = b'{"Time":"2019-01-08T19:16:10","PN532":{"UID":"94D8FC5F", "DATA":"94D8FC5F"}}'
# tele/wemos9/SENSOR of an RDM6300, a card then a ghost read of a clone (https://github.com/arendst/Tasmota/issues/9522)
RDM6300_READ = b'{"Time":"2020-10-16T16:12:47","RDM6300":{"UID":"7DDFFDDF"}}'
RDM6300_GHOST = b'{"Time":"2020-10-16T16:16:42","RDM6300":{"UID":"00000000"}}'
# esp-rfid access message (https://github.com/esprfid/esp-rfid/issues/173), published on <topic>/send by
# 1.x (topic rfid/send in https://github.com/esprfid/esp-rfid/issues/407)
ESP_RFID_ACCESS = b'{"type":"access","time":1540290526,"isKnown":"true","access":"Always","username":"Marlon","uid":"f9c2f720"}'
# esp-rfid heartbeat, every "heartbeat interval" on <topic>/send: 1.x `mqtt_publish_heartbeat` (src/mqtt.esp:
# type, time, uptime, ip, hostname); 0.8 sent type and time only
ESP_RFID_HEARTBEAT = b'{"type":"heartbeat","time":1733570000,"uptime":3600,"ip":"10.0.0.21","hostname":"esp-rfid"}'
ESP_RFID_HEARTBEAT_08 = b'{"type":"heartbeat","time":1540290526}'
# Old builds spell the type "hearthbeat" (sic) and send it every 1800 s; the rest as above
ESP_RFID_HEARTHBEAT = ESP_RFID_HEARTBEAT.replace(b'"heartbeat"', b'"hearthbeat"')
# The exit button and a remote `opendoor` (src/main.cpp, src/mqtt.esp: mqtt_publish_access(now(), "true",
# "Always", "Button" / "MQTT", " ")), as 1.x publishes them on <topic>/send
ESP_RFID_BUTTON = b'{"type":"access","time":1733570100,"isKnown":"true","access":"Always","username":"Button","uid":" ","door":"esp-rfid"}'
ESP_RFID_REMOTE = ESP_RFID_BUTTON.replace(b'"Button"', b'"MQTT"')


def test_tasmota_rfid_readers_report_cards_and_refuse_ghost_reads() -> None:
    driver = TasmotaDriver([
        dev("door-pn532", Kind.DOOR_CONTROLLER, Vendor.TASMOTA, "sonoff", sensor="PN532"),
        dev("door-rdm", Kind.DOOR_CONTROLLER, Vendor.TASMOTA, "wemos9", sensor="RDM6300"),
    ])
    [read] = driver.decode("tele/sonoff/SENSOR", PN532_READ, NOW)
    assert isinstance(read, Event) and (read.type, read.badge) == (EventType.ACCESS_GRANTED, "94D8FC5F")
    assert read.detail == "card read by a Tasmota PN532 reader (the reader does not check it)"
    [card] = driver.decode("tele/wemos9/SENSOR", RDM6300_READ, NOW)
    assert isinstance(card, Event) and card.badge == "7DDFFDDF"
    with pytest.raises(DecodeError, match=r"RDM6300\.UID is all zeros: a ghost read") as error:
        driver.decode("tele/wemos9/SENSOR", RDM6300_GHOST, NOW)
    assert "00000000" not in error.value.reason  # never a card number in a reason (it may be logged)
    assert driver.decode("tele/wemos9/STATE", STATE_WETTERSTATION, NOW) == [
        Reading(device="door-rdm", ts=NOW, metrics={"rssi_dbm": -86})]  # no relay state for a reader
    with pytest.raises(UnsupportedCommand):
        driver.encode(command("door-rdm", Action.DOOR_RELEASE))
    with pytest.raises(ValueError, match="sensor must be one of RDM6300, PN532, Wiegand"):
        dev("door-x", Kind.DOOR_CONTROLLER, Vendor.TASMOTA, "x", sensor="MFRC522")


def test_esp_rfid_access_messages_are_granted_or_denied_by_the_controller() -> None:
    driver = EspRfidDriver([dev("door-hack", Kind.DOOR_CONTROLLER, Vendor.ESP_RFID, "rfid")])
    assert driver.topic_filters() == ["rfid", "rfid/send", "rfid/tag"]
    [granted] = driver.decode("rfid/send", ESP_RFID_ACCESS, NOW)
    assert isinstance(granted, Event) and (granted.type, granted.badge) == (EventType.ACCESS_GRANTED, "f9c2f720")
    [old] = driver.decode("rfid", ESP_RFID_ACCESS, NOW)  # 0.8 published on the topic itself
    assert isinstance(old, Event) and old.type is EventType.ACCESS_GRANTED
    # Constructed from the sample: the same message for a card that is not known (the controller's denial).
    denied_payload = ESP_RFID_ACCESS.replace(b'"isKnown":"true"', b'"isKnown":"false"')
    [denied] = driver.decode("rfid/send", denied_payload, NOW)
    assert isinstance(denied, Event) and denied.type is EventType.ACCESS_DENIED
    with pytest.raises(DecodeError, match="uid must be a string"):
        driver.decode("rfid/send", b'{"type":"access","isKnown":"true","access":"Always"}', NOW)
    for odd in (b'{"type": []}', b'{"type": {"a": 1}}', b'{"type": 7}'):  # no type: nothing, never a crash
        assert driver.decode("rfid/send", odd, NOW) == []


def test_the_esp_rfid_exit_button_is_a_request_to_exit_not_a_card() -> None:
    driver = EspRfidDriver([dev("door-lobby", Kind.DOOR_CONTROLLER, Vendor.ESP_RFID, "rfid")])
    for payload, by in [(ESP_RFID_BUTTON, "Button"), (ESP_RFID_REMOTE, "MQTT")]:
        [opened] = driver.decode("rfid/send", payload, NOW)
        assert isinstance(opened, Event) and (opened.type, opened.badge) == (EventType.REQUEST_TO_EXIT, None)
        assert opened.detail == f"esp-rfid: opened by {by}"
    with pytest.raises(DecodeError, match="uid must be a string of 1 to 64 characters"):  # never a card " "
        driver.decode("rfid/send", ESP_RFID_BUTTON.replace(b'"isKnown":"true"', b'"isKnown":"false"'), NOW)


def test_esp_rfid_in_home_assistant_mode_reports_access_on_its_tag_topic() -> None:
    """With "Home Assistant" MQTT on, 1.x publishes access on <topic>/tag as {uid, username, access, time}
    (src/mqtt.esp mqtt_publish_access, the mqttHA branch): read like the /send message."""
    driver = EspRfidDriver([dev("door-lobby", Kind.DOOR_CONTROLLER, Vendor.ESP_RFID, "rfid")])
    assert "rfid/tag" in driver.topic_filters()
    known = b'{"uid":"f9c2f720","username":"Marlon","access":"Always","time":1733570200}'
    [granted] = driver.decode("rfid/tag", known, NOW)
    assert isinstance(granted, Event) and (granted.type, granted.badge) == (EventType.ACCESS_GRANTED, "f9c2f720")
    for access in (b"Denied", b"Expired", b"Disabled"):
        [refused] = driver.decode("rfid/tag", known.replace(b"Always", access), NOW)
        assert isinstance(refused, Event) and refused.type is EventType.ACCESS_DENIED
    [button] = driver.decode("rfid/tag", b'{"uid":" ","username":"Button","access":"Always","time":1733570201}', NOW)
    assert isinstance(button, Event) and button.type is EventType.REQUEST_TO_EXIT


def test_an_esp_rfid_heartbeat_goes_upstream_as_a_reading() -> None:
    """Its only periodic message: the server supervises an egress door by what reaches it (200 s), so the
    heartbeat must leave the edge, not only refresh the edge's own supervision."""
    driver = EspRfidDriver([dev("door-lobby", Kind.DOOR_CONTROLLER, Vendor.ESP_RFID, "rfid")])
    assert driver.decode("rfid/send", ESP_RFID_HEARTBEAT, NOW) == [
        Reading(device="door-lobby", ts=NOW, metrics={"uptime_s": 3600})]
    assert driver.decode("rfid", ESP_RFID_HEARTBEAT_08, NOW) == [
        Reading(device="door-lobby", ts=NOW, metrics={"heartbeat": True})]
    assert driver.decode("rfid/send", ESP_RFID_HEARTHBEAT, NOW) == [
        Reading(device="door-lobby", ts=NOW, metrics={"uptime_s": 3600})]
    with pytest.raises(UnsupportedCommand):
        driver.encode(command("door-hack", Action.DOOR_RELEASE))


def test_a_typo_in_the_dialects_block_is_reported_with_its_line() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config("site: hq\nedge: e\ndialects:\n  tasmota: {fulltopic: '%topic%/%prefix%/'}\n", "edge.yaml")
    assert error.value.problems == [
        "edge.yaml:4: dialects.tasmota.fulltopic: unknown key (typo?): remove it or check the spelling"]
    with pytest.raises(ConfigError) as error:
        parse_config("site: hq\nedge: e\ndevices:\n  - {id: s, kind: smoke_detector, zone: z, vendor: zigbee2mqtt,"
                     " address: s, state_text: ['0', '1']}\n", "edge.yaml")
    assert error.value.problems == [
        "edge.yaml:4: devices[0]: state_text applies to tasmota devices, not zigbee2mqtt"]


def test_a_decode_error_event_always_fits_the_contract() -> None:
    nasty = '"\\\x01' * 60  # quotes, backslashes and control bytes: every one escaped in JSON
    event = decode_error_event("edge-f3", nasty, nasty, nasty.encode() * 2, NOW, 7)
    assert event.type is EventType.DECODE_ERROR and event.count == 7
    assert len(event.detail or "") <= 500 and set(json.loads(event.detail or "")) == {"topic", "reason", "payload"}
    plain = json.loads(decode_error_event("d", "tele/x/SENSOR", "why", b"x" * 100, NOW, 0).detail or "")
    assert plain == {"topic": "tele/x/SENSOR", "reason": "why", "payload": "x" * 64}


# Sonoff THR316D: SI7021 with a DewPoint and a Time with milliseconds and offset; an SCD40 (CO2 sensor that
# also measures temperature) in the same thread (https://github.com/arendst/Tasmota/issues/4771)
SENSOR_SI7021_DEWPOINT = b'{"Time":"2024-02-21T21:16:55.911+01:00","SI7021":{"Temperature":20.40,"Humidity":54.90,"DewPoint":11.01},"TempUnit":"C"}'
SENSOR_SCD40 = b'{"Time":"2024-02-22T07:08:49","SCD40":{"CarbonDioxide":409,"eCO2":409,"Temperature":25.1,"Humidity":42.3,"DewPoint":11.4},"TempUnit":"C"}'


def test_any_sensor_with_a_temperature_is_a_probe_by_its_name() -> None:
    driver = TasmotaDriver([dev("thr316d", Kind.TEMP_SENSOR, Vendor.TASMOTA, "thr316d", sensor="SI7021"),
                            dev("scd40", Kind.TEMP_SENSOR, Vendor.TASMOTA, "co2", sensor="SCD40")])
    assert metrics(driver.decode("tele/thr316d/SENSOR", SENSOR_SI7021_DEWPOINT, NOW)) == {
        "thr316d": {"temperature_c": 20.40, "humidity_pct": 54.90}}
    assert metrics(driver.decode("tele/co2/SENSOR", SENSOR_SCD40, NOW)) == {
        "scd40": {"temperature_c": 25.1, "humidity_pct": 42.3}}


def test_an_unconfigured_zigbee_device_with_a_name_of_three_or_more_levels_is_heard_announcing_itself() -> None:
    """Zigbee2MQTT allows any number of `/` in a friendly name (floor3/zone1/plug-12): with discovery on, the
    edge hears every depth, on one discovery filter per bridge (a clean QoS 0 session of its own)."""
    driver = Zigbee2MqttDriver([dev("smoke-1", Kind.SMOKE_DETECTOR, Vendor.ZIGBEE2MQTT, "f3/smoke-1"),
                                dev("smoke-2", Kind.SMOKE_DETECTOR, Vendor.ZIGBEE2MQTT, "a/b/smoke-2"),
                                dev("smoke-3", Kind.SMOKE_DETECTOR, Vendor.ZIGBEE2MQTT, "s3", base_topic="z-f4")])
    driver.discover = True
    assert sorted(driver.discovery_filters()) == ["z-f4/#", "zigbee2mqtt/#"]
    online = b'{"state":"online"}'
    for name in ("floor3/zone1/plug-12", "b/floor3/zone1/leak 7", "f3/smoke-1/extra", "lab/availability/probe"):
        assert driver.announced(f"zigbee2mqtt/{name}/availability", online) == name
    assert driver.announced("z-f4/floor4/zone2/smoke-9/availability", b"online") == "floor4/zone2/smoke-9"
    assert driver.announced("zigbee2mqtt/a/b/smoke-2/availability", online) is None  # configured
    assert driver.announced("zigbee2mqtt/floor3/zone1/plug-12/availability", b'{"state":"offline"}') is None
    # Zigbee2MQTT's own suffixes and the bridge's topics are no announcement, whatever the depth.
    for topic in ("zigbee2mqtt/floor3/zone1/plug-12/set", "zigbee2mqtt/floor3/zone1/plug-12/get",
                  "zigbee2mqtt/floor3/zone1/plug-12/set/state", "zigbee2mqtt/floor3/zone1/plug-12",
                  "zigbee2mqtt/bridge/state", "zigbee2mqtt/bridge/response/device/availability"):
        assert driver.announced(topic, b"online") is None, topic
    # The configured deep name still decodes (state and availability); its /set and /get are nobody's reading.
    assert [e.type for e in driver.decode("zigbee2mqtt/a/b/smoke-2/availability", b'{"state":"offline"}', NOW)
            if isinstance(e, Event)] == [EventType.DEVICE_OFFLINE]
    assert driver.decode("zigbee2mqtt/a/b/smoke-2/set", b'{"warning": {"mode": "stop"}}', NOW) == []
    assert driver.decode("zigbee2mqtt/a/b/smoke-2/get", b'{"state": ""}', NOW) == []
    assert driver.devices_at("zigbee2mqtt/a/b/smoke-2/availability") == ["smoke-2"]


@pytest.mark.parametrize(("address", "says"), [
    ("floor3/zone1/plug-12/availability", "without Zigbee2MQTT's /availability"),
    ("floor3/zone1/siren-1/set", "without Zigbee2MQTT's /set"),
    ("/floor3/smoke-1", "start or end with '/'"),
    ("floor3/smoke-1/", "start or end with '/'"),
    ("bridge/smoke-1", "bridge"),
])
def test_a_zigbee_address_zigbee2mqtt_would_not_publish_under_is_refused_with_what_to_write(
        address: str, says: str) -> None:
    text = ("site: hq\nedge: edge-f3\ndevices:\n"
            f"  - {{id: smoke-1, kind: smoke_detector, zone: z1, vendor: zigbee2mqtt, address: '{address}'}}\n")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "edge.yaml")
    assert "edge.yaml:4" in str(caught.value) and says in str(caught.value), str(caught.value)
    ok = parse_config(text.replace(address, "floor3/zone1/smoke-1"), "edge.yaml")
    assert ok.devices[0].address == "floor3/zone1/smoke-1"
