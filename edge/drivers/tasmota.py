"""Tasmota plugs and multi-outlet strips (Sonoff POW, Gosund, Athom, Shelly 2.5 on Tasmota ...).

Device layer, with the default FullTopic `%prefix%/%topic%/` (the `address` is the Tasmota Topic;
`channel` is the POWER index from 1, omitted for a whole-device meter):

- `tele/<topic>/SENSOR`   {"Time": ..., "ENERGY": {"Total" kWh, "Power" W, "Voltage" V, "Current" A,
                           "Factor", ...}}; on multi-channel meters Power/Current/Factor (and sometimes
                           Voltage) are arrays, one value per channel, and Total is consolidated
- `tele/<topic>/STATE`    {"POWER": "ON"} or {"POWER1": "ON", "POWER2": "OFF"}, "Wifi": {"Signal": dBm}
- `stat/<topic>/POWER[n]` `ON` / `OFF` after every change
- `stat/<topic>/RESULT`   {"POWER2": "OFF"} as the answer to a command
- `tele/<topic>/LWT`      `Online` / `Offline` (retained Last Will)
- command: `cmnd/<topic>/POWER[n]` with `ON` / `OFF`

See https://tasmota.github.io/docs/MQTT/ and https://tasmota.github.io/docs/Commands/#power .
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

from edge.config import DeviceConfig, Kind, Vendor
from edge.drivers.base import (
    DecodeError,
    Driver,
    Item,
    Metrics,
    boolean,
    event,
    json_object,
    number,
    reading,
    utcnow,
)
from gateway.contract import Action, Command, EventType

_ACTIONS = frozenset({Action.RELAY_OFF, Action.RELAY_ON})
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


class TasmotaDriver(Driver):
    vendor: ClassVar[Vendor] = Vendor.TASMOTA

    def __init__(self, devices: Any, *, client_id: str = "floorwatch-edge") -> None:
        super().__init__(devices, client_id=client_id)
        self._by_topic: dict[str, list[DeviceConfig]] = {}
        for device in self.devices:
            self._by_topic.setdefault(device.address, []).append(device)

    def topic_filters(self) -> list[str]:
        filters: list[str] = ["tele/+/LWT"] if self.discover else []
        for topic in self._by_topic:
            # stat/+ covers RESULT and POWER<n>; overlapping filters would deliver messages twice.
            filters += [f"tele/{topic}/SENSOR", f"tele/{topic}/STATE", f"stat/{topic}/+"]
            if not self.discover:
                filters.append(f"tele/{topic}/LWT")
        return sorted(set(filters))

    def announced(self, topic: str, payload: bytes) -> str | None:
        # Every Tasmota publishes a retained LWT "Online" under its topic when it connects.
        if not topic.endswith("/LWT"):
            return None
        parts = topic.split("/")
        if len(parts) != 3 or parts[0] != "tele" or parts[1] in self._by_topic:
            return None
        return parts[1] if payload.strip() == b"Online" else None

    def devices_at(self, topic: str) -> list[str]:
        parts = topic.split("/")
        return [d.id for d in self._by_topic.get(parts[1], [])] if len(parts) == 3 else []

    def decode(self, topic: str, payload: bytes, now: datetime | None = None) -> list[Item]:
        ts = now or utcnow()
        parts = topic.split("/")
        if len(parts) != 3:
            return []
        prefix, name, suffix = parts
        devices = self._by_topic.get(name)
        if not devices:
            return []
        first = devices[0].id
        if prefix == "tele" and suffix == "SENSOR":
            data = json_object(payload, first)
            energy = data.get("ENERGY")
            items: list[Item] = []
            for device in devices:
                metrics: Metrics = {}
                if isinstance(energy, dict):
                    metrics = energy_metrics(energy, device.channel, device.id)
                analog = data.get("ANALOG")
                if device.channel is None and isinstance(analog, dict) and "Temperature" in analog:
                    metrics["device_temp_c"] = number(analog["Temperature"], "ANALOG.Temperature", device.id)
                items += reading(device.id, ts, metrics)
            return items
        if prefix == "tele" and suffix == "STATE":
            return self._relay_states(devices, json_object(payload, first), ts, with_wifi=True)
        if prefix == "tele" and suffix == "LWT":
            text = payload.decode("utf-8", "replace").strip()
            if text not in ("Online", "Offline"):
                raise DecodeError("LWT payload is neither Online nor Offline", first)
            kind = EventType.DEVICE_ONLINE if text == "Online" else EventType.DEVICE_OFFLINE
            return [event(d.id, ts, kind, detail="tasmota LWT") for d in devices]
        if prefix == "stat" and suffix == "RESULT":
            return self._relay_states(devices, json_object(payload, first), ts, with_wifi=False)
        if prefix == "stat" and _POWER_KEY.match(suffix):
            text = payload.decode("utf-8", "replace").strip()
            if text.upper() not in ("ON", "OFF"):
                raise DecodeError(f"{suffix} payload is neither ON nor OFF", first)
            return self._relay_states(devices, {suffix: text}, ts, with_wifi=False)
        return []  # STATUS*, INFO*, UPTIME, ...: nothing we measure

    def _relay_states(self, devices: list[DeviceConfig], data: dict[str, Any], ts: datetime,
                      *, with_wifi: bool) -> list[Item]:
        relays: dict[int, bool] = {}
        for key, value in data.items():
            match = _POWER_KEY.match(key)
            if match and isinstance(value, str):
                relays[int(match.group(1) or 1)] = boolean(value, key, devices[0].id)
        rssi: float | int | None = None
        wifi = data.get("Wifi")
        if with_wifi and isinstance(wifi, dict) and wifi.get("Signal") is not None:
            rssi = number(wifi["Signal"], "Wifi.Signal", devices[0].id)
        items: list[Item] = []
        for device in devices:
            metrics: Metrics = {}
            # A whole-device entry owns the relay only when there is exactly one.
            index = device.channel if device.channel is not None else (1 if set(relays) == {1} else None)
            if index is not None and index in relays:
                metrics["relay_on"] = relays[index]
            if rssi is not None:
                metrics["rssi_dbm"] = rssi
            items += reading(device.id, ts, metrics)
        return items

    def encode(self, command: Command) -> tuple[str, bytes]:
        device = self._target(command, _KINDS, _ACTIONS)
        suffix = f"POWER{device.channel}" if device.channel is not None else "POWER"
        return f"cmnd/{device.address}/{suffix}", (b"ON" if command.action is Action.RELAY_ON else b"OFF")
