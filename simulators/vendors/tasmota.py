"""Tasmota metering plug or multi-outlet strip (Sonoff POW / metered strips running Tasmota).

Sources (Tasmota documentation and firmware):
- Topics `%prefix%/%topic%/`: `cmnd/<topic>/POWER<n>` ON/OFF/TOGGLE (empty payload = query),
  answers on `stat/<topic>/RESULT` {"POWER<n>":"OFF"} and `stat/<topic>/POWER<n>` OFF; telemetry
  every TelePeriod on `tele/<topic>/SENSOR` and `tele/<topic>/STATE`: https://tasmota.github.io/docs/MQTT/
- POWER<x> addresses relay x of a multi-relay device; POWER is POWER1: https://tasmota.github.io/docs/Commands/#power
- `tele/<topic>/LWT` Online (retained; the MQTT Last Will is Offline): https://tasmota.github.io/docs/MQTT/
  and https://tasmota.github.io/docs/Commands/#mqtt (FullTopic, LWT)
- tele/STATE sample {"Time","Uptime","UptimeSec","Heap","SleepMode","Sleep","LoadAvg","MqttCount",
  "POWER","Wifi":{...}}: https://tasmota.github.io/docs/ADC/ (Vcc example) and /docs/DeepSleep/
- ENERGY object {TotalStartTime, Total, Yesterday, Today, Period, Power, ApparentPower, ReactivePower,
  Factor, Voltage, Current}; multi-channel meters give arrays per key (Voltage shared when common):
  https://tasmota.github.io/docs/Power-Monitoring-Calibration/ and the energy driver
  https://github.com/arendst/Tasmota/blob/development/tasmota/tasmota_xdrv_driver/xdrv_03_energy.ino
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from simulators.vendors.base import Publication, dumps


@dataclass(slots=True)
class ChannelEnergy:
    """One metered channel (relay) of a Tasmota device."""

    relay_on: bool = True
    power_w: float = 0.0
    power_factor: float = 0.95
    current_a: float = 0.0
    total_kwh: float = 0.0
    yesterday_kwh: float = 0.0
    today_kwh: float = 0.0
    period_wh: float = 0.0


@dataclass(slots=True)
class TasmotaState:
    channels: list[ChannelEnergy] = field(default_factory=lambda: [ChannelEnergy()])
    voltage_v: float = 220.0
    total_start: str = "2025-01-10T09:12:33"
    uptime_s: int = 0
    rssi: int = 80
    mqtt_count: int = 1


class TasmotaTopics:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.sensor = f"tele/{topic}/SENSOR"
        self.state = f"tele/{topic}/STATE"
        self.lwt = f"tele/{topic}/LWT"
        self.result = f"stat/{topic}/RESULT"
        self.command_filter = f"cmnd/{topic}/+"

    def power(self, relay: int, relays: int) -> str:
        """`stat/<topic>/POWER` on a single-relay device, `POWER<n>` on a multi-relay one."""
        return f"stat/{self.topic}/{power_key(relay, relays)}"


def power_key(relay: int, relays: int) -> str:
    return "POWER" if relays == 1 else f"POWER{relay}"


def local_time(when: datetime) -> str:
    """Tasmota's "Time": local time (its Timezone setting), no offset, second resolution."""
    return when.strftime("%Y-%m-%dT%H:%M:%S")


def _uptime(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}T{hours:02d}:{minutes:02d}:{secs:02d}"


def energy_object(state: TasmotaState) -> dict[str, Any]:
    """The ENERGY object: scalars for one channel, arrays for several (Voltage stays common)."""
    chans = state.channels

    def apparent(c: ChannelEnergy) -> float:
        return state.voltage_v * c.current_a

    def reactive(c: ChannelEnergy) -> float:
        s = apparent(c)
        return math.sqrt(max(s * s - c.power_w * c.power_w, 0.0))

    def factor(c: ChannelEnergy) -> float:
        s = apparent(c)
        return min(c.power_w / s, 1.0) if s > 0 else 0.0

    columns: dict[str, list[Any]] = {
        "Total": [round(c.total_kwh, 3) for c in chans],
        "Yesterday": [round(c.yesterday_kwh, 3) for c in chans],
        "Today": [round(c.today_kwh, 3) for c in chans],
        "Period": [round(c.period_wh) for c in chans],
        "Power": [round(c.power_w) for c in chans],
        "ApparentPower": [round(apparent(c)) for c in chans],
        "ReactivePower": [round(reactive(c)) for c in chans],
        "Factor": [round(factor(c), 2) for c in chans],
    }
    energy: dict[str, Any] = {"TotalStartTime": state.total_start}
    single = len(chans) == 1
    for key, values in columns.items():
        energy[key] = values[0] if single else values
    energy["Voltage"] = round(state.voltage_v)
    energy["Current"] = round(chans[0].current_a, 3) if single else [round(c.current_a, 3) for c in chans]
    return energy


def encode_sensor(topic: str, state: TasmotaState, local_now: datetime) -> Publication:
    body = {"Time": local_time(local_now), "ENERGY": energy_object(state)}
    return Publication(TasmotaTopics(topic).sensor, dumps(body))


