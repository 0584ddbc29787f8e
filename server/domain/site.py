"""The site model: floors, zones, devices, people, roles, roster and threshold overrides.

A site is described in one YAML file and parsed with `parse_site(text, source)`. Every configuration
model forbids unknown keys (a typo is an error, not a silently ignored setting), and every error names
the file, the line and the field, e.g. ``site.yaml:42: devices[3].zone: unknown zone 'f3-z9'``.

Top-level keys (all but ``site`` optional)::

    site:       {id, name, timezone}          # timezone: IANA name ("Asia/Shanghai") or "+08:00"
    floors:     [{id, name}]
    zones:      [{id, name, floor, kind, polygon, hvac_mode, adjacent, exits}]
    devices:    [{id, kind, zone, edge, rated_a, strip, upstream, essential, cuttable, class, seat,
                  door_type, heartbeat_s, reporting_interval_s, offline_after_s, location_type, range_c}]
    people:     [{id, name, badge, roles, is_visitor, host, mr_access}]
    roles:      {role: [person id, ...]}      # extra role members besides each person's own `roles`
    contacts:   {person id, role or "zone:<zone id>": ["apprise URL", {url, zones, min_severity}, ...]}
                # a mapping scopes a channel to zones and a severity floor; "zone:<id>" channels (a
                # zone's group bot) get the first page of that zone's critical and major alarms
    shifts:     [{id, start: "HH:MM", end: "HH:MM"}]   # end <= start means the shift crosses midnight
    roster:     [{person, shift, seat, zone, lead, days, dates}]
    thresholds: {zones: {zone: {rule id: {param: value}}}, devices: {device: {rule id: {...}}}}

Ids follow the wire contract (`gateway.contract.DeviceId` for devices). The floor runs 24/7, so "on
duty" always comes from the roster, never from the wall clock (RULES.md §0.5 item 4).
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.contract import DeviceId
from gateway.contract import DeviceKind as DeviceKind  # re-exported: part of the site model's vocabulary
from gateway.yaml_lines import Loc
from gateway.yamlfile import YamlDoc, YamlFileError, message_of, parse_yaml, validate
from server.domain import roster
from server.domain.roster import Duty
from server.domain.thresholds import DEFAULTS, SITE_WIDE

# --------------------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------------------


class ZoneKind(StrEnum):
    OFFICE = "office"
    STAIRWELL = "stairwell"
    RESTROOM = "restroom"
    MACHINE_ROOM = "machine_room"
    CORRIDOR = "corridor"
    PANTRY = "pantry"
    LOBBY = "lobby"
    MEETING = "meeting"
    STORAGE = "storage"


class HvacMode(StrEnum):
    COOLING = "cooling"
    HEATING = "heating"
    UNKNOWN = "unknown"


class PlugClass(StrEnum):
    ESSENTIAL = "essential"
    NON_ESSENTIAL = "non_essential"
    PRINTER = "printer"
    UNKNOWN = "unknown"


class DoorType(StrEnum):
    EGRESS = "egress"
    OFFICE = "office"
    MACHINE_ROOM = "machine_room"
    FIRE_DOOR = "fire_door"


class LocationType(StrEnum):
    DESK = "desk"
    STRIP = "strip"
    PRINTER = "printer"
    CEILING = "ceiling"


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

PlainId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
"""Ids of zones, floors, people, shifts and seats: the same alphabet as device ids."""

Overrides = dict[str, dict[str, float]]
"""rule id -> parameter -> value."""


# --------------------------------------------------------------------------------------------------
# Configuration models (YAML shape)
# --------------------------------------------------------------------------------------------------


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SiteInfo(_Config):
    """`site:` the site's id (a topic segment, see contract-v1.md §3), its name and local time zone."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]
    name: str = ""
    timezone: str = "Asia/Shanghai"
    """IANA name or a fixed offset such as "+08:00". Shift times in `shifts:` are in this zone."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        _tz(value)
        return value


class Floor(_Config):
    id: PlainId
    name: str = ""


class Zone(_Config):
    """An area of a floor. Zone rules (fire.confirmed, env.*) use the zone id as their subject."""

    id: PlainId
    name: str = ""
    floor: PlainId
    kind: ZoneKind = ZoneKind.OFFICE
    polygon: list[tuple[float, float]] = Field(default_factory=list)
    """Outline on the floor map, as [x, y] points in the floor plan's units."""
    hvac_mode: HvacMode = HvacMode.UNKNOWN
    """Chooses the env.office_temp / env.office_rh band (RULES.md §7 item 5)."""
    adjacent: list[PlainId] = Field(default_factory=list)
    """Neighbouring zones: a detector offline while an adjacent zone is in alarm is critical."""
    exits: list[PlainId] = Field(default_factory=list)
    """Egress doors in other zones that people here leave by (the escape route). Unset, a zone with no
    egress door of its own leaves by the nearest ones through `adjacent` zones of its floor."""

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if value and len(value) < 3:
            raise ValueError("a polygon needs at least 3 points")
        return value


