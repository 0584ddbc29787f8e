"""Drivers against payloads published by real firmware, copied from public documentation and issue
threads (the source is named beside each sample). None of these come from our simulators."""


from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from edge.config import DeviceConfig, Kind, Vendor
from edge.drivers import (
    DecodeError,
    GenericDriver,
    ShellyDriver,
    TasmotaDriver,
    UnsupportedCommand,
    Zigbee2MqttDriver,
)
from gateway.contract import Action, Command, Event, EventType, Reading

NOW = datetime(2026, 11, 29, 3, 0, 5, 120000, tzinfo=UTC)


def dev(id: str, kind: Kind, vendor: Vendor, address: str, **kw: object) -> DeviceConfig:
    return DeviceConfig.model_validate({"id": id, "kind": kind, "zone": "f3-z1", "vendor": vendor,
                                        "address": address, **kw})


def command(device: str, action: Action) -> Command:
    return Command(id="c-1", device=device, action=action, issued_at=NOW, expires_at=NOW)


def readings(items: list[Reading | Event]) -> list[Reading]:
    return [i for i in items if isinstance(i, Reading)]


def events(items: list[Reading | Event]) -> list[EventType]:
    return [i.type for i in items if isinstance(i, Event)]


# ==================================================================================================
# Shelly Gen2 / Gen3
# ==================================================================================================

# Shelly 1PM Mini Gen3, topic ShellyLichtGarten/status/switch:0 (ioBroker debug log)
# https://github.com/iobroker-community-adapters/ioBroker.shelly/issues/1592
SHELLY_GEN3_STATUS = (b'{"id":0,"source":"SHC","tag":null, "output":false, "apower":0.0, "voltage":238.3, '
                      b'"freq":50.0, "current":0.000, "aenergy":{"total":2690.730,"by_minute":[0.000,0.000,0.000],'
                      b'"minute_ts":1788945300}, "ret_aenergy":{"total":0.000,"by_minute":[0.000,0.000,0.000],'
                      b'"minute_ts":1788945300},"counts":{"on_time":241680,"on_time_rst_ts":0,"switch_on":192,'
                      b'"switch_on_rst_ts":0,"on_above_thr":0,"on_above_thr_rst_ts":0},'
                      b'"temperature":{"tC":56.1, "tF":132.9}}')
# Same issue, topic ShellyLichtGarten/events/rpc: a NotifyStatus that carries only counters.
SHELLY_GEN3_NOTIFY_COUNTS = (b'{"src":"shelly1pmminig3-e4b323133734","dst":"ShellyLichtGarten/events",'
                             b'"method":"NotifyStatus","params":{"ts":1788945300.02,"switch:0":{"counts":'
                             b'{"on_above_thr":0,"on_time":241680,"switch_on":192}}}}')
# Shelly Plus 1PM Mini, topic shelly1pmmini-Solarthermie/status/switch:0
# https://github.com/iobroker-community-adapters/ioBroker.shelly/issues/813
SHELLY_PLUS_STATUS = (b'{"id":0, "source":"MQTT", "output":true, "apower":3.8, "voltage":231.0, "freq":50.1, '
                      b'"current":0.030, "aenergy":{"total":26064.252,"by_minute":[198.422,0.000,0.000],'
                      b'"minute_ts":1698999933},"temperature":{"tC":42.0, "tF":107.6}}')
# NotifyEvent from a Plus 1PM (input push): no measurement in it.
# https://github.com/bieniu/ha-shellies-discovery-gen2/issues/14
SHELLY_NOTIFY_EVENT = (b'{"src": "shellyplus1pm-b22864", "dst": "shellyplus1pm-b22864/events", '
                       b'"method": "NotifyEvent", "params": {"ts": 1643540082.66, "events": [{"component": '
                       b'"input:0", "id": 0, "event": "single_push", "ts": 1643540082.66}]}}')
# Switch.Set over MQTT and the device's answer on <src>/rpc (ioBroker debug log, Shelly Plus 1)
# https://github.com/iobroker-community-adapters/ioBroker.shelly/issues/1055
SHELLY_SET_REQUEST = {"id": 3, "src": "iobroker", "method": "Switch.Set", "params": {"id": 0, "on": False}}
SHELLY_SET_ANSWER = b'{"id":3,"src":"shellyplus1-4855199bc0e8","dst":"iobroker","result":{"was_on":true}}'


