"""Live state per device for the API and the page: last value per metric, last seen, online.

Written by the ingest thread, read by API handlers: one lock, held only for dict updates/copies.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(slots=True)
class DeviceLive:
    last_seen: datetime | None = None
    metrics: dict[str, bool | int | float] = field(default_factory=dict)
    metric_ts: dict[str, datetime] = field(default_factory=dict)
    online: bool | None = None
    """None until something said; False after device_offline or when its edge went offline."""
    last_event: str | None = None


class LiveState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._devices: dict[str, DeviceLive] = {}
        self._edges: dict[str, tuple[bool, datetime]] = {}

    def reading(self, device: str, ts: datetime, metrics: Mapping[str, bool | int | float], now: datetime) -> None:
        with self._lock:
            live = self._devices.get(device)
            if live is None:
                live = self._devices[device] = DeviceLive()
            live.last_seen = now
            live.online = True
            for name, value in metrics.items():
                live.metrics[name] = value
                live.metric_ts[name] = ts

    def event(self, device: str, kind: str, now: datetime, online: bool | None = None) -> None:
        with self._lock:
            live = self._devices.setdefault(device, DeviceLive())
            live.last_event = kind
            live.last_seen = now
            if online is not None:
                live.online = online

    def edge(self, edge: str, online: bool, now: datetime) -> None:
        with self._lock:
            self._edges[edge] = (online, now)

    def device(self, device: str) -> DeviceLive | None:
        with self._lock:
            live = self._devices.get(device)
            if live is None:
                return None
            return DeviceLive(live.last_seen, dict(live.metrics), dict(live.metric_ts), live.online, live.last_event)

    def current_a(self, device: str) -> float | None:
        """The device's latest current, None when it never reported one."""
        live = self.device(device)
        value = live.metrics.get("current_a") if live is not None else None
        return float(value) if isinstance(value, (int, float)) else None

    def devices(self) -> dict[str, DeviceLive]:
        with self._lock:
            return {k: DeviceLive(v.last_seen, dict(v.metrics), dict(v.metric_ts), v.online, v.last_event)
                    for k, v in self._devices.items()}

    def edges(self) -> dict[str, tuple[bool, datetime]]:
        with self._lock:
            return dict(self._edges)