class Device(_Config):
    """One registered device. Fields that do not apply to a kind are left at their defaults."""

    id: DeviceId
    kind: DeviceKind
    zone: PlainId
    edge: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]
    """The edge agent (gateway) the device reports through (sup.gateway_offline)."""
    name: str = ""
    rated_a: float | None = Field(default=None, gt=0)
    """Plugs: 10 or 16 (required). Strips: defaults to 10 A when not given (RULES.md §0.4 pick)."""
    strip: DeviceId | None = None
    """Plugs: the strip_meter they are plugged into (elec.unmetered_load)."""
    upstream: DeviceId | None = None
    """Strips: the strip this one is fed from; a strip fed from a strip is a cascade (elec.strip_cascade)."""
    essential: bool = False
    """Never cut automatically (PC, phone, door controllers, network)."""
    cuttable: bool = False
    """May be cut automatically by a safety rule (non-essential end loads)."""
    plug_class: PlugClass = Field(default=PlugClass.UNKNOWN, alias="class")
    seat: PlainId | None = None
    door_type: DoorType | None = None
    heartbeat_s: float = Field(default=60, gt=0)
    """Detectors: the vendor heartbeat; above 60 s the LPWAN supervision limit applies."""
    reporting_interval_s: float = Field(default=60, gt=0)
    """Other devices: the normal reporting interval; offline after 3 intervals, at least 15 min."""
    offline_after_s: float | None = Field(default=None, gt=0)
    """Seconds of silence after which this device is offline, instead of the catalog's limit for its
    kind (docs/supervision.md); at least its heartbeat (detectors) or reporting interval."""
    location_type: LocationType | None = None
    range_c: tuple[float, float] = (-40.0, 125.0)
    """Temperature sensors: the rated measuring range (sensor.temp_out_of_range)."""
    position: tuple[float, float] | None = None
    """Where the device is drawn on the floor map, in the floor plan's units; placed inside its zone if absent."""

    @model_validator(mode="after")
    def _kind_fields(self) -> Device:
        if self.kind is DeviceKind.SMART_PLUG and self.rated_a not in (10, 16):
            raise ValueError("a smart_plug needs rated_a 10 or 16")
        if self.kind is DeviceKind.DOOR_CONTROLLER and self.door_type is None:
            raise ValueError("a door_controller needs door_type")
        if self.strip is not None and self.kind is not DeviceKind.SMART_PLUG:
            raise ValueError("only a smart_plug has a strip")
        if self.upstream is not None and self.kind is not DeviceKind.STRIP_METER:
            raise ValueError("only a strip_meter has an upstream")
        return self

    @property
    def rating_a(self) -> float:
        """The rating used by the load rules; strips default to 10 A."""
        return self.rated_a if self.rated_a is not None else 10.0


MAX_STRIP_A = 63.0
"""The highest strip_meter `rated_a` accepted. GB 2099 power strips are rated 10 A or 16 A; rack PDUs 16, 32, 40
or 63 A, and 63 A (the largest common IEC 60309 rating) is the most any strip on a floor carries. The load rules
are ratios of the rating, so a typo (100 for 10) would keep a strip's overload rules quiet: refused rather than
believed."""


