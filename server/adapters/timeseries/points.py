"""Points: readings, events, alarms and inspection counts as measurement, tags, fields and time."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from gateway.contract import KNOWN_METRICS, Event, Reading
from server.adapters.timeseries.schema import (
    ALARM_MEASUREMENT,
    BOOLEAN_METRICS,
    EVENT_MEASUREMENT,
    INSPECTION_MEASUREMENT,
)
from server.domain.device_meta import DeviceMeta
from server.domain.dew import dew_point

FieldValue = float | int | bool | str
SampleValue = float | bool


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def to_ms(ts: datetime) -> int:
    """Milliseconds since the epoch, exact (no float rounding). A naive time is taken as UTC."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True, slots=True)
class PointIn:
    """One point: measurement, tags, fields and a time in milliseconds since the epoch."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    ts_ms: int

    @property
    def ts(self) -> datetime:
        return from_ms(self.ts_ms)


def dew_point_c(temperature_c: float, humidity_pct: float) -> float | None:
    """The rules' dew point (one formula, `server.domain.dew`) rounded for storage;
    ``None`` when RH is not in (0, 100] or the result is not a number, so a bad reading stores no field."""
    if not 0.0 < humidity_pct <= 100.0:
        return None
    try:
        dp = round(dew_point(temperature_c, humidity_pct), 2)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return dp if math.isfinite(dp) else None


def reading_fields(reading: Reading, meta: DeviceMeta) -> dict[str, SampleValue]:
    """The fields a reading is stored with: type-normalised metrics plus the derived fields."""
    fields: dict[str, SampleValue] = {}
    for name, value in reading.metrics.items():
        if name in BOOLEAN_METRICS:
            fields[name] = bool(value)
        elif isinstance(value, bool):
            # A numeric field must stay numeric; unknown metrics keep their boolean type.
            fields[name] = float(value) if name in KNOWN_METRICS else value
        else:
            fields[name] = float(value)
    if meta.rated_a:
        fields["rated_a"] = float(meta.rated_a)
        current = fields.get("current_a")
        if isinstance(current, float):
            fields["load_pct"] = round(current / meta.rated_a * 100.0, 3)
    temp, rh = fields.get("temperature_c"), fields.get("humidity_pct")
    if isinstance(temp, float) and isinstance(rh, float):
        dp = dew_point_c(temp, rh)
        if dp is not None:
            fields["dew_point_c"] = dp
    return fields


def reading_point(reading: Reading, meta: DeviceMeta) -> PointIn:
    return PointIn(meta.kind, meta.tags(reading.device), reading_fields(reading, meta), to_ms(reading.ts))


def event_point(event: Event, meta: DeviceMeta) -> PointIn:
    """An access, fire or supervision event as a point of ``event`` (badge numbers are never stored)."""
    tags = meta.tags(event.device)
    tags["type"] = str(event.type)
    if event.direction:
        tags["direction"] = event.direction
    fields: dict[str, FieldValue] = {"n": 1.0}
    if event.count is not None:
        fields["count"] = float(event.count)
    return PointIn(EVENT_MEASUREMENT, tags, fields, to_ms(event.ts))


def alarm_point(
    *, site: str, zone: str | None, rule: str, severity: str, active: bool, ts: datetime,
    value: float | None = None, device: str | None = None,
) -> PointIn:
    """An alarm raise (``active`` 1) or clear (``active`` 0), for boards of active alarms."""
    tags = {"site": site, "zone": zone or "", "rule": rule, "severity": str(severity), "device": device or ""}
    fields: dict[str, FieldValue] = {"active": 1.0 if active else 0.0}
    if value is not None and math.isfinite(value):
        fields["value"] = float(value)
    return PointIn(ALARM_MEASUREMENT, tags, fields, to_ms(ts))


def inspection_point(
    *, site: str, zone: str, schedule: str, period_start: datetime,
    on_time: int, late: int, missed: int, failed: int,
) -> PointIn:
    """Inspection counts for one period (a month, say) at the period's start.

    Writing the same (site, zone, schedule, period_start) again overwrites it in InfluxDB, so the server
    can re-send the running counts of the current period as often as it likes.
    """
    return PointIn(
        INSPECTION_MEASUREMENT,
        {"site": site, "zone": zone, "schedule": schedule},
        {"on_time": float(on_time), "late": float(late), "missed": float(missed), "failed": float(failed)},
        to_ms(period_start),
    )
