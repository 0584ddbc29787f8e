"""What every driver is: vendor topics in, canonical readings and events out; canonical commands in,
vendor commands out. Drivers are pure (no MQTT, no clock of their own): the agent hands them a topic,
the payload bytes and the time of receipt, and publishes what `encode` returns on the floor broker.

Drivers keep a little state per device (the last smoke, leak, door and tamper values) because the
vendors publish whole states while the contract wants transitions as events (detector_alarm once,
not on every heartbeat).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from edge.config import DeviceConfig, Kind, Vendor
from gateway.contract import Action, Command, Event, EventType, Reading

Item = Reading | Event
Metrics = dict[str, bool | int | float]
StateEvents = Iterable[tuple[str, EventType, EventType | None]]
"""Per boolean metric: the event when it turns true, and the one when it turns false (None: no event)."""


class DecodeError(ValueError):
    """A vendor payload on a topic we understand that we could not decode; the reason is log-safe
    (it never quotes payload values, which may hold badge numbers)."""

    def __init__(self, reason: str, device: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.device = device


class UnsupportedCommand(ValueError):
    """The device cannot do this action (a smoke detector has no relay)."""


# What a device reports back when it has carried out each action: (metric, value).
CONFIRMATION: Mapping[Action, tuple[str, bool]] = {
    Action.RELAY_OFF: ("relay_on", False),
    Action.RELAY_ON: ("relay_on", True),
    Action.DOOR_RELEASE: ("door_locked", False),
    Action.DOOR_SECURE: ("door_locked", True),
    Action.SIREN_ON: ("siren_on", True),
    Action.SIREN_OFF: ("siren_on", False),
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def load_json(payload: bytes, device: str | None) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise DecodeError("payload is not JSON", device) from None


def json_object(payload: bytes, device: str | None) -> dict[str, Any]:
    data = load_json(payload, device)
    if not isinstance(data, dict):
        raise DecodeError(f"payload is a JSON {type(data).__name__}, expected an object", device)
    return data


def number(value: Any, field: str, device: str | None) -> float | int:
    """A finite number; numeric strings are accepted (old Zigbee2MQTT sent `"battery":"100.00"`)."""
    if isinstance(value, bool):
        raise DecodeError(f"{field} is a boolean, expected a number", device)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise DecodeError(f"{field} is not finite", device)
        return value
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            raise DecodeError(f"{field} is not a number", device) from None
        return number(parsed, field, device)
    raise DecodeError(f"{field} is a {type(value).__name__}, expected a number", device)


def boolean(value: Any, field: str, device: str | None) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.upper() in ("ON", "TRUE", "OFF", "FALSE"):
        return value.upper() in ("ON", "TRUE")
    raise DecodeError(f"{field} is not a boolean", device)


def reading(device: str, ts: datetime, metrics: Metrics) -> list[Item]:
    """A one-reading list, or none when nothing was measured (partial notifications are common)."""
    return [Reading(device=device, ts=ts, metrics=metrics)] if metrics else []


def event(device: str, ts: datetime, kind: EventType, **fields: Any) -> Event:
    return Event(device=device, ts=ts, type=kind, **fields)


class Transitions:
    """Last known value of boolean states per device, to turn states into edge-triggered events."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], bool] = {}

    def change(self, device: str, name: str, value: bool) -> bool | None:
        """The new value when it changed; None when unchanged. The first value ever seen counts as a
        change only when it is True (an alarm present at start-up must be reported)."""
        key = (device, name)
        previous = self._last.get(key)
        self._last[key] = value
        if previous is None:
            return value if value else None
        return value if value != previous else None