@pytest.fixture
def shelly() -> ShellyDriver:
    return ShellyDriver([dev("plug-1", Kind.SMART_PLUG, Vendor.SHELLY, "ShellyLichtGarten", rated_a=10),
                         dev("plug-2", Kind.SMART_PLUG, Vendor.SHELLY, "shelly1pmmini-Solarthermie", rated_a=10)],
                        client_id="fw-edge-edge-f3")


def test_shelly_topics(shelly: ShellyDriver) -> None:
    assert "ShellyLichtGarten/status/switch:0" in shelly.topic_filters()
    assert "ShellyLichtGarten/events/rpc" in shelly.topic_filters()
    assert "ShellyLichtGarten/online" in shelly.topic_filters()
    assert "fw-edge-edge-f3/rpc" in shelly.topic_filters()


def test_shelly_gen3_switch_status(shelly: ShellyDriver) -> None:
    [r] = readings(shelly.decode("ShellyLichtGarten/status/switch:0", SHELLY_GEN3_STATUS, NOW))
    assert r.device == "plug-1" and r.ts == NOW
    assert r.metrics == {"relay_on": False, "power_w": 0.0, "voltage_v": 238.3, "current_a": 0.0,
                         "energy_wh": 2690.73, "device_temp_c": 56.1}


def test_shelly_plus_switch_status(shelly: ShellyDriver) -> None:
    [r] = readings(shelly.decode("shelly1pmmini-Solarthermie/status/switch:0", SHELLY_PLUS_STATUS, NOW))
    assert r.device == "plug-2"
    assert r.metrics["relay_on"] is True and r.metrics["power_w"] == 3.8 and r.metrics["current_a"] == 0.03
    assert r.metrics["energy_wh"] == 26064.252 and r.metrics["device_temp_c"] == 42.0


def test_shelly_notifications_without_measurements_give_nothing(shelly: ShellyDriver) -> None:
    assert shelly.decode("ShellyLichtGarten/events/rpc", SHELLY_GEN3_NOTIFY_COUNTS, NOW) == []
    assert shelly.decode("ShellyLichtGarten/events/rpc", SHELLY_NOTIFY_EVENT, NOW) == []


def test_shelly_notify_status_with_output(shelly: ShellyDriver) -> None:
    # The documented frame shape (https://shelly-api-docs.shelly.cloud/gen2/General/Notifications) with the
    # switch's changed fields, as the Plus 1PM above sends after Switch.Set.
    frame = {"src": "shelly1pmmini-Solarthermie", "dst": "shelly1pmmini-Solarthermie/events",
             "method": "NotifyStatus", "params": {"ts": 1698999933.1, "switch:0": {"id": 0, "output": False,
                                                                                  "source": "MQTT"}}}
    [r] = readings(shelly.decode("shelly1pmmini-Solarthermie/events/rpc", json.dumps(frame).encode(), NOW))
    assert r.metrics == {"relay_on": False}


def test_shelly_online_topic(shelly: ShellyDriver) -> None:
    # <prefix>/online carries true/false (HA availability config for Shelly: payload_available 'true',
    # payload_not_available 'false', https://pastebin.com/zWaNqRer)
    assert events(shelly.decode("ShellyLichtGarten/online", b"false", NOW)) == [EventType.DEVICE_OFFLINE]
    assert events(shelly.decode("ShellyLichtGarten/online", b"true", NOW)) == [EventType.DEVICE_ONLINE]
    with pytest.raises(DecodeError):
        shelly.decode("ShellyLichtGarten/online", b"maybe", NOW)


def test_shelly_rpc_answer_is_not_an_error(shelly: ShellyDriver) -> None:
    assert shelly.decode("fw-edge-edge-f3/rpc", SHELLY_SET_ANSWER, NOW) == []