ROLE_NAMES: frozenset[str] = frozenset({
    # used by the code: paging (domain/notify.py), permissions and escorts (rules/access.py `reception`),
    # inspections and their overdue rules (domain/inspections/)
    "operator", "shift_lead", "supervisor", "safety_officer", "facility_manager", "maintenance", "mr_duty",
    "reception", "on_site_command", "emergency_command", "security_evacuation", "information_reporting",
    "logistics", "manager", "it", "hr",
    # named by the catalog (RULES.md §0.2), not (yet) read by the code
    "department_head", "electrician", "facilities",
})
"""Role names a site file may use (`people[].roles`, `roles:`, `contacts:` keys): a misspelt role would be
a role nobody pages, so an unknown one is refused."""
CONTACT_FALLBACK = "fallback"
"""The contacts key of the channel for a critical push that could not be delivered (domain/notify.py)."""


class Person(_Config):
    """Someone on the floor. Badge numbers never go into findings or logs; ids do."""

    id: PlainId
    name: str = ""
    badge: str | None = None
    roles: list[str] = Field(default_factory=list)
    """Role names, e.g. operator, shift_lead, supervisor, safety_officer, mr_duty, on_site_command."""
    is_visitor: bool = False
    host: PlainId | None = None
    """Visitors: the person who hosts and escorts them (access.visitor_unescorted)."""
    mr_access: bool = False
    """On the machine-room list (access.mr_unlisted)."""


class Shift(_Config):
    id: PlainId
    start: time
    end: time
    """Local times in the site's time zone; end <= start means the shift ends the next day."""

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 16:00 as the base-60 number 960, which would become 00:16: refuse
        # every number rather than guess, a wrong shift pages the wrong people.
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"{value!r} is a number, not a time (YAML reads an unquoted 16:00 as the number 960):"
                             " write the time in quotes, e.g. '16:00'")
        if isinstance(value, str) and re.fullmatch(r"\d:\d\d", value):
            return f"0{value}"  # '8:30' is as clear as '08:30'
        return value


class RosterEntry(_Config):
    """Who works which shift at which seat. With neither `days` nor `dates`, the entry is daily."""

    person: PlainId
    shift: PlainId
    seat: PlainId | None = None
    zone: PlainId
    lead: bool = False
    """The person is the shift lead (当日领班) of `zone` during this shift."""
    days: list[Weekday] = Field(default_factory=list)
    dates: list[date] = Field(default_factory=list)


class Thresholds(_Config):
    zones: dict[str, Overrides] = Field(default_factory=dict)
    devices: dict[str, Overrides] = Field(default_factory=dict)


class Contact(_Config):
    """A channel with a scope (a contacts entry written as a mapping instead of a plain URL): it gets
    an alarm's pages only for these zones (none listed: every zone) at this severity or worse."""

    url: str = Field(min_length=1)
    zones: list[PlainId] = Field(default_factory=list)
    min_severity: Literal["warning", "minor", "major", "critical"] = "warning"


class SiteConfig(_Config):
    """The whole YAML document."""

    site: SiteInfo
    floors: list[Floor] = Field(default_factory=list)
    zones: list[Zone] = Field(default_factory=list)
    devices: list[Device] = Field(default_factory=list)
    people: list[Person] = Field(default_factory=list)
    roles: dict[str, list[PlainId]] = Field(default_factory=dict)
    contacts: dict[str, list[str | Contact]] = Field(default_factory=dict)
    shifts: list[Shift] = Field(default_factory=list)
    roster: list[RosterEntry] = Field(default_factory=list)
    thresholds: Thresholds = Field(default_factory=Thresholds)


# --------------------------------------------------------------------------------------------------
# Errors with file, line and field
# --------------------------------------------------------------------------------------------------


class SiteError(YamlFileError):
    """A site file that cannot be used: `problems` (and the message) hold one ``file:line: field: reason``
    each, every problem of the file at once."""


@dataclass(frozen=True, slots=True)
class _Problem:
    loc: Loc
    message: str


# --------------------------------------------------------------------------------------------------
# The parsed site, with its indexes and queries
# --------------------------------------------------------------------------------------------------


def _tz(name: str) -> tzinfo:
    match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", name)
    if match:
        sign = 1 if match.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def badge_key(badge: str) -> str:
    """How a card number is compared: without surrounding blanks and case. Readers of one card disagree on
    case (esp-rfid writes hex in lower case, Tasmota's readers and badge printers in upper case), and a
    card number that differs from another only in case is no other card."""
    return badge.strip().upper()