class Driver(ABC):
    """One vendor dialect for the devices configured with that vendor."""

    vendor: ClassVar[Vendor]

    def __init__(self, devices: Iterable[DeviceConfig], *, client_id: str = "floorwatch-edge") -> None:
        self.devices: list[DeviceConfig] = [d for d in devices if d.vendor is self.vendor]
        self.client_id = client_id
        """Our name towards devices that answer a named sender (Shelly RPC `src`)."""
        self._by_id = {d.id: d for d in self.devices}
        self.transitions = Transitions()

    def device(self, device_id: str) -> DeviceConfig | None:
        return self._by_id.get(device_id)

    def state_events(
        self, device: str, ts: datetime, metrics: Metrics, states: StateEvents
    ) -> list[tuple[bool, Event]]:
        """The events of the boolean metrics in `states` that changed, in the order of `states`, each
        with whether its metric turned true."""
        changes: list[tuple[bool, Event]] = []
        for metric, on, off in states:
            value = metrics.get(metric)
            if not isinstance(value, bool):
                continue
            changed = self.transitions.change(device, metric, value)
            if changed is True:
                changes.append((True, event(device, ts, on)))
            elif changed is False and off is not None:
                changes.append((False, event(device, ts, off)))
        return changes

    def reading_with_state_events(
        self, device: str, ts: datetime, metrics: Metrics, states: StateEvents
    ) -> list[Item]:
        """The reading and the events of the states that changed: alarms go before the reading that
        carries them, clears after."""
        changes = self.state_events(device, ts, metrics, states)
        return [
            *(e for raised, e in changes if raised),
            *reading(device, ts, metrics),
            *(e for raised, e in changes if not raised),
        ]

    @abstractmethod
    def topic_filters(self) -> list[str]:
        """Vendor topic filters to subscribe on the floor broker for the configured devices."""

    @abstractmethod
    def decode(self, topic: str, payload: bytes, now: datetime | None = None) -> list[Item]:
        """Canonical readings and events from one vendor message; [] for topics of no interest.
        Raises DecodeError when the topic is one of ours but the payload is not understood."""

    @abstractmethod
    def encode(self, command: Command) -> tuple[str, bytes]:
        """The vendor topic and payload that carry out a canonical command."""

    def devices_at(self, topic: str) -> Sequence[str]:
        """Ids of the devices a topic belongs to (for decode-error accounting)."""
        return []

    discover: bool = False
    """Subscribe to the vendor's announcement topic with a wildcard, so that a device that is in no
    configuration is seen when it comes online (set before `topic_filters` is read)."""

    def discovery_filters(self) -> list[str]:
        """Filters heard only to find devices that are in no configuration: the agent subscribes them on a
        separate clean session at QoS 0, so the broker queues none of that traffic for the edge and it cannot
        push a configured device's message out of the persistent session's bounded queue. Not overlapping
        each other (an MQTT 5 broker hands a message over once per matching subscription)."""
        return []

    def announced(self, topic: str, payload: bytes) -> str | None:
        """The vendor address of a device that is not configured and has just announced itself online
        on `topic`; None for everything else (the vendors without an announcement topic: always None)."""
        return None

    def _target(self, command: Command, kinds: frozenset[Kind], actions: frozenset[Action]) -> DeviceConfig:
        device = self._by_id.get(command.device)
        if device is None:
            raise UnsupportedCommand(f"device {command.device!r} is not a {self.vendor.value} device")
        if device.kind not in kinds or command.action not in actions:
            raise UnsupportedCommand(f"a {device.kind.value} cannot {command.action.value}")
        return device


def availability_event(device: DeviceConfig, payload: bytes, ts: datetime, source: str) -> Event:
    """An availability message (`online`/`offline`, or `{"state": "online"}` as Zigbee2MQTT 1.x+ and our
    generic profile send it) as device_online / device_offline."""
    text = payload.decode("utf-8", "replace").strip()
    state: Any = text
    if text.startswith("{"):
        data = load_json(payload, device.id)
        state = data.get("state") if isinstance(data, dict) else None
    if state not in ("online", "offline"):
        raise DecodeError("availability is neither online nor offline", device.id)
    kind = EventType.DEVICE_ONLINE if state == "online" else EventType.DEVICE_OFFLINE
    return event(device.id, ts, kind, detail=f"{source} availability")