def test_shelly_encode_matches_documented_request(shelly: ShellyDriver) -> None:
    topic, payload = shelly.encode(command("plug-1", Action.RELAY_OFF))
    body = json.loads(payload)
    assert topic == "ShellyLichtGarten/rpc"
    assert body["method"] == SHELLY_SET_REQUEST["method"] and body["params"] == SHELLY_SET_REQUEST["params"]
    assert body["src"] == "fw-edge-edge-f3" and isinstance(body["id"], int)
    assert json.loads(shelly.encode(command("plug-1", Action.RELAY_ON))[1])["params"]["on"] is True
    with pytest.raises(UnsupportedCommand):
        shelly.encode(command("plug-1", Action.SIREN_ON))


def test_shelly_garbage_is_a_decode_error(shelly: ShellyDriver) -> None:
    with pytest.raises(DecodeError) as error:
        shelly.decode("ShellyLichtGarten/status/switch:0", b"{not json", NOW)
    assert error.value.device == "plug-1"
    with pytest.raises(DecodeError):
        shelly.decode("ShellyLichtGarten/status/switch:0", b'{"apower": "lots"}', NOW)


# ==================================================================================================
# Tasmota
# ==================================================================================================

# Shelly 2.5 running Tasmota: two channels, per-channel arrays, one shared Voltage, consolidated Total
# https://github.com/arendst/Tasmota/issues/6160
TASMOTA_DUAL_SENSOR = (b'{"Time":"2019-09-14T16:24:49","Switch1":"OFF","Switch2":"OFF","ANALOG":{"Temperature":52.5},'
                       b'"ENERGY":{"TotalStartTime":"2019-04-13T18:21:03","Total":3.262,"Yesterday":0.000,'
                       b'"Today":0.005,"Period":1.34,"Power":[23.63,67.17],"ApparentPower":[23.63,67.17],'
                       b'"ReactivePower":[0.00,0.00],"Factor":[1.00,1.00],"Voltage":229.3,'
                       b'"Current":[0.103,0.293]},"TempUnit":"C"}')
# Three-channel meter with arrays for everything (Voltage too)
# https://github.com/arendst/Tasmota/issues/21357
TASMOTA_3CH_SENSOR = (b'{"Time":"2024-05-05T13:27:21","ENERGY":{"TotalStartTime":"2024-05-01T11:36:59",'
                      b'"Total":31.043,"Yesterday":7.154,"Today":3.322,"TodaySumImport":1.141,'
                      b'"TodaySumExport":0.001,"ExportActive":[0.000,0.000,0.000],"Power":[11,0,0],'
                      b'"ApparentPower":[181,0,0],"ReactivePower":[181,0,0],"Factor":[0.06,0.00,0.00],'
                      b'"Frequency":[50,49,53],"Voltage":[231,0,0],"Current":[0.785,0.013,0.013],'
                      b'"CurrentNeutral":0.008}}')
# Sonoff POW, single channel: tele/DVES_EA9716/SENSOR and .../STATE
# https://github.com/arendst/Tasmota/issues/2785
TASMOTA_POW_SENSOR = (b'{"Time":"2018-05-22T02:08:59","ENERGY":{"Total":0.052,"Yesterday":0.000,"Today":0.052,'
                      b'"Period":0,"Power":0,"Factor":0.00,"Voltage":198,"Current":0.000}}')
TASMOTA_POW_STATE = (b'{"Time":"2018-05-22T02:09:09","Uptime":"0T00:17:28","Vcc":3.486,"POWER":"OFF",'
                     b'"Wifi":{"AP":1,"SSId":"Ahmed","RSSI":88,"APMac":"00:15:6D:81:A6:82"}}')
# tele/tasmota_9CF9D1/STATE with Wifi.Signal in dBm (Tasmota console log)
# https://pastebin.com/4izDrY6W
TASMOTA_STATE_SIGNAL = (b'{"Time":"2024-02-24T22:20:38","Uptime":"0T00:10:11","UptimeSec":611,"Heap":24,'
                        b'"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"POWER":"OFF",'
                        b'"Wifi":{"AP":1,"SSId":"ESP-Network","BSSId":"E6:8D:8C:4B:BE:F7","Channel":3,"Mode":"11n",'
                        b'"RSSI":44,"Signal":-78,"LinkCount":1,"Downtime":"0T00:00:05"}}')