class Site:
    """A validated site with its lookup indexes. Built by `parse_site` (or `Site(config)` in tests)."""

    def __init__(self, config: SiteConfig, source: str = "<site>") -> None:
        self.config = config
        self.source = source
        self.id = config.site.id
        self.name = config.site.name
        self.tz = _tz(config.site.timezone)
        self.floors: dict[str, Floor] = {f.id: f for f in config.floors}
        self.zones: dict[str, Zone] = {z.id: z for z in config.zones}
        self.devices: dict[str, Device] = {d.id: d for d in config.devices}
        self.people: dict[str, Person] = {p.id: p for p in config.people}
        self.shifts: dict[str, Shift] = {s.id: s for s in config.shifts}
        self.by_badge: dict[str, Person] = {badge_key(p.badge): p for p in config.people if p.badge}
        """Keyed by `badge_key`: look a card up with `person_with_badge`."""
        self._by_zone: dict[str, list[Device]] = defaultdict(list)
        self._by_edge: dict[str, list[Device]] = defaultdict(list)
        self._plugs: dict[str, list[Device]] = defaultdict(list)
        self._zones_of_floor: dict[str, list[Zone]] = defaultdict(list)
        for device in config.devices:
            self._by_zone[device.zone].append(device)
            self._by_edge[device.edge].append(device)
            if device.strip is not None:
                self._plugs[device.strip].append(device)
        for zone in config.zones:
            self._zones_of_floor[zone.floor].append(zone)
        self._roster_by_seat: dict[str, list[RosterEntry]] = defaultdict(list)
        self._roster_by_zone: dict[str, list[RosterEntry]] = defaultdict(list)
        for entry in config.roster:
            if entry.seat is not None:
                self._roster_by_seat[entry.seat].append(entry)
            self._roster_by_zone[entry.zone].append(entry)
        members: dict[str, set[str]] = defaultdict(set)
        for person in config.people:
            for role in person.roles:
                members[role].add(person.id)
        for role, ids in config.roles.items():
            members[role].update(ids)
        self._role_members = {role: sorted(ids) for role, ids in members.items()}
        self._duty_cache: dict[tuple[str, str, date], list[Duty[RosterEntry]]] = {}
        self._exits: dict[str, list[Device]] = {}
        self._neighbours: dict[str, list[str]] = {z.id: list(z.adjacent) for z in config.zones}
        for zone in config.zones:  # being next to each other goes both ways, whichever side lists it
            for other in zone.adjacent:
                if zone.id not in self._neighbours.setdefault(other, []):
                    self._neighbours[other].append(zone.id)
        self.warnings: list[str] = _warnings(config)
        """Configuration problems that do not stop the site from loading (e.g. reduced supervision)."""

    # ---- devices -------------------------------------------------------------------------------

    def person_with_badge(self, badge: str | None) -> Person | None:
        """The person whose card this is (any case), or None for no badge or a card not in the file."""
        return self.by_badge.get(badge_key(badge)) if badge else None

    def devices_in_zone(self, zone: str) -> list[Device]:
        return self._by_zone.get(zone, [])

    def devices_of_edge(self, edge: str) -> list[Device]:
        return self._by_edge.get(edge, [])

    def edges(self) -> list[str]:
        return sorted(self._by_edge)

    def plugs_of_strip(self, strip: str) -> list[Device]:
        return self._plugs.get(strip, [])

    def zones_on_floor(self, floor: str) -> list[Zone]:
        return self._zones_of_floor.get(floor, [])

    def floor_of(self, device: Device) -> str:
        return self.zones[device.zone].floor

    def is_machine_room(self, zone: str) -> bool:
        return self.zones[zone].kind is ZoneKind.MACHINE_ROOM

    def _own_egress(self, zone: str) -> list[Device]:
        return [d for d in self.devices_in_zone(zone) if d.door_type is DoorType.EGRESS]

    def egress_doors(self, zone: str) -> list[Device]:
        """The egress doors people in one zone leave by (door.fire_release_zone): its own and its
        `exits`; with neither, the nearest ones through adjacent zones of the floor (breadth first, all
        at the least number of zone boundaries), so a seat area without a door still gets its way out."""
        cached = self._exits.get(zone)
        if cached is not None:
            return cached
        doors = [*self._own_egress(zone), *(self.devices[d] for d in self.zones[zone].exits)]
        floor, seen, ring = self.zones[zone].floor, {zone}, [zone]
        while not doors and ring:
            outer: list[str] = []
            for inner in ring:
                for n in self._neighbours[inner]:
                    if n not in seen and self.zones[n].floor == floor:
                        seen.add(n)
                        outer.append(n)
            ring = outer
            doors = [d for z in ring for d in self._own_egress(z)]
        unique = list({d.id: d for d in doors}.values())
        self._exits[zone] = unique
        return unique

    def egress_doors_on_floor(self, floor: str) -> list[Device]:
        """Egress door controllers of a whole floor (door.fire_release_floor)."""
        return [d for z in self.zones_on_floor(floor) for d in self._own_egress(z.id)]

    def overrides(self, device: Device) -> Overrides:
        """Threshold overrides for a device: its zone's, then its own on top."""
        merged: Overrides = {}
        for layer in (
            self.config.thresholds.zones.get(device.zone, {}),
            self.config.thresholds.devices.get(device.id, {}),
        ):
            for rule, params in layer.items():
                merged.setdefault(rule, {}).update(params)
        return merged

    def zone_overrides(self, zone: str) -> Overrides:
        return self.config.thresholds.zones.get(zone, {})

    # ---- people and roles ----------------------------------------------------------------------

    def people_with_role(self, role: str) -> list[Person]:
        return [self.people[p] for p in self._role_members.get(role, [])]

    def contact_channels(self, key: str) -> list[Contact]:
        """The contacts of a person id, a role or `zone:<id>`, each with its scope (a plain URL: all)."""
        return [c if isinstance(c, Contact) else Contact(url=c) for c in self.config.contacts.get(key, [])]

    def contacts_of(self, key: str) -> list[str]:
        """Channel URLs of a person id, a role name or `zone:<id>`, whatever their scope."""
        return [c.url for c in self.contact_channels(key)]

    # ---- roster --------------------------------------------------------------------------------

    def _duties(self, key: tuple[str, str], entries: Sequence[RosterEntry], at: datetime) -> list[Duty[RosterEntry]]:
        """Intervals of `entries` that could contain `at` or ended shortly before it (today, yesterday).

        Memoised per (seat or zone, local date): rules ask on every plug and temperature reading, and
        building the intervals was most of their cost. The cache is dropped when it grows past a day's worth.
        """
        local = at.astimezone(self.tz).date()
        cached = self._duty_cache.get((*key, local))
        if cached is not None:
            return cached
        out = roster.duties(entries, self.shifts, self.tz, (local - timedelta(days=1), local))
        if len(self._duty_cache) > 4 * (len(self._roster_by_seat) + len(self._roster_by_zone)) + 64:
            self._duty_cache.clear()
        self._duty_cache[(*key, local)] = out
        return out

    def on_duty_at_seat(self, seat: str, at: datetime) -> RosterEntry | None:
        """The roster entry covering `seat` at instant `at`, if any."""
        for duty in self._duties(("seat", seat), self._roster_by_seat.get(seat, []), at):
            if duty.start <= at < duty.end:
                return duty.entry
        return None

    def seat_shift_ended_within(self, seat: str, at: datetime, grace: timedelta) -> bool:
        """True if a shift at `seat` ended in (at - grace, at]: the after-shift grace period."""
        duties = self._duties(("seat", seat), self._roster_by_seat.get(seat, []), at)
        return any(at - grace < d.end <= at for d in duties)

    def on_duty_in_zone(self, zone: str, at: datetime) -> list[RosterEntry]:
        """Everyone rostered in `zone` at `at` (zone occupancy for env.* and door.forced_open)."""
        duties = self._duties(("zone", zone), self._roster_by_zone.get(zone, []), at)
        return [d.entry for d in duties if d.start <= at < d.end]

    def shift_lead(self, zone: str, at: datetime) -> Person | None:
        """The shift lead (当日领班) of `zone` at `at`, from the roster."""
        for entry in self.on_duty_in_zone(zone, at):
            if entry.lead:
                return self.people[entry.person]
        return None


