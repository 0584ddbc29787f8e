"""Zigbee2MQTT: smoke detectors, temperature/humidity sensors, water-leak sensors, door contacts,
sirens (the `address` is the device's friendly_name; the base topic `zigbee2mqtt` unless the device
or the edge's `dialects.zigbee2mqtt` sets another: several bridges can share one floor broker).

Device layer (https://www.zigbee2mqtt.io/guide/usage/mqtt_topics_and_messages.html):

- `zigbee2mqtt/<name>`               the whole device state as JSON: smoke, temperature, humidity,
                                     water_leak, contact (true = CLOSED), battery, battery_low, tamper,
                                     linkquality, alarm (sirens), device_temperature ...
- `zigbee2mqtt/<name>/availability`  `{"state":"online"}` (current) or `online` / `offline` (the legacy
                                     text payload, `advanced.legacy_availability_payload: true`)
- `zigbee2mqtt/bridge/state`         `{"state":"online"}` / `{"state":"offline"}` (its Last Will), or the
                                     legacy text `online` / `offline`: one bridge_offline / bridge_online
                                     event naming the bridge and the devices behind it (the server raises
                                     one supervision alarm for the bridge); the first state seen (the
                                     retained one at start-up) is reported too, online included
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
    DecodeError,
    Driver,
    Item,
    Metrics,
    availability_event,
    boolean,
    event,
    json_object,
    number,
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
# boolean metric -> the event when it turns true, the event when it turns false
_STATE_EVENTS = (
    ("smoke", EventType.DETECTOR_ALARM, EventType.DETECTOR_CLEAR),
    ("water_leak", EventType.WATER_LEAK, EventType.WATER_LEAK_CLEAR),
    ("door_open", EventType.DOOR_OPENED, EventType.DOOR_CLOSED),
    ("tamper", EventType.TAMPER, None),
    ("detector_fault", EventType.DETECTOR_FAULT, None),
)


def bridge_details(base: str, ids: list[str], limit: int = 500) -> list[tuple[list[str], str]]:
    """The devices behind a bridge in chunks whose `{"bridge", "devices"}` JSON fits an event's detail."""
    chunks: list[tuple[list[str], str]] = []
    chunk: list[str] = []
    for device in ids:
        if chunk and len(json.dumps({"bridge": base[:200], "devices": [*chunk, device]})) > limit:
            chunks.append((chunk, json.dumps({"bridge": base[:200], "devices": chunk})))
            chunk = []
        chunk.append(device)
    if chunk:
        chunks.append((chunk, json.dumps({"bridge": base[:200], "devices": chunk})))
    return chunks


class Zigbee2MqttDriver(Driver):
    vendor: ClassVar[Vendor] = Vendor.ZIGBEE2MQTT

    def __init__(
        self, devices: Any, *, client_id: str = "floorwatch-edge", siren_duration_s: int = 300
    ) -> None:
        super().__init__(devices, client_id=client_id)
        self._by_topic: dict[str, DeviceConfig] = {
            f"{d.base_topic or BASE_TOPIC}/{d.address}": d for d in self.devices}
        self._bridges: dict[str, list[DeviceConfig]] = {}
        for device in self.devices:
            self._bridges.setdefault(device.base_topic or BASE_TOPIC, []).append(device)
        if not self._bridges:
            self._bridges[BASE_TOPIC] = []
        self._bridge_down: dict[str, bool] = {}
        self.siren_duration_s = siren_duration_s

    def topic_filters(self) -> list[str]:
        filters = list(self._by_topic)
        filters += [f"{t}/availability" for t in self._by_topic]
        filters += [f"{base}/bridge/state" for base, devices in self._bridges.items() if devices]
        return filters

    def discovery_filters(self) -> list[str]:
        # Friendly names may hold any number of "/" (floor3/zone1/plug-12), so no `+` filter covers every
        # stranger's availability: one `#` per bridge takes them all. A base nested in another
        # (`zigbee2mqtt/f4` in `zigbee2mqtt`) is already under the outer one's `#`.
        if not self.discover:
            return []
        return [f"{base}/#" for base in self._bridges
                if not any(base.startswith(other + "/") for other in self._bridges)]

    def _base_of(self, topic: str) -> tuple[str, str] | None:
        """(base topic, rest) for a topic under one of our bridges (longest base first)."""
        for base in sorted(self._bridges, key=len, reverse=True):
            if topic.startswith(base + "/"):
                return base, topic[len(base) + 1:]
        return None

    def announced(self, topic: str, payload: bytes) -> str | None:
        # Zigbee2MQTT publishes `<base>/<friendly name>/availability` online for a device it can reach;
        # a newly joined device is named after its IEEE address until someone renames it.
        split = self._base_of(topic)
        if not topic.endswith("/availability") or split is None:
            return None
        base, rest = split
        name = rest.removesuffix("/availability")
        if not name or name == "bridge" or name.startswith("bridge/") or f"{base}/{name}" in self._by_topic:
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
        device = self._by_topic.get(topic.removesuffix("/availability"))
        if device is not None:
            return [device.id]
        split = self._base_of(topic)
        if split is not None and split[1] == "bridge/state":
            return [d.id for d in self._bridges[split[0]]]
        return []

    def decode(self, topic: str, payload: bytes, now: datetime | None = None) -> list[Item]:
        ts = now or utcnow()
        device = self._by_topic.get(topic)
        if device is not None:
            return self._decode_state(device, json_object(payload, device.id), ts)
        if topic.endswith("/availability"):
            device = self._by_topic.get(topic.removesuffix("/availability"))
            if device is not None:
                return [self._availability(device, payload, ts)]
        split = self._base_of(topic)
        if split is not None and split[1] == "bridge/state" and self._bridges[split[0]]:
            return self._bridge_state(split[0], payload, ts)
        return []

    def _bridge_state(self, base: str, payload: bytes, ts: datetime) -> list[Item]:
        devices = self._bridges[base]
        text = payload.decode("utf-8", "replace").strip()
        state: object = text
        if text.startswith("{"):
            data = json_object(payload, devices[0].id)
            state = data.get("state")
        if state not in ("online", "offline"):
            raise DecodeError("bridge/state is neither online nor offline", devices[0].id)
        down = state == "offline"
        was = self._bridge_down.get(base)
        self._bridge_down[base] = down
        if was == down:
            return []  # a repeat
        # The first state seen (the retained one at start-up) is reported too: after an edge restart the
        # server may still hold the bridge offline and only this "online" tells it otherwise.
        kind = EventType.BRIDGE_OFFLINE if down else EventType.BRIDGE_ONLINE
        return [event(chunk[0], ts, kind, count=len(devices), detail=detail)
                for chunk, detail in bridge_details(base, [d.id for d in devices])]

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
        return self.reading_with_state_events(device.id, ts, metrics, _STATE_EVENTS)

    def encode(self, command: Command) -> tuple[str, bytes]:
        device = self._target(command, frozenset({Kind.SIREN}), _SIREN_ACTIONS)
        if command.action is Action.SIREN_ON:
            warning = {"mode": "fire", "level": "very_high", "strobe": True,
                       "duration": self.siren_duration_s}
        else:
            warning = {"mode": "stop", "strobe": False, "duration": 0}
        return f"{device.base_topic or BASE_TOPIC}/{device.address}/set", json.dumps({"warning": warning}).encode()