# Two-relay device state: POWER1/POWER2 (evcc issue, response of a Tasmota with two relays)
# https://github.com/evcc-io/evcc/issues/3367
TASMOTA_TWO_RELAYS = (b'{"Time":"2022-05-13T20:49:59","Uptime":"0T05:37:02","UptimeSec":20222,"Heap":24,'
                      b'"SleepMode":"Dynamic","Sleep":50,"LoadAvg":19,"MqttCount":1,"POWER1":"OFF","POWER2":"ON",'
                      b'"Wifi":{"AP":1,"SSId":"iotatbatchovski","BSSId":"D2:21:F9:17:BC:41","Channel":9,'
                      b'"Mode":"11n","RSSI":70,"Signal":-65,"LinkCount":1,"Downtime":"0T00:00:04"}}')
# stat/sonoff12/RESULT = {"POWER":"ON", "Dimmer":100, "Color":"FFFFFF"}
# https://github.com/arendst/Tasmota/issues/989
TASMOTA_RESULT = b'{"POWER":"ON", "Dimmer":100, "Color":"FFFFFF"}'


@pytest.fixture
def tasmota() -> TasmotaDriver:
    return TasmotaDriver([
        dev("strip-a", Kind.STRIP_METER, Vendor.TASMOTA, "shelly25", rated_a=10),
        dev("strip-a-o1", Kind.SMART_PLUG, Vendor.TASMOTA, "shelly25", channel=1, rated_a=10),
        dev("strip-a-o2", Kind.SMART_PLUG, Vendor.TASMOTA, "shelly25", channel=2, rated_a=10),
        dev("meter-3", Kind.STRIP_METER, Vendor.TASMOTA, "tasmota_5FF8B2"),
        dev("meter-3-o1", Kind.SMART_PLUG, Vendor.TASMOTA, "tasmota_5FF8B2", channel=1),
        dev("pow", Kind.SMART_PLUG, Vendor.TASMOTA, "DVES_EA9716", rated_a=10),
        dev("plug-sig", Kind.SMART_PLUG, Vendor.TASMOTA, "tasmota_9CF9D1"),
        dev("dual-o2", Kind.SMART_PLUG, Vendor.TASMOTA, "3d_drucker_0A59CD", channel=2),
        dev("light", Kind.SMART_PLUG, Vendor.TASMOTA, "sonoff12"),
        dev("kitchen-1", Kind.SMART_PLUG, Vendor.TASMOTA, "Kitchen", channel=1),
    ])


def by_device(items: list[Reading | Event]) -> dict[str, dict[str, object]]:
    return {r.device: dict(r.metrics) for r in readings(items)}


def test_tasmota_two_channel_arrays(tasmota: TasmotaDriver) -> None:
    got = by_device(tasmota.decode("tele/shelly25/SENSOR", TASMOTA_DUAL_SENSOR, NOW))
    assert got["strip-a-o1"] == {"power_w": 23.63, "current_a": 0.103, "voltage_v": 229.3, "power_factor": 1.0}
    assert got["strip-a-o2"] == {"power_w": 67.17, "current_a": 0.293, "voltage_v": 229.3, "power_factor": 1.0}
    whole = got["strip-a"]
    assert whole["power_w"] == pytest.approx(90.8) and whole["current_a"] == pytest.approx(0.396)
    assert whole["voltage_v"] == 229.3 and whole["energy_wh"] == 3262.0 and whole["device_temp_c"] == 52.5
    assert "power_factor" not in whole  # per-channel factors do not add up


def test_tasmota_three_channel_arrays(tasmota: TasmotaDriver) -> None:
    got = by_device(tasmota.decode("tele/tasmota_5FF8B2/SENSOR", TASMOTA_3CH_SENSOR, NOW))
    assert got["meter-3-o1"] == {"power_w": 11, "current_a": 0.785, "voltage_v": 231, "power_factor": 0.06}
    assert got["meter-3"]["current_a"] == pytest.approx(0.811) and got["meter-3"]["voltage_v"] == 231
    assert got["meter-3"]["energy_wh"] == 31043.0