def _report_interval(device: Device) -> tuple[str, float]:
    if device.kind is DeviceKind.SMOKE_DETECTOR:
        return "heartbeat_s", device.heartbeat_s
    return "reporting_interval_s", device.reporting_interval_s


def offline_rule(device: Device) -> str:
    """The rule that says this device is offline (RULES.md §2.3, §2.7); the supervision rules judge it."""
    if device.kind is DeviceKind.SMOKE_DETECTOR:
        return "sup.smoke_offline_lpwan" if device.heartbeat_s > 60 else "sup.smoke_offline"
    if device.kind is DeviceKind.MR_PROBE:
        return "sup.probe_offline"
    if device.kind is DeviceKind.DOOR_CONTROLLER and device.door_type is DoorType.EGRESS:
        return "door.egress_controller_offline"
    return "sup.sensor_offline"


def _supervised_at(device: Device) -> str | None:
    """The catalog rule whose fixed limit supervises a life-safety device (RULES.md §2.3, §2.7): the offline
    rule of all but an LPWAN detector (its limit follows its heartbeat) and an ordinary device."""
    rule = offline_rule(device)
    return None if rule in ("sup.smoke_offline_lpwan", "sup.sensor_offline") else rule


def _warnings(config: SiteConfig) -> list[str]:
    out = []
    limit = DEFAULTS["sup.smoke_offline_lpwan"]["max_heartbeat_s"]
    for device in config.devices:
        rule = _supervised_at(device)
        catalog = DEFAULTS[rule]["offline_s"] if rule else None
        if catalog is not None and device.offline_after_s is not None and device.offline_after_s > catalog:
            out.append(f"{device.id}: offline_after_s {device.offline_after_s:g} s > the catalog's {catalog:g} s "
                       f"({rule}): reduced supervision")
        if device.kind is DeviceKind.SMOKE_DETECTOR and device.heartbeat_s > limit:
            # RULES.md §2.7 sup.smoke_offline_lpwan: H > 1 h is "reduced supervision".
            out.append(f"{device.id}: heartbeat {device.heartbeat_s:g} s > {limit:g} s: reduced supervision")
    return out