def encode_state(topic: str, state: TasmotaState, local_now: datetime) -> Publication:
    relays = len(state.channels)
    body: dict[str, Any] = {
        "Time": local_time(local_now),
        "Uptime": _uptime(state.uptime_s),
        "UptimeSec": state.uptime_s,
        "Heap": 25,
        "SleepMode": "Dynamic",
        "Sleep": 50,
        "LoadAvg": 19,
        "MqttCount": state.mqtt_count,
    }
    for index, chan in enumerate(state.channels, start=1):
        body[power_key(index, relays)] = "ON" if chan.relay_on else "OFF"
    body["Wifi"] = {
        "AP": 1,
        "SSId": "floor-iot",
        "BSSId": "AA:BB:CC:00:11:22",
        "Channel": 6,
        "Mode": "11n",
        "RSSI": state.rssi,
        "Signal": state.rssi // 2 - 100,
        "LinkCount": 1,
        "Downtime": "0T00:00:04",
    }
    return Publication(TasmotaTopics(topic).state, dumps(body))


def encode_lwt(topic: str, online: bool) -> Publication:
    return Publication(TasmotaTopics(topic).lwt, b"Online" if online else b"Offline", qos=1, retain=True)


def encode_power_result(topic: str, state: TasmotaState, relay: int) -> list[Publication]:
    """What Tasmota sends after a POWER command: stat/RESULT JSON, then stat/POWER<n> plain text."""
    relays = len(state.channels)
    key = power_key(relay, relays)
    text = "ON" if state.channels[relay - 1].relay_on else "OFF"
    topics = TasmotaTopics(topic)
    return [
        Publication(topics.result, dumps({key: text})),
        Publication(topics.power(relay, relays), text.encode()),
    ]


def handle_command(
    topic: str, state: TasmotaState, command_topic: str, payload: bytes
) -> tuple[list[Publication], bool]:
    """Apply `cmnd/<topic>/<Command>`; returns the replies and whether a relay changed state.

    Only POWER<n> is modelled. Commands are case-insensitive in Tasmota; unknown ones get
    {"Command":"Unknown"} on stat/RESULT, as the firmware does.
    """
    command = command_topic.rsplit("/", 1)[-1].upper()
    topics = TasmotaTopics(topic)
    if not command.startswith("POWER"):
        return [Publication(topics.result, dumps({"Command": "Unknown"}))], False
    suffix = command[len("POWER") :]
    relay = int(suffix) if suffix.isdigit() else 1 if suffix == "" else 0
    if not 1 <= relay <= len(state.channels):
        return [Publication(topics.result, dumps({"Command": "Unknown"}))], False
    chan = state.channels[relay - 1]
    word = payload.decode("utf-8", errors="replace").strip().upper()
    before = chan.relay_on
    if word in ("ON", "1"):
        chan.relay_on = True
    elif word in ("OFF", "0"):
        chan.relay_on = False
    elif word in ("TOGGLE", "2"):
        chan.relay_on = not chan.relay_on
    elif word not in ("", "?"):
        return [Publication(topics.result, dumps({"Command": "Error"}))], False
    return encode_power_result(topic, state, relay), before != chan.relay_on


def encode_info1(topic: str, module: str, version: str = "14.3.0(tasmota)") -> Publication:
    """`tele/<topic>/INFO1` after connecting (Tasmota 9.1+ wraps it in "Info1"):
    https://tasmota.github.io/docs/MQTT/ (Info1: Module, Version, FallbackTopic, GroupTopic)."""
    body = {"Info1": {"Module": module, "Version": version, "FallbackTopic": f"cmnd/DVES_{topic[-6:]}_fb/",
                      "GroupTopic": "cmnd/tasmotas/"}}
    return Publication(f"tele/{topic}/INFO1", dumps(body), qos=1)


def encode_probe_sensor(topic: str, probes: dict[str, tuple[str | None, float]], local_now: datetime,
                        unit: str = "C") -> Publication:
    """`tele/<topic>/SENSOR` of temperature probes: {name: (DS18B20 Id or None, temperature)}; several
    DS18B20 are named DS18B20-1, -2 ... each with its Id (https://tasmota.github.io/docs/DS18x20/)."""
    body: dict[str, Any] = {"Time": local_time(local_now)}
    for name, (probe_id, temperature) in probes.items():
        body[name] = {"Id": probe_id, "Temperature": round(temperature, 1)} if probe_id else {
            "Temperature": round(temperature, 1)}
    body["TempUnit"] = unit
    return Publication(f"tele/{topic}/SENSOR", dumps(body))


def encode_status(topic: str, device_name: str, module: int = 0) -> Publication:
    """The answer to `Status` on `stat/<topic>/STATUS` (https://tasmota.github.io/docs/Commands/#status:
    {"Status": {"Module", "DeviceName", "FriendlyName", "Topic", "ButtonTopic", "Power", ...}})."""
    body = {"Status": {"Module": module, "DeviceName": device_name, "FriendlyName": [device_name], "Topic": topic,
                       "ButtonTopic": "0", "Power": "0", "PowerOnState": 3, "LedState": 1}}
    return Publication(f"stat/{topic}/STATUS", dumps(body))


def encode_status8(topic: str, sensor: Publication) -> Publication:
    """The answer to `Status 8` on `stat/<topic>/STATUS8`: the SENSOR object inside "StatusSNS"."""
    return Publication(f"stat/{topic}/STATUS8", dumps({"StatusSNS": json.loads(sensor.payload)}))
