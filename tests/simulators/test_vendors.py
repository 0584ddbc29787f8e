"""Encoders produce payloads of the same shape as the vendors' own documentation samples.

Each sample below is copied from the page named next to it (values are the documentation's); the test
compares structure: the same keys at every level and the same JSON types (numbers are one type).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from simulators.vendors import generic, shelly, tasmota, zigbee2mqtt


def shape(value: Any) -> Any:
    """A JSON value's skeleton: dict keys with the shapes of their values, lists of element shapes."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


NOW = datetime(2026, 11, 30, 2, 0, 5, tzinfo=UTC)


# --- Shelly Gen2 -----------------------------------------------------------------------------------

# https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch#status (example status object of
# a metering switch; the timer_* keys appear only while a timer runs and are left out here)
SHELLY_STATUS_DOC = {
    "id": 0,
    "source": "init",
    "output": True,
    "apower": 8.9,
    "voltage": 237.5,
    "freq": 50.0,
    "current": 0.068,
    "aenergy": {"total": 6.532, "by_minute": [45.199, 47.141, 88.397], "minute_ts": 1645178670},
    "temperature": {"tC": 23.5, "tF": 74.4},
}
# https://shelly-api-docs.shelly.cloud/gen2/General/Notifications (NotifyStatus frame)
SHELLY_NOTIFY_DOC = {
    "src": "shellypro4pm-f008d1d8b8b8",
    "dst": "user_1",
    "method": "NotifyStatus",
    "params": {"ts": 1631186545.04, "switch:0": {"id": 0, "output": True, "source": "button"}},
}
# https://shelly-api-docs.shelly.cloud/gen2/General/RPCProtocol (response frame) and RPCChannels (MQTT:
# the response is published on <src>/rpc)
SHELLY_RESPONSE_DOC = {"id": 1, "src": "shellyplus1-a8032ab12345", "dst": "user_1", "result": {"was_on": False}}


def test_shelly_status_has_the_documented_shape() -> None:
    pub = shelly.encode_status(
        "shellyplusplugs-a8032ab12345",
        shelly.SwitchState(
            output=True, apower=182.4, voltage=221.0, current=0.83, total_wh=1234.5, minute_ts=1764468000, temp_c=38.8
        ),
    )
    assert pub.topic == "shellyplusplugs-a8032ab12345/status/switch:0"
    assert shape(json.loads(pub.payload)) == shape(SHELLY_STATUS_DOC)


def test_shelly_online_and_notify_status() -> None:
    online = shelly.encode_online("shellyplusplugs-a8032ab12345", False)
    assert (online.topic, online.payload, online.retain) == ("shellyplusplugs-a8032ab12345/online", b"false", True)
    note = shelly.encode_notify_status(
        "shellyplusplugs-a8032ab12345", shelly.SwitchState(output=False), NOW.timestamp(), ["output", "source"]
    )
    assert note.topic == "shellyplusplugs-a8032ab12345/events/rpc"
    assert shape(json.loads(note.payload)) == shape(SHELLY_NOTIFY_DOC)


def test_shelly_switch_set_answers_on_src_rpc() -> None:
    state = shelly.SwitchState(output=False)
    request = b'{"id":1,"src":"user_1","method":"Switch.Set","params":{"id":0,"on":true}}'
    outcome = shelly.handle_rpc("shellyplus1-a8032ab12345", state, request)
    assert outcome.changed and state.output is True
    assert outcome.reply is not None and outcome.reply.topic == "user_1/rpc"
    assert json.loads(outcome.reply.payload) == SHELLY_RESPONSE_DOC


def test_shelly_rejects_bad_requests_like_the_firmware() -> None:
    state = shelly.SwitchState(output=True)
    bad = shelly.handle_rpc("p", state, b'{"id":2,"src":"me","method":"Switch.Set","params":{"id":0}}')
    assert bad.reply is not None and json.loads(bad.reply.payload)["error"]["code"] == shelly.ERR_INVALID_ARGUMENT
    unknown = shelly.handle_rpc("p", state, b'{"id":3,"src":"me","method":"Cover.Open","params":{"id":0}}')
    assert unknown.reply is not None and json.loads(unknown.reply.payload)["error"]["code"] == shelly.ERR_NO_HANDLER
    assert shelly.handle_rpc("p", state, b"not json").reply is None
    assert state.output is True


# --- Tasmota ---------------------------------------------------------------------------------------