# --------------------------------------------------------------------------------------------------
# Parsing and cross-checks
# --------------------------------------------------------------------------------------------------


def _roles_text() -> str:
    return ", ".join(sorted(ROLE_NAMES))


_SECTION_OF = {"floor": "floors", "zone": "zones", "device": "devices", "person": "people", "shift": "shifts"}


def _unknown(what: str, value: str, known: Collection[str]) -> str:
    """`unknown zone 'f3-z9'`, the id it most resembles if one is close, and where such ids are declared."""
    close = difflib.get_close_matches(value, sorted(known), n=1, cutoff=0.75)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {value!r}{hint}: declare it under `{_SECTION_OF[what]}` or correct the id"


def _cross_check(config: SiteConfig) -> list[_Problem]:
    problems: list[_Problem] = []

    def unique(section: str, ids: Sequence[str]) -> set[str]:
        seen: set[str] = set()
        for index, item in enumerate(ids):
            if item in seen:
                problems.append(_Problem((section, index, "id"),
                                         f"duplicate id {item!r}: ids are unique within `{section}`; rename one"))
            seen.add(item)
        return seen

    floors = unique("floors", [f.id for f in config.floors])
    zones = unique("zones", [z.id for z in config.zones])
    devices = unique("devices", [d.id for d in config.devices])
    people = unique("people", [p.id for p in config.people])
    shifts = unique("shifts", [s.id for s in config.shifts])
    kinds = {d.id: d.kind for d in config.devices}
    zone_floor = {z.id: z.floor for z in config.zones}
    by_id = {d.id: d for d in config.devices}

    for i, zone in enumerate(config.zones):
        if zone.floor not in floors:
            problems.append(_Problem(("zones", i, "floor"), _unknown("floor", zone.floor, floors)))
        for j, other in enumerate(zone.adjacent):
            if other not in zones:
                problems.append(_Problem(("zones", i, "adjacent", j), _unknown("zone", other, zones)))
        for j, door in enumerate(zone.exits):
            exit_door = by_id.get(door)
            if exit_door is None or exit_door.door_type is not DoorType.EGRESS:
                problems.append(_Problem(("zones", i, "exits", j), f"{door!r} is not an egress door controller: "
                                         "list door_controller devices with door_type: egress"))
            elif zone_floor.get(exit_door.zone) != zone.floor:
                problems.append(_Problem(("zones", i, "exits", j), f"exit {door!r} is on another floor: a zone's "
                                         "exits are egress doors of its own floor"))
    for key, entries in config.contacts.items():
        if key.startswith("zone:") and key.removeprefix("zone:") not in zones:
            problems.append(_Problem(("contacts", key), _unknown("zone", key.removeprefix("zone:"), zones)))
        elif not key.startswith("zone:") and key not in people and key not in ROLE_NAMES \
                and key != CONTACT_FALLBACK:
            problems.append(_Problem(("contacts", key), (
                f"unknown person or role {key!r}: a contacts key is a person id of `people`, a role name "
                f"({_roles_text()}), zone:<zone id> or {CONTACT_FALLBACK}")))
        for j, channel in enumerate(entries):
            for k, scoped in enumerate(channel.zones if isinstance(channel, Contact) else []):
                if scoped not in zones:
                    problems.append(_Problem(("contacts", key, j, "zones", k), _unknown("zone", scoped, zones)))
    for i, device in enumerate(config.devices):
        if device.kind is DeviceKind.STRIP_METER and device.rated_a is not None and device.rated_a > MAX_STRIP_A:
            problems.append(_Problem(("devices", i, "rated_a"), (
                f"{device.rated_a:g} A is more than a power strip carries (at most {MAX_STRIP_A:g} A, a rack PDU; "
                "GB 2099 strips are 10 A or 16 A) and would keep its load rules quiet: give the rating on the "
                "strip's label, or remove the key for 10 A")))
        if device.zone not in zones:
            problems.append(_Problem(("devices", i, "zone"), _unknown("zone", device.zone, zones)))
        if device.offline_after_s is not None:
            name, every = _report_interval(device)
            if device.offline_after_s < every:
                problems.append(_Problem(("devices", i, "offline_after_s"), (
                    f"{device.offline_after_s:g} s is shorter than the device's {name} ({every:g} s): it would "
                    f"be called offline between two reports; give at least {every:g}, or remove the key for "
                    "the catalog's limit")))
        for field in ("strip", "upstream"):
            ref = getattr(device, field)
            if ref is None:
                continue
            if ref not in devices:
                problems.append(_Problem(("devices", i, field), _unknown("device", ref, devices)))
            elif kinds[ref] is not DeviceKind.STRIP_METER:
                problems.append(_Problem(("devices", i, field), f"{ref!r} is not a strip_meter"))
            elif ref == device.id:
                problems.append(_Problem(("devices", i, field), "a strip cannot feed itself"))
    badges: dict[str, int] = {}
    for i, person in enumerate(config.people):
        for j, role in enumerate(person.roles):
            if role not in ROLE_NAMES:
                problems.append(_Problem(("people", i, "roles", j), f"unknown role {role!r} (known: {_roles_text()})"))
        if person.host is not None and person.host not in people:
            problems.append(_Problem(("people", i, "host"), _unknown("person", person.host, people)))
        if person.badge is not None:
            key = badge_key(person.badge)
            if key in badges:
                problems.append(_Problem(("people", i, "badge"), "badge already used by another person (badges "
                                         "match whatever their case: readers differ); give each person their own"))
            badges[key] = i
    for role, ids in config.roles.items():
        if role not in ROLE_NAMES:
            problems.append(_Problem(("roles", role), f"unknown role {role!r} (known: {_roles_text()})"))
        for j, pid in enumerate(ids):
            if pid not in people:
                problems.append(_Problem(("roles", role, j), _unknown("person", pid, people)))
    for i, entry in enumerate(config.roster):
        if entry.person not in people:
            problems.append(_Problem(("roster", i, "person"), _unknown("person", entry.person, people)))
        if entry.shift not in shifts:
            problems.append(_Problem(("roster", i, "shift"), _unknown("shift", entry.shift, shifts)))
        if entry.zone not in zones:
            problems.append(_Problem(("roster", i, "zone"), _unknown("zone", entry.zone, zones)))

    for section, known, table in (
        ("zones", zones, config.thresholds.zones),
        ("devices", devices, config.thresholds.devices),
    ):
        for key, rules in table.items():
            loc: Loc = ("thresholds", section, key)
            if key not in known:
                problems.append(_Problem(loc, _unknown(section[:-1], key, known)))
            for rule, params in rules.items():
                if rule not in DEFAULTS:
                    problems.append(_Problem((*loc, rule), f"unknown rule {rule!r}"))
                    continue
                for name in params:
                    if name not in DEFAULTS[rule]:
                        allowed = ", ".join(sorted(DEFAULTS[rule])) or "none"
                        problems.append(
                            _Problem((*loc, rule, name), f"unknown parameter (allowed: {allowed})")
                        )
                    elif name in SITE_WIDE.get(rule, ()):
                        problems.append(_Problem((*loc, rule, name), (
                            f"site-wide only: {name} cannot be set per {section[:-1]}; remove it "
                            f"(the catalog default {DEFAULTS[rule][name]:g} applies)")))
    return problems