def test_tasmota_single_channel_pow(tasmota: TasmotaDriver) -> None:
    got = by_device(tasmota.decode("tele/DVES_EA9716/SENSOR", TASMOTA_POW_SENSOR, NOW))
    assert got == {"pow": {"power_w": 0, "current_a": 0.0, "voltage_v": 198, "power_factor": 0.0, "energy_wh": 52.0}}
    assert by_device(tasmota.decode("tele/DVES_EA9716/STATE", TASMOTA_POW_STATE, NOW)) == {"pow": {"relay_on": False}}


def test_tasmota_state_signal_and_relays(tasmota: TasmotaDriver) -> None:
    assert by_device(tasmota.decode("tele/tasmota_9CF9D1/STATE", TASMOTA_STATE_SIGNAL, NOW)) == {
        "plug-sig": {"relay_on": False, "rssi_dbm": -78}}
    assert by_device(tasmota.decode("tele/3d_drucker_0A59CD/STATE", TASMOTA_TWO_RELAYS, NOW)) == {
        "dual-o2": {"relay_on": True, "rssi_dbm": -65}}


def test_tasmota_stat_result_and_power(tasmota: TasmotaDriver) -> None:
    assert by_device(tasmota.decode("stat/sonoff12/RESULT", TASMOTA_RESULT, NOW)) == {"light": {"relay_on": True}}
    # HA config for Tasmota: state_topic stat/Kitchen/POWER1, payload_on "ON", payload_off "OFF";
    # availability tele/Kitchen/LWT Online/Offline. https://pastebin.com/PMWDiLkr
    assert by_device(tasmota.decode("stat/Kitchen/POWER1", b"OFF", NOW)) == {"kitchen-1": {"relay_on": False}}
    assert by_device(tasmota.decode("stat/Kitchen/POWER1", b"ON", NOW)) == {"kitchen-1": {"relay_on": True}}
    assert tasmota.decode("stat/Kitchen/POWER2", b"ON", NOW) == []  # not a configured channel
    assert tasmota.decode("stat/Kitchen/STATUS11", b'{"StatusSTS":{}}', NOW) == []


def test_tasmota_lwt(tasmota: TasmotaDriver) -> None:
    # tele/wc/LWT = Online (Tasmota console), https://pastebin.com/3FsdDUPw
    assert events(tasmota.decode("tele/Kitchen/LWT", b"Online", NOW)) == [EventType.DEVICE_ONLINE]
    assert events(tasmota.decode("tele/shelly25/LWT", b"Offline", NOW)) == [EventType.DEVICE_OFFLINE] * 3


def test_tasmota_encode(tasmota: TasmotaDriver) -> None:
    # command_topic cmnd/Kitchen/POWER1 with OFF/ON, https://pastebin.com/PMWDiLkr
    assert tasmota.encode(command("kitchen-1", Action.RELAY_OFF)) == ("cmnd/Kitchen/POWER1", b"OFF")
    assert tasmota.encode(command("pow", Action.RELAY_ON)) == ("cmnd/DVES_EA9716/POWER", b"ON")


def test_tasmota_bad_payloads(tasmota: TasmotaDriver) -> None:
    with pytest.raises(DecodeError):
        tasmota.decode("tele/DVES_EA9716/SENSOR", b'{"ENERGY":{"Power":"a lot"}}', NOW)
    with pytest.raises(DecodeError):
        tasmota.decode("stat/Kitchen/POWER1", b"TOGGLE?", NOW)


# ==================================================================================================
# Zigbee2MQTT
# ==================================================================================================

# Xiaomi/Honeywell smoke detector, test button (zigbee2mqtt log)
# https://github.com/stas-demydiuk/domoticz-zigbee2mqtt-plugin/issues/49
Z2M_SMOKE_XIAOMI = (b'{"battery":100,"voltage":3075,"linkquality":81,"device":{"ieeeAddr":"0x00158d0001d64498",'
                    b'"friendlyName":"Smoke","type":"EndDevice","nwkAddr":34503,"manufId":4151,"manufName":"LUMI",'
                    b'"powerSource":"Battery","modelId":"lumi.sensor_smoke","status":"online"},"smoke":false}')
