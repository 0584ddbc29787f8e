"""The virtual floor as the simulator sees it: read from a floor directory.

A floor directory holds what `simulators.floorgen` writes (and what a tester may write by hand):

- `site.yaml`      the server's site model (server/domain/site.py): zones, devices, people, shifts, roster
- `edge-*.yaml`    one edge agent configuration per edge: `devices:` entries add the vendor dialect
                   (`vendor`, `address`, `channel`) to the registry
- `hr.yaml`        what HR and reception know and the site model does not: leavers (revoked badges) and
                   visitor approvals; optional

Only the keys the simulator needs are read; validation of the files themselves belongs to their owners.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.yamlfile import read_mapping
from server.domain import roster

DEMO_FLOOR = Path(__file__).resolve().parent / "floors" / "demo"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    id: str
    kind: str
    zone: str
    edge: str = ""
    vendor: str = "generic"
    address: str = ""
    channel: int | None = None
    rated_a: float | None = None
    strip: str | None = None
    upstream: str | None = None
    essential: bool = False
    cuttable: bool = False
    plug_class: str = "unknown"
    seat: str | None = None
    door_type: str | None = None
    heartbeat_s: float = 60.0
    reporting_interval_s: float = 60.0
    location_type: str | None = None

    @property
    def interval_s(self) -> float:
        """How often the device reports: detectors by heartbeat, the others by reporting interval."""
        return self.heartbeat_s if self.kind == "smoke_detector" else self.reporting_interval_s


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    floor: str
    kind: str = "office"
    name: str = ""


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str = ""
    badge: str | None = None
    roles: tuple[str, ...] = ()
    is_visitor: bool = False
    host: str | None = None
    mr_access: bool = False


@dataclass(frozen=True, slots=True)
class Shift:
    id: str
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Duty:
    """A roster entry of site.yaml; with neither `days` nor `dates` it is daily, as on the server."""

    person: str
    shift: str
    zone: str
    seat: str | None = None
    lead: bool = False
    days: tuple[str, ...] = ()
    dates: tuple[date, ...] = ()


@dataclass(slots=True)
class Floor:
    """Everything loaded from one floor directory."""

    directory: Path
    site_id: str
    timezone: str
    zones: dict[str, Zone] = field(default_factory=dict)
    devices: dict[str, DeviceSpec] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    shifts: dict[str, Shift] = field(default_factory=dict)
    roster: list[Duty] = field(default_factory=list)
    leavers: dict[str, datetime] = field(default_factory=dict)
    """person id -> effective leave time (their badge is revoked from then on)."""
    visitor_approvals: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    edges: list[str] = field(default_factory=list)

    @property
    def tz(self) -> tzinfo:
        return tz_of(self.timezone)

    def person_by_badge(self, badge: str) -> Person | None:
        return next((p for p in self.people.values() if p.badge == badge), None)

    def devices_of(self, kind: str, zone: str | None = None) -> list[DeviceSpec]:
        return [d for d in self.devices.values() if d.kind == kind and (zone is None or d.zone == zone)]

    def plugs_of_strip(self, strip: str) -> list[DeviceSpec]:
        return [d for d in self.devices.values() if d.strip == strip]

    def zone_kind(self, zone: str) -> str:
        return self.zones[zone].kind if zone in self.zones else "office"

    def duty_windows(self, day_from: datetime, day_to: datetime) -> Iterable[tuple[Duty, datetime, datetime]]:
        """Every roster duty as an interval in time, for shifts starting between the two instants' days."""
        tz = self.tz
        entries = [duty for duty in self.roster if duty.shift in self.shifts]
        first = day_from.astimezone(tz).date() - timedelta(days=1)
        for day in roster.days_between(first, day_to.astimezone(tz).date()):
            for resolved in roster.duties(entries, self.shifts, tz, [day]):
                yield resolved.entry, resolved.start.astimezone(tz), resolved.end.astimezone(tz)


FLOOR_FILE_SHAPE = "a floor file (site.yaml, edge-*.yaml, hr.yaml) is a mapping at the top level"


def tz_of(name: str) -> tzinfo:
    match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", name)
    if match:
        sign = 1 if match.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    return ZoneInfo(name)


def _date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _time(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML 1.1 reads 08:00 unquoted as sexagesimal minutes
        return time(value // 60 % 24, value % 60)
    hours, minutes = str(value).split(":")[:2]
    return time(int(hours) % 24, int(minutes))


def _datetime(value: object, tz: tzinfo) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=tz)


_SPEC_FIELDS = {f for f in DeviceSpec.__dataclass_fields__}


def _spec(entry: Mapping[str, Any], base: DeviceSpec | None, edge: str) -> DeviceSpec:
    values: dict[str, Any] = {} if base is None else {f: getattr(base, f) for f in _SPEC_FIELDS}
    for key, value in entry.items():
        name = "plug_class" if key == "class" else key
        if name in _SPEC_FIELDS and value is not None:
            values[name] = value
    values.setdefault("edge", edge)
    if not values.get("edge"):
        values["edge"] = edge
    values.setdefault("address", values["id"])
    return DeviceSpec(**values)


def load_floor(directory: Path | str) -> Floor:
    """Read a floor directory (site.yaml, edge-*.yaml, hr.yaml)."""
    root = Path(directory)
    site = read_mapping(root / "site.yaml", FLOOR_FILE_SHAPE)
    info = site.get("site") or {}
    floor = Floor(directory=root, site_id=str(info.get("id", "site")), timezone=str(info.get("timezone", "UTC")))
    for z in site.get("zones") or []:
        floor.zones[z["id"]] = Zone(
            z["id"], str(z.get("floor", "")), str(z.get("kind", "office")), str(z.get("name", ""))
        )
    for d in site.get("devices") or []:
        floor.devices[d["id"]] = _spec(d, None, str(d.get("edge", "")))
    for p in site.get("people") or []:
        floor.people[p["id"]] = Person(
            p["id"],
            str(p.get("name", "")),
            p.get("badge"),
            tuple(p.get("roles") or ()),
            bool(p.get("is_visitor", False)),
            p.get("host"),
            bool(p.get("mr_access", False)),
        )
    for s in site.get("shifts") or []:
        floor.shifts[s["id"]] = Shift(s["id"], _time(s["start"]), _time(s["end"]))
    for r in site.get("roster") or []:
        days = tuple(str(d) for d in r.get("days") or ())
        dates = tuple(_date(d) for d in r.get("dates") or ())
        lead = bool(r.get("lead", False))
        floor.roster.append(Duty(r["person"], r["shift"], r["zone"], r.get("seat"), lead, days, dates))
    for path in sorted(root.glob("edge-*.yaml")):
        config = read_mapping(path, FLOOR_FILE_SHAPE)
        edge_info = config.get("edge")
        edge = str(edge_info.get("id") if isinstance(edge_info, Mapping) else edge_info or path.stem[5:])
        floor.edges.append(edge)
        for d in config.get("devices") or []:
            floor.devices[d["id"]] = _spec(d, floor.devices.get(d["id"]), edge)
    hr_path = root / "hr.yaml"
    if hr_path.exists():
        hr = read_mapping(hr_path, FLOOR_FILE_SHAPE)
        for leaver in hr.get("leavers") or []:
            floor.leavers[leaver["person"]] = _datetime(leaver["left_at"], floor.tz)
        for visit in hr.get("visitor_approvals") or []:
            floor.visitor_approvals[visit["visitor"]] = (
                _datetime(visit["from"], floor.tz),
                _datetime(visit["until"], floor.tz),
            )
    return floor