# https://tasmota.github.io/docs/MQTT/ (tele/%topic%/SENSOR with the energy driver's ENERGY object;
# field list as in tasmota/tasmota_xdrv_driver/xdrv_03_energy.ino)
TASMOTA_SENSOR_DOC = {
    "Time": "2023-04-04T17:01:33",
    "ENERGY": {
        "TotalStartTime": "2020-01-05T12:41:22",
        "Total": 14.68792,
        "Yesterday": 0.00001,
        "Today": 0.00869,
        "Period": 1,
        "Power": 32,
        "ApparentPower": 35,
        "ReactivePower": 16,
        "Factor": 0.89,
        "Voltage": 238,
        "Current": 0.148,
    },
}
# A two-channel meter: every per-channel key becomes an array, Voltage stays a number when common
TASMOTA_SENSOR_2CH_DOC = {
    "Time": "2026-09-18T11:19:21",
    "ENERGY": {
        "TotalStartTime": "2026-09-16T00:00:00",
        "Total": [2.813, 0.254],
        "Yesterday": [1.530, 0.125],
        "Today": [0.772, 0.059],
        "Power": [52, 5],
        "ApparentPower": [66, 10],
        "ReactivePower": [40, 9],
        "Factor": [0.79, 0.50],
        "Voltage": 235,
        "Current": [0.278, 0.044],
    },
}
# https://tasmota.github.io/docs/ADC/ (tele/tasmota/STATE example; Vcc only exists with USE_ADC_VCC)
TASMOTA_STATE_DOC = {
    "Time": "2019-10-31T11:14:59",
    "Uptime": "0T18:36:12",
    "UptimeSec": 66972,
    "Heap": 28,
    "SleepMode": "Dynamic",
    "Sleep": 50,
    "LoadAvg": 19,
    "MqttCount": 6,
    "POWER": "OFF",
    "Wifi": {
        "AP": 1,
        "SSId": "Tasmota",
        "BSSId": "00:00:00:00:00:00",
        "Channel": 13,
        "RSSI": 100,
        "LinkCount": 1,
        "Downtime": "0T00:00:06",
    },
}


def test_tasmota_sensor_single_channel_matches_the_doc() -> None:
    state = tasmota.TasmotaState(channels=[tasmota.ChannelEnergy(power_w=182, current_a=0.86, total_kwh=123.4)])
    pub = tasmota.encode_sensor("f3-strip-01", state, NOW)
    assert pub.topic == "tele/f3-strip-01/SENSOR"
    assert shape(json.loads(pub.payload)) == shape(TASMOTA_SENSOR_DOC)


def test_tasmota_sensor_multi_channel_uses_arrays() -> None:
    chans = [tasmota.ChannelEnergy(power_w=w, current_a=w / 220) for w in (150.0, 90.0, 0.0, 2000.0)]
    body = json.loads(tasmota.encode_sensor("f3-strip-40", tasmota.TasmotaState(channels=chans), NOW).payload)
    doc = shape(TASMOTA_SENSOR_2CH_DOC)
    ours = shape(body)
    for key, kind in doc["ENERGY"].items():  # ours adds Period (newer firmware); everything else as the doc
        assert ours["ENERGY"][key] == kind, key
    assert len(body["ENERGY"]["Power"]) == 4 and body["ENERGY"]["Power"][3] == 2000


def test_tasmota_state_matches_the_doc() -> None:
    body = json.loads(tasmota.encode_state("f3-strip-01", tasmota.TasmotaState(), NOW).payload)
    doc = shape(TASMOTA_STATE_DOC)
    assert {k: v for k, v in shape(body).items() if k in doc and k != "Wifi"} == {
        k: v for k, v in doc.items() if k != "Wifi"
    }
    assert set(doc["Wifi"]) <= set(body["Wifi"])


def test_tasmota_power_command_flow_as_documented() -> None:
    # https://tasmota.github.io/docs/MQTT/#command-flow: cmnd/<t>/Power (empty) -> stat/<t>/RESULT
    # {"POWER":"OFF"} and stat/<t>/POWER OFF; multi-relay devices use POWER<x>.
    single = tasmota.TasmotaState()
    replies, changed = tasmota.handle_command("tasmota_switch", single, "cmnd/tasmota_switch/Power", b"OFF")
    assert changed
    assert [(p.topic, p.payload) for p in replies] == [
        ("stat/tasmota_switch/RESULT", b'{"POWER":"OFF"}'),
        ("stat/tasmota_switch/POWER", b"OFF"),
    ]
    strip = tasmota.TasmotaState(channels=[tasmota.ChannelEnergy() for _ in range(4)])
    replies, changed = tasmota.handle_command("f3-strip-40", strip, "cmnd/f3-strip-40/POWER2", b"off")
    assert changed and not strip.channels[1].relay_on and strip.channels[0].relay_on
    assert replies[-1].topic == "stat/f3-strip-40/POWER2" and replies[-1].payload == b"OFF"
    replies, changed = tasmota.handle_command("f3-strip-40", strip, "cmnd/f3-strip-40/POWER2", b"")
    assert not changed and replies[-1].payload == b"OFF"  # an empty payload queries
    lwt = tasmota.encode_lwt("f3-strip-40", True)
    assert (lwt.topic, lwt.payload, lwt.retain) == ("tele/f3-strip-40/LWT", b"Online", True)