# Heiman smoke detector in alarm, https://github.com/Koenkk/zigbee2mqtt/issues/1669
Z2M_SMOKE_HEIMAN = b'{"smoke":true,"battery_low":false,"linkquality":26,"last_seen":"2019-06-24T15:30:53.312Z"}'
# Old zigbee2mqtt sent battery as a string, https://github.com/Koenkk/zigbee2mqtt/issues/391
Z2M_SMOKE_OLD = b'{"battery":"100.00","voltage":3055,"linkquality":60,"smoke":false}'
# Aqara water leak SJCGQ11LM state, https://github.com/Koenkk/zigbee2mqtt/issues/12924
Z2M_LEAK_AQARA = (b'{"battery": 100, "battery_low": false, "device_temperature": 26, "last_seen": 1656118444933, '
                  b'"linkquality": 83, "tamper": false, "temperature": 26, "voltage": 3025, "water_leak": false}')
# SmartThings leak sensor, https://github.com/Koenkk/zigbee2mqtt/issues/663
Z2M_LEAK_ST = b'{"battery":"80.00","voltage":2900,"linkquality":0,"temperature":27.35,"water_leak":true}'
# Nous E13 leak sensor with nulls, https://github.com/Koenkk/zigbee2mqtt/issues/30411
Z2M_LEAK_NOUS = (b'{"alarm_ringtone":null,"battery":100,"last_seen":"2026-01-04T09:15:36.976Z","linkquality":116,'
                 b'"status":1,"water_leak":true,"working_mode":null}')
# Aqara door contact, https://github.com/arachnetech/homebridge-mqttthing/issues/100 ("status is true when
# the door is closed"); exposes: "Indicates if the contact is closed (= true) or open (= false)",
# https://github.com/andreypopov/node-red-contrib-zigbee2mqtt/issues/69
Z2M_CONTACT_CLOSED = b'{"contact":true,"linkquality":110,"battery":100,"voltage":3015}'
# Temperature & humidity sensor WSDCGQ01LM, https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html
Z2M_TEMP = b'{\n"temperature": 27.34,\n"humidity": 44.72\n}'


@pytest.fixture
def z2m() -> Zigbee2MqttDriver:
    return Zigbee2MqttDriver([
        dev("smoke-1", Kind.SMOKE_DETECTOR, Vendor.ZIGBEE2MQTT, "Smoke", siren="siren-1"),
        dev("leak-1", Kind.LEAK_SENSOR, Vendor.ZIGBEE2MQTT, "Lavabo SDB Etage"),
        dev("door-1", Kind.DOOR_CONTROLLER, Vendor.ZIGBEE2MQTT, "porte"),
        dev("temp-1", Kind.TEMP_SENSOR, Vendor.ZIGBEE2MQTT, "kitchen/temp"),
        dev("siren-1", Kind.SIREN, Vendor.ZIGBEE2MQTT, "Siren Hall"),
    ])


def test_z2m_topics_are_exact(z2m: Zigbee2MqttDriver) -> None:
    assert "zigbee2mqtt/kitchen/temp" in z2m.topic_filters()
    assert "zigbee2mqtt/Smoke/availability" in z2m.topic_filters()
    assert all("+" not in f and "#" not in f for f in z2m.topic_filters())


def test_z2m_smoke_transitions(z2m: Zigbee2MqttDriver) -> None:
    items = z2m.decode("zigbee2mqtt/Smoke", Z2M_SMOKE_XIAOMI, NOW)
    assert events(items) == []  # no alarm at start: nothing to report but the reading
    assert readings(items)[0].metrics == {"smoke": False, "battery_pct": 100, "linkquality": 81}
    items = z2m.decode("zigbee2mqtt/Smoke", Z2M_SMOKE_HEIMAN, NOW)
    assert events(items) == [EventType.DETECTOR_ALARM]
    assert isinstance(items[0], Event)  # the alarm goes before the reading that carries it
    assert readings(items)[0].metrics == {"smoke": True, "battery_low": False, "linkquality": 26}
    assert events(z2m.decode("zigbee2mqtt/Smoke", Z2M_SMOKE_HEIMAN, NOW)) == []  # still in alarm: no repeat
    items = z2m.decode("zigbee2mqtt/Smoke", Z2M_SMOKE_OLD, NOW)
    assert events(items) == [EventType.DETECTOR_CLEAR] and readings(items)[0].metrics["battery_pct"] == 100.0


