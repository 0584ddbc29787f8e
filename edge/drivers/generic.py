"""Floorwatch's generic JSON profile for devices without a common standard: door access controllers,
machine-room probes and manual call points. The profile is documented in GENERIC_PROFILE.md beside
this file; an adapter script on the real controller publishes it.

Badge numbers travel in events to the server (roll-call needs them) but never into a log line: every
DecodeError reason here names fields, never values.
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
    reading,
    utcnow,
)
from gateway.contract import Action, Command, Event, EventType

# kind -> topic root of the profile
ROOTS: dict[Kind, str] = {
    Kind.DOOR_CONTROLLER: "access",
    Kind.MR_PROBE: "probe",
    Kind.SMOKE_DETECTOR: "probe",
    Kind.LEAK_SENSOR: "probe",
    Kind.TEMP_SENSOR: "probe",
    Kind.MANUAL_CALL_POINT: "callpoint",
}

_ACCESS_EVENTS = {
    "door_forced": EventType.DOOR_FORCED,
    "door_held_open": EventType.DOOR_HELD_OPEN,
    "request_to_exit": EventType.REQUEST_TO_EXIT,
    "tamper": EventType.TAMPER,
}
_DOOR_ACTIONS = frozenset({Action.DOOR_RELEASE, Action.DOOR_SECURE})
_PROBE_NUMBERS = {"temperature_c", "humidity_pct", "co_ppm", "smoke_obscuration_pct", "battery_pct"}
_PROBE_BOOLEANS = {"water_leak", "smoke", "tamper", "battery_low", "detector_fault"}


class GenericDriver(Driver):
    vendor: ClassVar[Vendor] = Vendor.GENERIC

    def __init__(self, devices: Any, *, client_id: str = "floorwatch-edge") -> None:
        super().__init__(devices, client_id=client_id)
        self._by_topic_root: dict[tuple[str, str], DeviceConfig] = {
            (ROOTS[d.kind], d.address): d for d in self.devices
        }

    def topic_filters(self) -> list[str]:
        filters: list[str] = []
        for (root, name), device in self._by_topic_root.items():
            if device.kind is Kind.DOOR_CONTROLLER:
                filters += [f"{root}/{name}/event", f"{root}/{name}/state", f"{root}/{name}/availability"]
            else:
                filters += [f"{root}/{name}/state", f"{root}/{name}/availability"]
        return filters

    def _split(self, topic: str) -> tuple[DeviceConfig | None, str]:
        root, _, rest = topic.partition("/")
        name, _, leaf = rest.rpartition("/")
        return self._by_topic_root.get((root, name)), leaf

    def devices_at(self, topic: str) -> list[str]:
        device, _ = self._split(topic)
        return [device.id] if device else []

    def decode(self, topic: str, payload: bytes, now: datetime | None = None) -> list[Item]:
        ts = now or utcnow()
        device, leaf = self._split(topic)
        if device is None:
            return []
        if leaf == "availability":
            return [self._availability(device, payload, ts)]
        if device.kind is Kind.DOOR_CONTROLLER and leaf == "event":
            return [self._access_event(device, json_object(payload, device.id), ts)]
        if leaf == "state":
            data = json_object(payload, device.id)
            if device.kind is Kind.DOOR_CONTROLLER:
                return self._door_state(device, data, ts)
            if device.kind is Kind.MANUAL_CALL_POINT:
                return self._call_point(device, data, ts)
            return self._probe_state(device, data, ts)
        return []

    def _availability(self, device: DeviceConfig, payload: bytes, ts: datetime) -> Event:
        return availability_event(device, payload, ts, "generic")

    def _access_event(self, device: DeviceConfig, data: dict[str, Any], ts: datetime) -> Event:
        kind = data.get("type")
        if kind == "badge":
            result = data.get("result")
            if result not in ("granted", "denied"):
                raise DecodeError("badge event: result must be granted or denied", device.id)
            badge = data.get("badge")
            if not isinstance(badge, str) or not 1 <= len(badge) <= 64:
                raise DecodeError("badge event: badge must be a string of 1 to 64 characters", device.id)
            direction = data.get("direction")
            if direction not in (None, "in", "out"):
                raise DecodeError("badge event: direction must be in or out", device.id)
            reason = data.get("reason")
            detail = reason[:200] if result == "denied" and isinstance(reason, str) else None
            return event(device.id, ts,
                         EventType.ACCESS_GRANTED if result == "granted" else EventType.ACCESS_DENIED,
                         badge=badge, direction=direction, detail=detail)
        if isinstance(kind, str) and kind in _ACCESS_EVENTS:
            detail = None
            if kind == "door_held_open" and data.get("held_s") is not None:
                detail = f"held open {number(data['held_s'], 'held_s', device.id):g} s"
            return event(device.id, ts, _ACCESS_EVENTS[kind], detail=detail)
        raise DecodeError("access event: unknown or missing type", device.id)

    def _door_state(self, device: DeviceConfig, data: dict[str, Any], ts: datetime) -> list[Item]:
        metrics: Metrics = {}
        door = data.get("door")
        if door is not None:
            if door not in ("open", "closed"):
                raise DecodeError("door must be open or closed", device.id)
            metrics["door_open"] = door == "open"
        lock = data.get("lock")
        if lock is not None:
            if lock not in ("locked", "unlocked"):
                raise DecodeError("lock must be locked or unlocked", device.id)
            metrics["door_locked"] = lock == "locked"
        if data.get("tamper") is not None:
            metrics["tamper"] = boolean(data["tamper"], "tamper", device.id)
        changes = self.state_events(device.id, ts, metrics, (
            ("door_open", EventType.DOOR_OPENED, EventType.DOOR_CLOSED),
            ("door_locked", EventType.DOOR_LOCKED, EventType.DOOR_UNLOCKED),
            ("tamper", EventType.TAMPER, None),
        ))
        return [*(e for _raised, e in changes), *reading(device.id, ts, metrics)]

    def _probe_state(self, device: DeviceConfig, data: dict[str, Any], ts: datetime) -> list[Item]:
        metrics: Metrics = {}
        for field in _PROBE_NUMBERS:
            if data.get(field) is not None:
                metrics[field] = number(data[field], field, device.id)
        for field in _PROBE_BOOLEANS:
            if data.get(field) is not None:
                metrics[field] = boolean(data[field], field, device.id)
        if not metrics:
            raise DecodeError("probe state has none of the profile's fields", device.id)
        return self.reading_with_state_events(device.id, ts, metrics, (
            ("smoke", EventType.DETECTOR_ALARM, EventType.DETECTOR_CLEAR),
            ("water_leak", EventType.WATER_LEAK, EventType.WATER_LEAK_CLEAR),
            ("tamper", EventType.TAMPER, None),
            ("detector_fault", EventType.DETECTOR_FAULT, None),
        ))

    def _call_point(self, device: DeviceConfig, data: dict[str, Any], ts: datetime) -> list[Item]:
        if data.get("activated") is None:
            raise DecodeError("call point state needs activated", device.id)
        activated = boolean(data["activated"], "activated", device.id)
        items: list[Item] = []
        if self.transitions.change(device.id, "activated", activated) is True:
            items.append(event(device.id, ts, EventType.MANUAL_CALL_POINT))
        return [*items, *reading(device.id, ts, {"call_point_activated": activated})]

    def encode(self, command: Command) -> tuple[str, bytes]:
        device = self._target(command, frozenset({Kind.DOOR_CONTROLLER}), _DOOR_ACTIONS)
        # A release holds until a secure command (evacuation: safety before security), it is not a
        # momentary unlock.
        action = "release" if command.action is Action.DOOR_RELEASE else "secure"
        body = {"id": command.id, "action": action, "reason": command.reason[:200]}
        return f"access/{device.address}/cmd", json.dumps(body).encode()
