"""Shelly plugs and relays (Plus Plug S, Plug S Gen3, 1PM, Pro 4PM ...; Gen1 Plug S, 1PM, 2.5) and
temperature sensors (Plus H&T, H&T Gen3; Gen1 H&T) over MQTT.

Gen2/Gen3/Gen4 device layer (the `address` is the device's MQTT topic prefix, by default its id such
as `shellyplugsg3-a1b2c3`, any prefix set in its MQTT settings, "/" included; `channel` is the switch id,
0 when omitted):

- `<prefix>/status/switch:<n>`   full Switch status ("Generic status update over MQTT" on):
  output, apower (W), voltage (V), current (A), aenergy.total (Wh), temperature.tC
- `<prefix>/events/rpc`          NotifyStatus with the changed part of one or more components
  ("RPC status notifications over MQTT", on by default); NotifyFullStatus (every component, sent
  after a (re)connect) the same way; temperature:<n>.tC and humidity:<n>.rh for H&T sensors;
  NotifyEvent: switch overpower/overvoltage/overtemp events as a device fault, others ignored
- `<prefix>/online`              `true` / `false` (the device's Last Will)
- `<prefix>/rpc`                 JSON-RPC requests; the answer goes to `<src>/rpc`

Gen1 device layer (`gen: 1`; the `address` is the device id, e.g. `shellyplug-s-040BAD`; `channel`
is the relay index from 0):

- `shellies/<id>/relay/<n>`         `on` / `off` / `overpower` (switched off by its own protection)
- `shellies/<id>/relay/<n>/power`   instantaneous power, W
- `shellies/<id>/relay/<n>/energy`  energy counter in watt-minutes (converted to Wh)
- `shellies/<id>/sensor/temperature|humidity|battery`  H&T (°C as configured on the device)
- `shellies/<id>/online`            `true` / `false` (Last Will);  `shellies/announce`: {"id", "mac", ...}
- command `shellies/<id>/relay/<n>/command` with `on` / `off`

See https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch,
https://shelly-api-docs.shelly.cloud/gen2/General/Notifications and
https://shelly-api-docs.shelly.cloud/gen1/#shelly-plug-plugs-mqtt .
"""

from __future__ import annotations

import itertools
import json
import logging
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

log = logging.getLogger(__name__)

_ACTIONS = frozenset({Action.RELAY_OFF, Action.RELAY_ON})
_KINDS = frozenset({Kind.SMART_PLUG, Kind.STRIP_METER})
GEN1_ROOT = "shellies"
_GEN1_SENSORS = {"temperature": "temperature_c", "humidity": "humidity_pct", "battery": "battery_pct"}
_FAULT_EVENTS = frozenset({"overpower", "overvoltage", "undervoltage", "overtemp", "overcurrent"})


def switch_metrics(status: dict[str, Any], device: str) -> Metrics:
    """Canonical metrics from a (possibly partial) Switch status object."""
    metrics: Metrics = {}
    if "output" in status:
        metrics["relay_on"] = boolean(status["output"], "output", device)
    for field, metric in (("apower", "power_w"), ("voltage", "voltage_v"), ("current", "current_a"),
                          ("pf", "power_factor")):
        if status.get(field) is not None:
            metrics[metric] = number(status[field], field, device)
    energy = status.get("aenergy")
    if isinstance(energy, dict) and energy.get("total") is not None:
        metrics["energy_wh"] = number(energy["total"], "aenergy.total", device)
    temperature = status.get("temperature")
    if isinstance(temperature, dict) and temperature.get("tC") is not None:
        metrics["device_temp_c"] = number(temperature["tC"], "temperature.tC", device)
    errors = status.get("errors")
    if isinstance(errors, list):
        # Shelly reports "overpower", "overvoltage", "overtemp" here when it protected itself.
        metrics["device_fault"] = bool(errors)
    return metrics


def sensor_metrics(params: dict[str, Any], index: int, device: str) -> Metrics:
    """Temperature, humidity and battery of an H&T from NotifyStatus/NotifyFullStatus params."""
    metrics: Metrics = {}
    temperature = params.get(f"temperature:{index}")
    if isinstance(temperature, dict) and "tC" in temperature:
        if temperature["tC"] is None:
            raise DecodeError(f"temperature:{index}.tC is null: the sensor was not read", device)
        metrics["temperature_c"] = number(temperature["tC"], f"temperature:{index}.tC", device)
    humidity = params.get(f"humidity:{index}")
    if isinstance(humidity, dict) and humidity.get("rh") is not None:
        metrics["humidity_pct"] = number(humidity["rh"], f"humidity:{index}.rh", device)
    power = params.get("devicepower:0")
    battery = power.get("battery") if isinstance(power, dict) else None
    if isinstance(battery, dict) and battery.get("percent") is not None:
        metrics["battery_pct"] = number(battery["percent"], "devicepower:0.battery.percent", device)
    return metrics