def test_z2m_alarm_present_at_start_is_reported(z2m: Zigbee2MqttDriver) -> None:
    assert events(z2m.decode("zigbee2mqtt/Smoke", Z2M_SMOKE_HEIMAN, NOW)) == [EventType.DETECTOR_ALARM]


def test_z2m_leak(z2m: Zigbee2MqttDriver) -> None:
    items = z2m.decode("zigbee2mqtt/Lavabo SDB Etage", Z2M_LEAK_AQARA, NOW)
    assert readings(items)[0].metrics == {"battery_pct": 100, "battery_low": False, "device_temp_c": 26,
                                          "linkquality": 83, "tamper": False, "temperature_c": 26,
                                          "water_leak": False}
    assert events(z2m.decode("zigbee2mqtt/Lavabo SDB Etage", Z2M_LEAK_ST, NOW)) == [EventType.WATER_LEAK]
    assert events(z2m.decode("zigbee2mqtt/Lavabo SDB Etage", Z2M_LEAK_NOUS, NOW)) == []
    assert readings(z2m.decode("zigbee2mqtt/Lavabo SDB Etage", Z2M_LEAK_NOUS, NOW))[0].metrics["water_leak"] is True


def test_z2m_contact_true_means_closed(z2m: Zigbee2MqttDriver) -> None:
    [r] = z2m.decode("zigbee2mqtt/porte", Z2M_CONTACT_CLOSED, NOW)
    assert isinstance(r, Reading) and r.metrics["door_open"] is False
    opened = z2m.decode("zigbee2mqtt/porte", b'{"contact":false,"linkquality":110,"battery":100}', NOW)
    assert events(opened) == [EventType.DOOR_OPENED]
    assert events(z2m.decode("zigbee2mqtt/porte", Z2M_CONTACT_CLOSED, NOW)) == [EventType.DOOR_CLOSED]


def test_z2m_temperature(z2m: Zigbee2MqttDriver) -> None:
    [r] = z2m.decode("zigbee2mqtt/kitchen/temp", Z2M_TEMP, NOW)
    assert isinstance(r, Reading) and r.metrics == {"temperature_c": 27.34, "humidity_pct": 44.72}


def test_z2m_availability_both_forms(z2m: Zigbee2MqttDriver) -> None:
    # Legacy text payload "online"/"offline" (https://github.com/Luligu/matterbridge-zigbee2mqtt/issues/16)
    # and the JSON form {"state": "online"} (https://github.com/Koenkk/zigbee2mqtt/issues/25978).
    assert events(z2m.decode("zigbee2mqtt/Smoke/availability", b"offline", NOW)) == [EventType.DEVICE_OFFLINE]
    assert events(z2m.decode("zigbee2mqtt/Smoke/availability", b"online", NOW)) == [EventType.DEVICE_ONLINE]
    assert events(z2m.decode("zigbee2mqtt/kitchen/temp/availability", b'{\n  "state": "online"\n}', NOW)) == [
        EventType.DEVICE_ONLINE]
    assert events(z2m.decode("zigbee2mqtt/Smoke/availability", b'{"state":"offline"}', NOW)) == [
        EventType.DEVICE_OFFLINE]
    with pytest.raises(DecodeError):
        z2m.decode("zigbee2mqtt/Smoke/availability", b'{"state":"sleepy"}', NOW)


def test_z2m_siren_command_follows_the_documented_warning(z2m: Zigbee2MqttDriver) -> None:
    # https://zigbee2mqtt.io/devices/ZR1-EN.html: {"warning": {"mode", "level", "strobe_level", "strobe",
    # "strobe_duty_cycle", "duration"}}; mode in stop, burglar, fire, ...; level in low ... very_high.
    topic, payload = z2m.encode(command("siren-1", Action.SIREN_ON))
    assert topic == "zigbee2mqtt/Siren Hall/set"
    warning = json.loads(payload)["warning"]
    assert warning["mode"] == "fire" and warning["level"] == "very_high" and warning["strobe"] is True
    assert isinstance(warning["duration"], int) and warning["duration"] > 0
    assert json.loads(z2m.encode(command("siren-1", Action.SIREN_OFF))[1])["warning"]["mode"] == "stop"
    with pytest.raises(UnsupportedCommand):
        z2m.encode(command("smoke-1", Action.SIREN_ON))