CONTACT_ENTRY = ("a contacts entry is an apprise URL ('mailto://…', 'wecom://…') or a mapping "
                 "{url, zones, min_severity}")


def _validation_problems(exc: ValidationError) -> list[_Problem]:
    """pydantic's errors as problems; a contacts entry (a URL or a mapping: a union) gets one sentence
    saying what it may be instead of one error per union member."""
    errors = [(tuple(e["loc"]), message_of(e), e["type"]) for e in exc.errors()]
    mapping_errors = {loc[:3] for loc, _, _ in errors
                      if len(loc) > 4 and loc[0] == "contacts" and loc[3] == "Contact"}
    out: list[_Problem] = []
    for loc, msg, kind in errors:
        if len(loc) == 2 and loc[0] == "contacts" and kind == "list_type":
            out.append(_Problem(loc, "a contacts key takes a list of channels: write them in [ ], "
                                     "e.g. ['mailto://lead@example.com']"))
        elif len(loc) >= 4 and loc[0] == "contacts" and loc[3] in ("str", "Contact"):
            entry = loc[:3]
            if entry in mapping_errors:  # a mapping with a bad key: name that key, drop the string branch
                if len(loc) > 4:
                    out.append(_Problem((*entry, *loc[4:]), msg))
            elif loc[3] == "str":
                out.append(_Problem(entry, CONTACT_ENTRY))
        else:
            out.append(_Problem(loc, msg))
    return out