class ShellyDriver(Driver):
    vendor: ClassVar[Vendor] = Vendor.SHELLY

    def __init__(self, devices: Any, *, client_id: str = "floorwatch-edge") -> None:
        super().__init__(devices, client_id=client_id)
        # prefix -> {switch id -> device}; Gen1 ids live under shellies/ as "shellies/<id>"
        self._by_prefix: dict[str, dict[int, DeviceConfig]] = {}
        for device in self.devices:
            prefix = f"{GEN1_ROOT}/{device.address}" if device.gen == 1 else device.address
            self._by_prefix.setdefault(prefix, {})[device.channel or 0] = device
        # Longest first: a prefix may contain "/" and another may be its first levels.
        self._prefixes = sorted(self._by_prefix, key=len, reverse=True)
        self._rpc_ids = itertools.count(1)

    def topic_filters(self) -> list[str]:
        filters: list[str] = ["+/online", f"{GEN1_ROOT}/+/online", f"{GEN1_ROOT}/announce"] if self.discover else []
        gen2 = False
        for prefix, channels in self._by_prefix.items():
            first = next(iter(channels.values()))
            if first.gen == 1:
                filters += [f"{prefix}/relay/#", f"{prefix}/sensor/+"]
            else:
                gen2 = True
                filters += [f"{prefix}/status/switch:{n}" for n in sorted(channels)]
                filters.append(f"{prefix}/events/rpc")
            if not self.discover or prefix.count("/") != (1 if first.gen == 1 else 0):
                filters.append(f"{prefix}/online")
        if gen2:
            filters.append(f"{self.client_id}/rpc")  # answers to our Switch.Set requests
        return sorted(set(filters))

    def _split(self, topic: str) -> tuple[str, str]:
        """(configured prefix, rest) for a topic under a configured device; ("", topic) otherwise."""
        for prefix in self._prefixes:
            if topic.startswith(prefix + "/"):
                return prefix, topic[len(prefix) + 1:]
        return "", topic

    def devices_at(self, topic: str) -> list[str]:
        prefix, _ = self._split(topic)
        return [d.id for d in self._by_prefix.get(prefix, {}).values()]

    def announced(self, topic: str, payload: bytes) -> str | None:
        if topic == f"{GEN1_ROOT}/announce":  # a Gen1 device answering `shellies/command announce`
            try:
                data = json.loads(payload)
            except ValueError:
                return None
            address = data.get("id") if isinstance(data, dict) else None
            known = isinstance(address, str) and f"{GEN1_ROOT}/{address}" in self._by_prefix
            return address if isinstance(address, str) and address and not known else None
        # A device publishes `<topic prefix>/online` true when it connects (retained).
        prefix, _, rest = topic.rpartition("/")
        if rest != "online" or prefix in self._by_prefix or not prefix:
            return None
        if "/" in prefix and not prefix.startswith(f"{GEN1_ROOT}/"):
            return None
        return prefix.removeprefix(f"{GEN1_ROOT}/") if payload.strip().lower() == b"true" else None

    def decode(self, topic: str, payload: bytes, now: datetime | None = None) -> list[Item]:
        ts = now or utcnow()
        if topic == f"{self.client_id}/rpc":
            return self._decode_rpc_answer(payload)
        prefix, rest = self._split(topic)
        channels = self._by_prefix.get(prefix)
        if channels is None:
            return []
        if rest == "online":
            text = payload.decode("utf-8", "replace").strip().lower()
            if text not in ("true", "false"):
                first = next(iter(channels.values())).id
                raise DecodeError("online payload is neither true nor false", first)
            kind = EventType.DEVICE_ONLINE if text == "true" else EventType.DEVICE_OFFLINE
            return [event(d.id, ts, kind, detail="shelly online topic") for d in channels.values()]
        if next(iter(channels.values())).gen == 1:
            return self._decode_gen1(channels, rest, payload, ts)
        if rest.startswith("status/switch:"):
            try:
                switch_id = int(rest.removeprefix("status/switch:"))
            except ValueError:
                return []
            device = channels.get(switch_id)
            if device is None:
                return []
            return reading(device.id, ts, switch_metrics(json_object(payload, device.id), device.id))
        if rest == "events/rpc":
            return self._decode_notification(channels, payload, ts)
        return []

    def _decode_gen1(self, channels: dict[int, DeviceConfig], rest: str, payload: bytes, ts: datetime) -> list[Item]:
        parts = rest.split("/")
        text = payload.decode("utf-8", "replace").strip()
        if parts[0] == "sensor" and len(parts) == 2:
            device = channels.get(0)
            metric = _GEN1_SENSORS.get(parts[1])
            if device is None or metric is None:
                return []
            return reading(device.id, ts, {metric: number(text, f"sensor/{parts[1]}", device.id)})
        if parts[0] != "relay" or len(parts) < 2 or not parts[1].isdigit():
            return []
        device = channels.get(int(parts[1]))
        if device is None:
            return []
        field = "/".join(parts[2:])
        if field == "":
            if text not in ("on", "off", "overpower"):
                raise DecodeError(f"relay/{parts[1]} is neither on, off nor overpower", device.id)
            metrics: Metrics = {"relay_on": text == "on", "device_fault": text == "overpower"}
            return reading(device.id, ts, metrics)
        if field == "power":
            return reading(device.id, ts, {"power_w": number(text, f"relay/{parts[1]}/power", device.id)})
        if field == "energy":
            # Gen1 counts watt-minutes since boot.
            minutes = number(text, f"relay/{parts[1]}/energy", device.id)
            return reading(device.id, ts, {"energy_wh": round(minutes / 60, 3)})
        return []  # relay/<n>/command is ours, echoed back by the broker

    def _decode_notification(
        self, channels: dict[int, DeviceConfig], payload: bytes, ts: datetime
    ) -> list[Item]:
        first = next(iter(channels.values())).id
        frame = json_object(payload, first)
        method = frame.get("method")
        if method not in ("NotifyStatus", "NotifyFullStatus", "NotifyEvent"):
            return []
        params = frame.get("params")
        if not isinstance(params, dict):
            raise DecodeError(f"{method} without params", first)
        if method == "NotifyEvent":
            return self._decode_events(channels, params, ts, first)
        items: list[Item] = []
        for switch_id, device in channels.items():
            if device.kind is Kind.TEMP_SENSOR:
                items += reading(device.id, ts, sensor_metrics(params, switch_id, device.id))
                continue
            status = params.get(f"switch:{switch_id}")
            if isinstance(status, dict):
                items += reading(device.id, ts, switch_metrics(status, device.id))
        return items

    def _decode_events(self, channels: dict[int, DeviceConfig], params: dict[str, Any], ts: datetime,
                       first: str) -> list[Item]:
        events = params.get("events")
        if not isinstance(events, list):
            raise DecodeError("NotifyEvent without an events list", first)
        items: list[Item] = []
        for entry in events:
            if not isinstance(entry, dict) or entry.get("event") not in _FAULT_EVENTS:
                continue
            component = str(entry.get("component", ""))
            if not component.startswith("switch:") or not component[7:].isdigit():
                continue
            device = channels.get(int(component[7:]))
            if device is not None:
                items += reading(device.id, ts, {"device_fault": True})
        return items

    def _decode_rpc_answer(self, payload: bytes) -> list[Item]:
        frame = json_object(payload, None)
        if isinstance(frame.get("error"), dict):
            # The state report that follows (or its absence) decides the command's result.
            log.warning("Shelly %s refused an RPC request: %s", frame.get("src"),
                        frame["error"].get("message"))
        return []

    def encode(self, command: Command) -> tuple[str, bytes]:
        device = self._target(command, _KINDS, _ACTIONS)
        if device.gen == 1:
            word = b"on" if command.action is Action.RELAY_ON else b"off"
            return f"{GEN1_ROOT}/{device.address}/relay/{device.channel or 0}/command", word
        request = {
            "id": next(self._rpc_ids),
            "src": self.client_id,
            "method": "Switch.Set",
            "params": {"id": device.channel or 0, "on": command.action is Action.RELAY_ON},
        }
        return f"{device.address}/rpc", json.dumps(request).encode()