def test_z2m_not_an_object(z2m: Zigbee2MqttDriver) -> None:
    with pytest.raises(DecodeError):
        z2m.decode("zigbee2mqtt/Smoke", b"[1,2]", NOW)
    with pytest.raises(DecodeError):
        z2m.decode("zigbee2mqtt/Smoke", b'{"smoke":"maybe"}', NOW)


# ==================================================================================================
# Generic profile (ours: edge/drivers/GENERIC_PROFILE.md); samples are the ones that document promises
# ==================================================================================================


@pytest.fixture
def generic() -> GenericDriver:
    return GenericDriver([
        dev("door-main", Kind.DOOR_CONTROLLER, Vendor.GENERIC, "door-f3-main", door_type="egress"),
        dev("probe-mr", Kind.MR_PROBE, Vendor.GENERIC, "probe-mr-01"),
        dev("mcp-1", Kind.MANUAL_CALL_POINT, Vendor.GENERIC, "mcp-f3-01"),
    ])


def test_generic_badges(generic: GenericDriver) -> None:
    [granted] = generic.decode("access/door-f3-main/event",
                               b'{"type": "badge", "result": "granted", "badge": "B12345", "direction": "in"}', NOW)
    assert isinstance(granted, Event)
    assert (granted.type, granted.badge, granted.direction) == (EventType.ACCESS_GRANTED, "B12345", "in")
    [denied] = generic.decode("access/door-f3-main/event", b'{"type": "badge", "result": "denied", '
                              b'"badge": "B99999", "direction": "in", "reason": "revoked"}', NOW)
    assert isinstance(denied, Event) and denied.type is EventType.ACCESS_DENIED and denied.detail == "revoked"


def test_generic_door_events_and_state(generic: GenericDriver) -> None:
    for body, kind in ((b'{"type": "door_forced"}', EventType.DOOR_FORCED),
                       (b'{"type": "door_held_open", "held_s": 45}', EventType.DOOR_HELD_OPEN),
                       (b'{"type": "request_to_exit"}', EventType.REQUEST_TO_EXIT)):
        assert events(generic.decode("access/door-f3-main/event", body, NOW)) == [kind]
    items = generic.decode("access/door-f3-main/state", b'{"door": "closed", "lock": "locked", "tamper": false}', NOW)
    assert events(items) == [EventType.DOOR_LOCKED]
    assert readings(items)[0].metrics == {"door_open": False, "door_locked": True, "tamper": False}
    items = generic.decode("access/door-f3-main/state", b'{"door": "open", "lock": "unlocked"}', NOW)
    assert events(items) == [EventType.DOOR_OPENED, EventType.DOOR_UNLOCKED]


def test_generic_errors_never_quote_values(generic: GenericDriver) -> None:
    with pytest.raises(DecodeError) as error:
        generic.decode("access/door-f3-main/event", b'{"type": "badge", "result": "maybe", "badge": "B12345"}', NOW)
    assert "B12345" not in str(error.value)
    with pytest.raises(DecodeError):
        generic.decode("access/door-f3-main/event", b'{"type": "party"}', NOW)


def test_generic_probe_and_call_point(generic: GenericDriver) -> None:
    items = generic.decode("probe/probe-mr-01/state",
                           b'{"temperature_c": 31.2, "humidity_pct": 38.5, "water_leak": true, "smoke": false}', NOW)
    assert events(items) == [EventType.WATER_LEAK]
    assert readings(items)[0].metrics["temperature_c"] == 31.2
    assert events(generic.decode("callpoint/mcp-f3-01/state", b'{"activated": true}', NOW)) == [
        EventType.MANUAL_CALL_POINT]
    assert events(generic.decode("callpoint/mcp-f3-01/state", b'{"activated": true}', NOW)) == []


def test_generic_door_commands(generic: GenericDriver) -> None:
    topic, payload = generic.encode(command("door-main", Action.DOOR_RELEASE))
    assert topic == "access/door-f3-main/cmd" and json.loads(payload)["action"] == "release"
    assert json.loads(generic.encode(command("door-main", Action.DOOR_SECURE))[1])["action"] == "secure"
