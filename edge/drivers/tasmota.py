"""Tasmota plugs, multi-outlet strips (Sonoff POW, Gosund, Athom, Shelly 2.5 on Tasmota ...) and
temperature probes (DS18B20 alone or several with their Id, AM2301/DHT, SHT3X, BME280; °F converted).

Device layer, shown with the default FullTopic `%prefix%/%topic%/` and prefixes cmnd/stat/tele; any
FullTopic with %prefix% and %topic% as levels (`%topic%/%prefix%/`, `fhem/%topic%/%prefix%/`) and any
Prefix1..3 are read the same way (the `address` is the Tasmota Topic; `channel` is the POWER index from
1, omitted for a whole-device meter; a probe is named by `sensor`):

- `tele/<topic>/SENSOR`   {"Time": ..., "ENERGY": {"Total" kWh, "Power" W, "Voltage" V, "Current" A,
                           "Factor", ...}}; on multi-channel meters Power/Current/Factor (and sometimes
                           Voltage) are arrays, one value per channel, and Total is consolidated
- `tele/<topic>/STATE`    {"POWER": "ON"} or {"POWER1": "ON", "POWER2": "OFF"}, "Wifi": {"Signal": dBm}
- `stat/<topic>/POWER[n]` `ON` / `OFF` after every change
- `stat/<topic>/RESULT`   {"POWER2": "OFF"} as the answer to a command
- `tele/<topic>/LWT`      `Online` / `Offline` (retained Last Will)
- `tele/<topic>/SENSOR`   {"DS18B20-1": {"Id": ..., "Temperature": ...}, "AM2301": {"Temperature",
                           "Humidity"}, "TempUnit": "C" | "F"} for probes
- `stat/<topic>/STATUS8`, `STATUS10`  {"StatusSNS": <as SENSOR>};  `STATUS11`  {"StatusSTS": <as STATE>}
- relay words are StateText1/StateText2 (`OFF`/`ON` unless changed, e.g. `0`/`1`)
- command: `cmnd/<topic>/POWER[n]` with `ON` / `OFF`

See https://tasmota.github.io/docs/MQTT/ and https://tasmota.github.io/docs/Commands/#power .
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

from edge.config import DeviceConfig, Kind, TasmotaDialect, Vendor
from edge.drivers.base import (
    DecodeError,
    Driver,
    Item,
    Metrics,
    event,
    json_object,
    number,
    reading,
    utcnow,
)
from gateway.contract import Action, Command, EventType

_ACTIONS = frozenset({Action.RELAY_OFF, Action.RELAY_ON})
_PROBES = frozenset({Kind.TEMP_SENSOR, Kind.MR_PROBE})
_GHOST_UIDS = frozenset({"00000000", "0000000000"})
"""UIDs that cheap RDM6300 clones report without a card (https://github.com/arendst/Tasmota/issues/9522)."""
_WRAPPED = {"STATUS8": "StatusSNS", "STATUS10": "StatusSNS", "STATUS11": "StatusSTS"}
_KINDS = frozenset({Kind.SMART_PLUG, Kind.STRIP_METER})
_POWER_KEY = re.compile(r"^POWER(\d*)$")


def _channel_value(value: Any, channel: int | None, field: str, device: str) -> float | int | None:
    """The value for one channel (1-based) from a per-channel array, or the scalar itself."""
    if isinstance(value, list):
        if channel is None or channel < 1 or channel > len(value):
            return None
        return number(value[channel - 1], f"{field}[{channel}]", device)
    return number(value, field, device)


def energy_metrics(energy: dict[str, Any], channel: int | None, device: str) -> Metrics:
    """Canonical metrics of one channel (or of the whole device when channel is None)."""
    metrics: Metrics = {}
    multi = any(isinstance(energy.get(k), list) for k in ("Power", "Current"))
    for field, metric in (("Power", "power_w"), ("Current", "current_a")):
        value = energy.get(field)
        if value is None:
            continue
        if isinstance(value, list) and not value:
            raise DecodeError(f"ENERGY.{field} is an empty list: no channel to read", device)
        if isinstance(value, list) and channel is None:
            metrics[metric] = sum(number(v, f"{field}[{i + 1}]", device) for i, v in enumerate(value))
        elif not isinstance(value, list) and channel is not None and channel > 1 and multi is False:
            continue  # a single-channel meter says nothing about outlet 2 and beyond
        else:
            got = _channel_value(value, channel, field, device)
            if got is not None:
                metrics[metric] = got
    voltage = energy.get("Voltage")
    if voltage is not None:
        if isinstance(voltage, list):
            if not voltage:
                raise DecodeError("ENERGY.Voltage is an empty list: no channel to read", device)
            # A whole-strip meter takes the highest phase/channel voltage (idle channels report 0).
            values = [number(v, "Voltage", device) for v in voltage]
            got = max(values) if channel is None else _channel_value(voltage, channel, "Voltage", device)
        else:
            got = number(voltage, "Voltage", device)
        if got is not None:
            metrics["voltage_v"] = got
    factor = energy.get("Factor")
    if factor is not None and (channel is not None or not isinstance(factor, list)):
        got = _channel_value(factor, channel, "Factor", device)
        if got is not None:
            metrics["power_factor"] = got
    total = energy.get("Total")
    if total is not None:
        # Total is kWh and consolidated over channels unless it is an array (EnergyTotal per phase).
        if isinstance(total, list):
            if channel is None:
                metrics["energy_wh"] = round(sum(number(v, "Total", device) for v in total) * 1000, 3)
            else:
                got = _channel_value(total, channel, "Total", device)
                if got is not None:
                    metrics["energy_wh"] = round(got * 1000, 3)
        elif channel is None or not multi:
            metrics["energy_wh"] = round(number(total, "Total", device) * 1000, 3)
    return metrics


def probe_metrics(data: dict[str, Any], sensor: str, device: str) -> Metrics | None:
    """Temperature (°C) and humidity of one probe from a SENSOR/StatusSNS object; None when the message
    does not carry that probe. `sensor` is the probe's JSON name or a DS18B20's Id."""
    block = data.get(sensor)
    name = sensor
    if not isinstance(block, dict):
        name, block = next(((k, v) for k, v in data.items() if isinstance(v, dict) and v.get("Id") == sensor),
                            (sensor, None))
    if not isinstance(block, dict):
        return None
    if "Temperature" not in block:
        raise DecodeError(f"{name} has no Temperature (a localised firmware build? use the English one)", device)
    if block["Temperature"] is None:
        raise DecodeError(f"{name}.Temperature is null: the probe was not read (wiring or power)", device)
    temperature = number(block["Temperature"], f"{name}.Temperature", device)
    unit = data.get("TempUnit", "C")
    if unit == "F":
        temperature = round((temperature - 32) * 5 / 9, 2)
    elif unit != "C":
        raise DecodeError("TempUnit is neither C nor F", device)
    metrics: Metrics = {"temperature_c": temperature}
    if block.get("Humidity") is not None:
        metrics["humidity_pct"] = number(block["Humidity"], f"{name}.Humidity", device)
    return metrics


class _Layout:
    """One FullTopic with its prefixes: builds topics and parses them back."""

    def __init__(self, dialect: TasmotaDialect) -> None:
        self.dialect = dialect
        prefixes = dialect.prefixes
        self.roles = {prefixes.cmnd: "cmnd", prefixes.stat: "stat", prefixes.tele: "tele"}
        parts = []
        for level in dialect.full_topic[:-1].split("/"):
            parts.append({"%prefix%": "(?P<prefix>[^/]+)", "%topic%": "(?P<topic>[^/]+)"}.get(level, re.escape(level)))
        self.pattern = re.compile("^" + "/".join(parts) + "/(?P<suffix>[^/]+)$")

    def topic(self, role: str, name: str, suffix: str) -> str:
        prefix = getattr(self.dialect.prefixes, role)
        return self.dialect.full_topic.replace("%prefix%", prefix).replace("%topic%", name) + suffix

    def parse(self, topic: str) -> tuple[str, str, str] | None:
        """(role cmnd/stat/tele, Tasmota topic, suffix), or None when the topic is not of this layout."""
        match = self.pattern.match(topic)
        if match is None or match["prefix"] not in self.roles:
            return None
        return self.roles[match["prefix"]], match["topic"], match["suffix"]


class TasmotaDriver(Driver):
    vendor: ClassVar[Vendor] = Vendor.TASMOTA

    def __init__(self, devices: Any, *, client_id: str = "floorwatch-edge") -> None:
        super().__init__(devices, client_id=client_id)
        self._layouts: dict[TasmotaDialect, _Layout] = {}
        self._by_topic: dict[tuple[TasmotaDialect, str], list[DeviceConfig]] = {}
        for device in self.devices:
            dialect = device.tasmota
            self._layouts.setdefault(dialect, _Layout(dialect))
            self._by_topic.setdefault((dialect, device.address), []).append(device)
        if not self._layouts:
            self._layouts[TasmotaDialect()] = _Layout(TasmotaDialect())

    def topic_filters(self) -> list[str]:
        filters: list[str] = []
        if self.discover:
            filters += [layout.topic("tele", "+", "LWT") for layout in self._layouts.values()]
        for dialect, name in self._by_topic:
            layout = self._layouts[dialect]
            # stat/+ covers RESULT, POWER<n> and STATUS<n>; overlapping filters would deliver twice.
            filters += [layout.topic("tele", name, "SENSOR"), layout.topic("tele", name, "STATE"),
                        layout.topic("stat", name, "+")]
            if not self.discover:
                filters.append(layout.topic("tele", name, "LWT"))
        return sorted(set(filters))

    def _parse(self, topic: str) -> tuple[str, str, str, list[DeviceConfig]] | None:
        """(role, Tasmota topic, suffix, devices there); devices is empty for an unconfigured topic."""
        first: tuple[str, str, str] | None = None
        for dialect, layout in self._layouts.items():
            parsed = layout.parse(topic)
            if parsed is None:
                continue
            devices = self._by_topic.get((dialect, parsed[1]))
            if devices:
                return (*parsed, devices)
            first = first or parsed
        return (*first, []) if first is not None else None

    def announced(self, topic: str, payload: bytes) -> str | None:
        # Every Tasmota publishes a retained LWT "Online" under its topic when it connects.
        parsed = self._parse(topic)
        if parsed is None or parsed[0] != "tele" or parsed[2] != "LWT" or parsed[3]:
            return None
        return parsed[1] if payload.strip() == b"Online" else None

    def devices_at(self, topic: str) -> list[str]:
        parsed = self._parse(topic)
        return [d.id for d in parsed[3]] if parsed is not None else []

    def decode(self, topic: str, payload: bytes, now: datetime | None = None) -> list[Item]:
        ts = now or utcnow()
        parsed = self._parse(topic)
        if parsed is None or not parsed[3]:
            return []
        role, _, suffix, devices = parsed
        first = devices[0].id
        if role == "stat" and suffix in _WRAPPED:
            # Answers to `Status 8/10/11`: the SENSOR or STATE object, one level down.
            key = _WRAPPED[suffix]
            inner = json_object(payload, first).get(key)
            if not isinstance(inner, dict):
                raise DecodeError(f"{suffix} answer without a {key} object", first)
            if key == "StatusSNS":
                return self._sensor(devices, inner, ts)
            return self._relay_states(devices, inner, ts, with_wifi=True)
        if role == "tele" and suffix == "SENSOR":
            return self._sensor(devices, json_object(payload, first), ts)
        if role == "tele" and suffix == "STATE":
            return self._relay_states(devices, json_object(payload, first), ts, with_wifi=True)
        if role == "tele" and suffix == "LWT":
            text = payload.decode("utf-8", "replace").strip()
            if text not in ("Online", "Offline"):
                raise DecodeError("LWT payload is neither Online nor Offline", first)
            kind = EventType.DEVICE_ONLINE if text == "Online" else EventType.DEVICE_OFFLINE
            return [event(d.id, ts, kind, detail="tasmota LWT") for d in devices]
        if role == "stat" and suffix == "RESULT":
            return self._relay_states(devices, json_object(payload, first), ts, with_wifi=False)
        if role == "stat" and _POWER_KEY.match(suffix):
            text = payload.decode("utf-8", "replace").strip()
            self._relay_word(devices[0], text, suffix)  # a clear error for anything else
            return self._relay_states(devices, {suffix: text}, ts, with_wifi=False)
        return []  # other STATUS<n>, INFO*, UPTIME, ...: nothing we measure

    def _sensor(self, devices: list[DeviceConfig], data: dict[str, Any], ts: datetime) -> list[Item]:
        energy = data.get("ENERGY")
        items: list[Item] = []
        for device in devices:
            metrics: Metrics | None = {}
            if device.kind is Kind.DOOR_CONTROLLER:
                items += self._card(device, data, ts)
                continue
            if device.kind in _PROBES:
                assert device.sensor is not None  # the configuration requires it
                metrics = probe_metrics(data, device.sensor, device.id)
            elif isinstance(energy, dict):
                metrics = energy_metrics(energy, device.channel, device.id)
            analog = data.get("ANALOG")
            if (metrics is not None and device.kind not in _PROBES and device.channel is None
                    and isinstance(analog, dict) and "Temperature" in analog):
                metrics["device_temp_c"] = number(analog["Temperature"], "ANALOG.Temperature", device.id)
            items += reading(device.id, ts, metrics or {})
        return items

    @staticmethod
    def _card(device: DeviceConfig, data: dict[str, Any], ts: datetime) -> list[Item]:
        """A card read by a Tasmota RFID reader. The reader checks nothing itself (a Tasmota rule may
        open a relay on any card), so the read is reported as granted and says so in its detail."""
        block = data.get(device.sensor or "")
        if not isinstance(block, dict):
            return []
        uid = block.get("UID")
        if not isinstance(uid, str | int) or isinstance(uid, bool) or not 1 <= len(str(uid)) <= 64:
            raise DecodeError(f"{device.sensor}.UID must be a card number of 1 to 64 characters", device.id)
        if str(uid) in _GHOST_UIDS:
            raise DecodeError(f"{device.sensor}.UID is all zeros: a ghost read, not a card", device.id)
        return [event(device.id, ts, EventType.ACCESS_GRANTED, badge=str(uid),
                      detail=f"card read by a Tasmota {device.sensor} reader (the reader does not check it)")]

    @staticmethod
    def _relay_word(device: DeviceConfig, value: str, key: str) -> bool:
        off, on = device.tasmota.state_text
        if value.upper() == on.upper():
            return True
        if value.upper() == off.upper():
            return False
        raise DecodeError(f"{key} is neither {off!r} nor {on!r} (StateText1/StateText2 in the configuration?)",
                          device.id)

    def _relay_states(self, devices: list[DeviceConfig], data: dict[str, Any], ts: datetime,
                      *, with_wifi: bool) -> list[Item]:
        relays: dict[int, bool] = {}
        for key, value in data.items():
            match = _POWER_KEY.match(key)
            if match and isinstance(value, str):
                relays[int(match.group(1) or 1)] = self._relay_word(devices[0], value, key)
        rssi: float | int | None = None
        wifi = data.get("Wifi")
        if with_wifi and isinstance(wifi, dict) and wifi.get("Signal") is not None:
            rssi = number(wifi["Signal"], "Wifi.Signal", devices[0].id)
        items: list[Item] = []
        for device in devices:
            metrics: Metrics = {}
            # A whole-device entry owns the relay only when there is exactly one.
            index = device.channel if device.channel is not None else (1 if set(relays) == {1} else None)
            if index is not None and index in relays and device.kind in _KINDS:
                metrics["relay_on"] = relays[index]
            if rssi is not None:
                metrics["rssi_dbm"] = rssi
            items += reading(device.id, ts, metrics)
        return items

    def encode(self, command: Command) -> tuple[str, bytes]:
        device = self._target(command, _KINDS, _ACTIONS)
        suffix = f"POWER{device.channel}" if device.channel is not None else "POWER"
        dialect = device.tasmota
        # Tasmota takes ON/OFF whatever its StateText says (https://tasmota.github.io/docs/Commands/#power).
        return (self._layouts[dialect].topic("cmnd", device.address, suffix),
                b"ON" if command.action is Action.RELAY_ON else b"OFF")
