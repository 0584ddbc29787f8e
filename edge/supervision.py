"""Device supervision: which devices are online, from the vendors' own availability messages and from
silence (no message for `silent_after_intervals` reporting intervals). Pure: time comes in.

A device starts as "unknown": the retained `Online` LWTs that arrive at start-up are no news and give
no event, but an `Offline` one does. Only transitions produce events, so a flapping device cannot
flood the uplink with repeats of the same state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from edge.config import DeviceConfig
from gateway.contract import EventType


class _State(Enum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(slots=True)
class _Device:
    interval_s: float | None
    last_seen: float
    state: _State = _State.UNKNOWN


@dataclass(frozen=True, slots=True)
class Change:
    device: str
    type: EventType
    detail: str


class Supervisor:
    def __init__(self, devices: Iterable[DeviceConfig], silent_after_intervals: float, now: float) -> None:
        self.silent_after = silent_after_intervals
        # Every device gets a grace period from start-up before silence counts.
        self._devices = {d.id: _Device(d.reporting_interval_s, now) for d in devices}

    def seen(self, device: str, now: float) -> Change | None:
        """A data message from the device: it is alive."""
        state = self._devices.get(device)
        if state is None:
            return None
        state.last_seen = now
        previous, state.state = state.state, _State.ONLINE
        if previous is _State.OFFLINE:
            return Change(device, EventType.DEVICE_ONLINE, "reporting again")
        return None

    def availability(self, device: str, online: bool, now: float, detail: str) -> Change | None:
        """The vendor's own availability (LWT, online topic): trusted as given."""
        state = self._devices.get(device)
        if state is None:
            return None
        previous = state.state
        if online:
            state.last_seen = now  # it just (re)connected: the silence clock starts again
            state.state = _State.ONLINE
            return Change(device, EventType.DEVICE_ONLINE, detail) if previous is _State.OFFLINE else None
        state.state = _State.OFFLINE
        return Change(device, EventType.DEVICE_OFFLINE, detail) if previous is not _State.OFFLINE else None

    def tick(self, now: float) -> list[Change]:
        """Devices that fell silent since the last tick."""
        changes = []
        for device, state in self._devices.items():
            if state.interval_s is None or state.state is _State.OFFLINE:
                continue
            silent = now - state.last_seen
            if silent >= state.interval_s * self.silent_after:
                state.state = _State.OFFLINE
                changes.append(Change(device, EventType.DEVICE_OFFLINE,
                                      f"silent for {silent:.0f} s (expected every {state.interval_s:g} s)"))
        return changes

    def online(self, device: str) -> bool | None:
        state = self._devices.get(device)
        if state is None or state.state is _State.UNKNOWN:
            return None
        return state.state is _State.ONLINE