def parse_site(text: str, source: str) -> Site:
    """Parse and validate a site file; `SiteError` lists every problem as file:line: field: reason."""
    try:
        doc = parse_yaml(text, source, "a site file is a mapping with at least `site:`")
    except YamlFileError as exc:
        raise SiteError(exc.problems) from None
    return site_from_doc(doc)


def site_from_doc(doc: YamlDoc) -> Site:
    """Validate a parsed site file: schema errors and the cross-checks of what is valid, all at once."""
    if "edge" in doc.data and not set(doc.data) & {"floors", "zones", "people", "shifts", "roster"}:
        # An edge file given for the site file: one line, not one "unknown key" per section of it.
        raise SiteError([doc.message((), "this is an edge agent's file (edge:, uplink:, devices: with vendors), "
                                         "not a site file: give the site file, the one with site:, floors:, zones:")])
    checked = validate(doc, SiteConfig, ("floors", "zones", "devices", "people", "shifts", "roster"),
                       stand_ins={"site": {"id": "x"}},
                       explain=lambda exc: [(p.loc, p.message) for p in _validation_problems(exc)])
    if checked.value is not None:
        for problem in _cross_check(checked.value):
            if not checked.about_dropped(problem.message):
                doc.add(checked.place(problem.loc), problem.message)
    if doc.problems or checked.value is None:
        raise SiteError(doc.problems)
    config = checked.value
    site = Site(config, doc.source)
    # A seat without a smart plug still gets its end-of-shift self-check, so an unknown seat is allowed;
    # but a misspelt one silently loses the seat's plug rules and its operator's pages: say so.
    seats = {d.seat for d in config.devices if d.seat is not None}
    for i, entry in enumerate(config.roster):
        if entry.seat is not None and entry.seat not in seats:
            site.warnings.append(doc.message(("roster", i, "seat"), (
                f"no device has seat {entry.seat!r}: its plug rules and operator pages do not apply; correct "
                f"it if misspelt, or give the seat's smart plug `seat: {entry.seat}`")))
    return site
