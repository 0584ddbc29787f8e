"""Zigbee2MQTT: smoke detectors, temperature/humidity sensors, water-leak sensors, door contacts,
sirens (the `address` is the device's friendly_name; base topic `zigbee2mqtt`).

Device layer (https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html):

- `zigbee2mqtt/<name>`               the whole device state as JSON: smoke, temperature, humidity,
                                     water_leak, contact (true = CLOSED), battery, battery_low, tamper,
                                     linkquality, alarm (sirens), device_temperature ...
- `zigbee2mqtt/<name>/availability`  `{"state":"online"}` (current) or `online` / `offline` (the legacy
                                     text payload, `advanced.legacy_availability_payload: true`)
- `zigbee2mqtt/<name>/set`           commands; sirens take `{"warning": {"mode": "fire",
                                     "level": "very_high", "strobe": true, "duration": 300}}`
                                     and `{"warning": {"mode": "stop"}}`
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from edge.config import DeviceConfig, Kind, Vendor
from edge.drivers.base import (
    Driver,
    Item,
    Metrics,
    availability_event,
    boolean,
    event,
    json_object,
    number,
    reading,
    utcnow,
)
from gateway.contract import Action, Command, Event, EventType

BASE_TOPIC = "zigbee2mqtt"
_SIREN_ACTIONS = frozenset({Action.SIREN_ON, Action.SIREN_OFF})

# vendor field -> canonical metric, for plain numbers
_NUMBERS = {
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "battery": "battery_pct",
    "device_temperature": "device_temp_c",
    "linkquality": "linkquality",  # an LQI (0-255), not dBm: stored under its own name
    "co": "co_ppm",
    "smoke_density": "smoke_obscuration_pct",
}
# vendor field -> canonical metric, for plain booleans (events for some are added below)
_BOOLEANS = {
    "smoke": "smoke",
    "water_leak": "water_leak",
    "battery_low": "battery_low",
    "tamper": "tamper",
    "fault": "detector_fault",
    "alarm": "siren_on",
}


class Zigbee2MqttDriver(Driver):
    vendor: ClassVar[Vendor] = Vendor.ZIGBEE2MQTT

    def __init__(
        self, devices: Any, *, client_id: str = "floorwatch-edge", siren_duration_s: int = 300
    ) -> None:
        super().__init__(devices, client_id=client_id)
        self._by_name: dict[str, DeviceConfig] = {d.address: d for d in self.devices}
        self.siren_duration_s = siren_duration_s

    def topic_filters(self) -> list[str]:
        # Exact topics: friendly names may contain "/" (kitchen/floor_light). With discovery, one
        # wildcard takes the availability of every one-level name instead (no overlapping filters).
        filters = [f"{BASE_TOPIC}/{name}" for name in self._by_name]
        filters += [f"{BASE_TOPIC}/{name}/availability" for name in self._by_name
                    if not self.discover or "/" in name]
        return [*filters, f"{BASE_TOPIC}/+/availability"] if self.discover else filters

    def announced(self, topic: str, payload: bytes) -> str | None:
        # Zigbee2MQTT publishes `<base>/<friendly name>/availability` online for a device it can reach;
        # a newly joined device is named after its IEEE address until someone renames it.
        if not topic.endswith("/availability") or not topic.startswith(f"{BASE_TOPIC}/"):
            return None
        name = topic[len(BASE_TOPIC) + 1:].removesuffix("/availability")
        if "/" in name or name == "bridge" or name in self._by_name:
            return None
        state: object = payload.decode("utf-8", "replace").strip()
        if isinstance(state, str) and state.startswith("{"):  # Zigbee2MQTT 1.x+: JSON availability
            try:
                data = json.loads(state)
            except ValueError:
                return None
            state = data.get("state") if isinstance(data, dict) else None
        return name if state == "online" else None

    def devices_at(self, topic: str) -> list[str]:
        name = topic.removeprefix(f"{BASE_TOPIC}/").removesuffix("/availability")
        device = self._by_name.get(name)
        return [device.id] if device else []

    def decode(self, topic: str, payload: bytes, now: datetime | None = None) -> list[Item]:
        ts = now or utcnow()
        if not topic.startswith(f"{BASE_TOPIC}/"):
            return []
        name = topic[len(BASE_TOPIC) + 1:]
        device = self._by_name.get(name)
        if device is not None:
            return self._decode_state(device, json_object(payload, device.id), ts)
        if name.endswith("/availability"):
            device = self._by_name.get(name.removesuffix("/availability"))
            if device is not None:
                return [self._availability(device, payload, ts)]
        return []

    def _availability(self, device: DeviceConfig, payload: bytes, ts: datetime) -> Event:
        return availability_event(device, payload, ts, "zigbee2mqtt")

    def _decode_state(self, device: DeviceConfig, data: dict[str, Any], ts: datetime) -> list[Item]:
        metrics: Metrics = {}
        for field, metric in _NUMBERS.items():
            if data.get(field) is not None:
                metrics[metric] = number(data[field], field, device.id)
        for field, metric in _BOOLEANS.items():
            if data.get(field) is not None:
                metrics[metric] = boolean(data[field], field, device.id)
        if data.get("contact") is not None:
            # Zigbee2MQTT: contact=true means the magnet is near, i.e. the door is CLOSED.
            metrics["door_open"] = not boolean(data["contact"], "contact", device.id)
        events = self._events(device, metrics, ts)
        return [*events[0], *reading(device.id, ts, metrics), *events[1]]

    def _events(self, device: DeviceConfig, metrics: Metrics, ts: datetime) -> tuple[list[Item], list[Item]]:
        """Transitions as events: alarms go before the reading that carries them, clears after."""
        first: list[Item] = []
        after: list[Item] = []
        pairs = (
            ("smoke", EventType.DETECTOR_ALARM, EventType.DETECTOR_CLEAR),
            ("water_leak", EventType.WATER_LEAK, EventType.WATER_LEAK_CLEAR),
            ("door_open", EventType.DOOR_OPENED, EventType.DOOR_CLOSED),
            ("tamper", EventType.TAMPER, None),
            ("detector_fault", EventType.DETECTOR_FAULT, None),
        )
        for metric, on, off in pairs:
            value = metrics.get(metric)
            if not isinstance(value, bool):
                continue
            changed = self.transitions.change(device.id, metric, value)
            if changed is True:
                first.append(event(device.id, ts, on))
            elif changed is False and off is not None:
                after.append(event(device.id, ts, off))
        return first, after

    def encode(self, command: Command) -> tuple[str, bytes]:
        device = self._target(command, frozenset({Kind.SIREN}), _SIREN_ACTIONS)
        if command.action is Action.SIREN_ON:
            warning = {"mode": "fire", "level": "very_high", "strobe": True,
                       "duration": self.siren_duration_s}
        else:
            warning = {"mode": "stop", "strobe": False, "duration": 0}
        return f"{BASE_TOPIC}/{device.address}/set", json.dumps({"warning": warning}).encode()