# --- Zigbee2MQTT -----------------------------------------------------------------------------------

# Exposes as listed on each device page (https://www.zigbee2mqtt.io/devices/<model>.html)
Z2M_EXPOSES = {
    "smoke": {"smoke", "battery_low", "battery", "linkquality"},  # HS1SA
    "temp_humidity": {"battery", "temperature", "humidity", "pressure", "voltage", "linkquality"},  # WSDCGQ11LM
    "leak": {"battery", "water_leak", "battery_low", "voltage", "temperature", "linkquality"},  # SJCGQ11LM
    "contact": {"battery", "contact", "temperature", "voltage", "linkquality"},  # MCCGQ11LM
    "siren": {"battery", "max_duration", "linkquality"},  # HS2WD-E (warning: write-only)
}


def test_zigbee2mqtt_states_publish_exactly_the_documented_exposes() -> None:
    for role, exposes in Z2M_EXPOSES.items():
        pub = zigbee2mqtt.encode_state("f3_z1_dev", zigbee2mqtt.ZigbeeState(role=role))
        assert pub.topic == "zigbee2mqtt/f3_z1_dev"
        assert set(json.loads(pub.payload)) == exposes, role


def test_zigbee2mqtt_availability_and_siren_set() -> None:
    # https://www.zigbee2mqtt.io/guide/configuration/device-availability.html: retained {"state":"online"}
    pub = zigbee2mqtt.encode_availability("f3_z1_smoke_1", True)
    assert (pub.topic, json.loads(pub.payload), pub.retain) == (
        "zigbee2mqtt/f3_z1_smoke_1/availability",
        {"state": "online"},
        True,
    )
    siren = zigbee2mqtt.ZigbeeState(role="siren")
    # https://www.zigbee2mqtt.io/devices/HS2WD-E.html "Triggering the alarm"
    _, changed = zigbee2mqtt.handle_set(
        "s", siren, b'{"warning": {"duration": 10, "mode": "emergency", "strobe": false}}'
    )
    assert changed and siren.siren_on
    _, changed = zigbee2mqtt.handle_set("s", siren, b'{"warning": {"mode": "stop"}}')
    assert changed and not siren.siren_on


def test_battery_low_and_voltage_track_the_battery() -> None:
    state = zigbee2mqtt.ZigbeeState(role="smoke", battery=9)
    assert json.loads(zigbee2mqtt.encode_state("x", state).payload)["battery_low"] is True


# --- Generic profile (edge/drivers/GENERIC_PROFILE.md) ----------------------------------------------


def test_generic_profile_messages() -> None:
    badge = json.loads(generic.encode_badge("acu-f3-main", NOW, "B100010", "granted", "in").payload)
    assert badge == {
        "ts": "2026-11-30T02:00:05.000Z",
        "type": "badge",
        "badge": "B100010",
        "result": "granted",
        "direction": "in",
    }
    held = json.loads(generic.encode_door_event("acu-f3-main", NOW, "door_held_open", held_s=30).payload)
    assert held["type"] == "door_held_open" and held["held_s"] == 30
    door = generic.DoorState()
    state_pub = generic.encode_door_state("acu-f3-main", door)
    assert json.loads(state_pub.payload) == {"door": "closed", "lock": "locked"} and state_pub.retain
    denied = json.loads(generic.encode_badge("acu-f3-main", NOW, "B9", "denied", "in", "revoked").payload)
    assert denied["reason"] == "revoked"
    offline = generic.encode_availability("access", "acu-f3-main", False)
    assert (offline.topic, offline.payload, offline.retain) == ("access/acu-f3-main/availability", b"offline", True)
    replies, changed = generic.handle_door_command("acu-f3-main", door, b'{"id":"c-1","action":"release"}')
    assert changed and json.loads(replies[0].payload) == {"door": "closed", "lock": "unlocked"}
    probe = json.loads(generic.encode_probe("f3-mr-inlet-1", generic.ProbeState()).payload)
    assert set(probe) == {"temperature_c", "humidity_pct", "water_leak", "smoke"}
    assert json.loads(generic.encode_callpoint("mcp-f3-main", True).payload) == {"activated": True}
