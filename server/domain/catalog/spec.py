"""What one rule declaration holds (`RuleSpec`), the generic threshold it may carry (`Gauge`), its row in
docs/alarms.md (`AlarmDoc`), and the shorthands for the declarations that only differ in their own words
(controls, unraised rows, duties, the fires that evacuate).

Pure data: this module imports nothing from the domain, so that the site parser, the rules, the paging
plan and the scheduler can all read the catalog without an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType

from gateway.contract import DeviceKind, Severity

ANY_SEVERITY = "*"
"""Key of `RuleSpec.pages` for the roles paged at every severity."""


class Check(StrEnum):
    """Who judges the rule, which decides the tables it belongs to."""

    READINGS = "readings"
    """The rule engine, from readings and events; its parameters can be overridden in the site file."""
    CONTROL = "control"
    """A permission check on a person's action, not an alarm."""
    SCHEDULE = "schedule"
    """The inspection scheduler: a duty missed."""
    SERVER = "server"
    """The server watching its own pipeline (not a RULES.md row)."""
    NOT_RAISED = "not raised"
    """A RULES.md row the server raises no alarm for (yet)."""


@dataclass(frozen=True, slots=True)
class Param:
    default: float
    unit: str
    note: str = ""
    """Why the default is what it is, when RULES.md gives no number ("ours")."""


class Worse(StrEnum):
    """Which way an alarm's value gets more dangerous."""

    HIGHER = "higher"
    LOWER = "lower"
    EITHER = "either"
    """Outside a band on either side (a voltage, an office temperature): no single worst value."""


class Place(StrEnum):
    """Where an alarm is raised, which changes its first page (RULES.md §4: 机房值班 stands for 领班 in a machine
    room, and a critical alarm there pages 机房值班 as well)."""

    FLOOR = "floor"
    """An office zone."""
    MACHINE_ROOM = "machine room"


@dataclass(frozen=True, slots=True)
class Measure:
    """What the value of a rule's findings measures: its unit ("" for a count) and which way is worse."""

    unit: str
    worse: Worse = Worse.HIGHER

    def worst(self, *values: float | None) -> float | None:
        """The most dangerous of `values` (None ones left out); None when there is none or no single worst."""
        known = [v for v in values if v is not None]
        if not known or self.worse is Worse.EITHER:
            return None
        return min(known) if self.worse is Worse.LOWER else max(known)


@dataclass(frozen=True, slots=True)
class Stage:
    """One threshold of a gauge: names of the rule's parameters, and the severity while it is active."""

    severity: Severity
    on: str
    off: str
    hold: str
    clear_hold: str
    strict: bool = False


@dataclass(frozen=True, slots=True)
class Gauge:
    """A rule that is only "metric -> thresholds -> fixed severities" (`rules.generic.GaugeRule` runs it).

    `of_rating`: the metric is judged as a fraction of the device's rated current (`rated_a`). The
    finding's value is always the raw metric.
    """

    kinds: frozenset[DeviceKind]
    metric: str
    stages: tuple[Stage, ...]
    of_rating: bool = False
    rising: bool = True


@dataclass(frozen=True, slots=True)
class AlarmDoc:
    """The rule's row in docs/alarms.md, in the words of a person reading an alarm (docgen writes the table)."""

    subject: str
    """What the alarm's `subject` names (a device, zone, person or task)."""
    zone: str
    """What the alarm's `zone` field holds ("none" when it has none)."""
    ends: str
    """What ends the alarm."""
    severity: str = ""
    """The severity column when the declared severities need their conditions said; empty: the declared
    severities as stages ("major → critical"), with ", latching" for a latching rule."""
    family: str = ""
    """The family column when it cites more than its section; empty: the family's group and section."""


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """Everything about one rule id of RULES.md §2 (or of the server's own supervision)."""

    id: str
    section: str
    """RULES.md section of its row, e.g. "2.1"."""
    title: str
    title_zh: str
    severities: tuple[Severity, ...]
    """The severities it can raise (none for a control)."""
    source: str
    """The regulation clauses and references of its RULES.md row."""
    check: Check
    params: Mapping[str, Param] = field(default_factory=dict)
    site_wide: frozenset[str] = frozenset()
    """Parameters only the catalog default sets (judged per floor, edge, channel or visitor)."""
    latching: bool = False
    """Stays open after its condition clears until a person closes it (RULES.md §3)."""
    life_safety: bool = False
    """Listed first on the page; never grouped, held or silenced when paged."""
    security: bool = False
    """Someone may be where they must not be, or the access control is defeated: a silence mutes its pushes only
    when it names the rule or the alarm's subject (docs/alarms.md: silences and security alarms)."""
    pages: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Severity value (or ANY_SEVERITY) -> roles paged first (RULES.md §2 Action / §2.9 Notify)."""
    push_delay: timedelta | None = None
    """A warning pushed this long after its raise (RULES.md times the push later than the raise)."""
    inspect_within: timedelta | None = None
    """Once its alarm clears, an inspection of the device (or zone) is due within this."""
    convenes_command: bool = False
    """Critical rules that convene emergency command (RULES.md §4, critical row)."""
    evacuates: bool = False
    """Always starts an evacuation (its evacuation message pages command and the groups)."""
    starts_verification: bool = False
    """Starts the §3 verification sequence: acknowledging it is the 60 s acknowledgement."""
    cuts_relay: bool = False
    """A critical alarm of it cuts the relays that feed the load (RULES.md §2.1)."""
    degrades_life_safety: bool = False
    """Its alarm unresolved means a life-safety function is degraded (RULES.md §4: 4 h -> 现场指挥组)."""
    inhibited_by_fire: bool = False
    """A fire-detection alarm: no separate push while fire.confirmed is open in its zone."""
    device_offline: bool = False
    """A device's silence: no separate push while its edge is offline (sup.gateway_offline)."""
    gauge: Gauge | None = None
    measure: Measure | None = None
    """What its findings' value measures; None when they carry no value (or only a 1/0 flag)."""
    message: str = ""
    message_zh: str = ""
    """The finding's words, for a rule run from its gauge (other rules say them in their class)."""
    doc: AlarmDoc | None = None
    """Its row in docs/alarms.md; every rule the server raises has one."""
    raised_in: Mapping[str, tuple[Place, ...]] = field(default_factory=dict)
    """Severity value (or ANY_SEVERITY) -> the only places the engine raises it (a machine-room door's major);
    unset: anywhere. The catalog test holds it to the zones of what the engine raises."""

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def defaults(self) -> dict[str, float]:
        return {name: p.default for name, p in self.params.items()}

    def places(self, severity: Severity) -> tuple[Place, ...]:
        """Where it raises `severity`."""
        return self.raised_in.get(severity.value) or self.raised_in.get(ANY_SEVERITY) or ANYWHERE


ANYWHERE = (Place.FLOOR, Place.MACHINE_ROOM)
"""`RuleSpec.places` of a severity the catalog does not restrict."""
IN_MACHINE_ROOM: Mapping[str, tuple[Place, ...]] = MappingProxyType({ANY_SEVERITY: (Place.MACHINE_ROOM,)})
"""`RuleSpec.raised_in` of a rule whose every alarm is in a machine room (its probes, its door)."""


def paged_at_any_severity(*roles: str) -> dict[str, tuple[str, ...]]:
    """`RuleSpec.pages` of a rule that pages the same roles whatever its severity (none: nobody is paged)."""
    return {ANY_SEVERITY: roles} if roles else {}


def control(rule: str, section: str, source: str) -> RuleSpec:
    """A permission check on a person's action: no title, no severity, nobody paged."""
    return RuleSpec(rule, section, "", "", (), source, Check.CONTROL)


def not_raised(rule: str, section: str, severities: tuple[Severity, ...], source: str, *paged: str) -> RuleSpec:
    """A RULES.md row the server raises no alarm for: untitled, paging `paged` at any severity."""
    return RuleSpec(rule, section, "", "", severities, source, Check.NOT_RAISED, pages=paged_at_any_severity(*paged))


def evacuating(
    rule: str,
    section: str,
    title: str,
    title_zh: str,
    source: str,
    *,
    doc: AlarmDoc,
    latching: bool = True,
    params: Mapping[str, Param] | None = None,
    inspect_within: timedelta | None = None,
    starts_verification: bool = False,
    raised_in: Mapping[str, tuple[Place, ...]] | None = None,
) -> RuleSpec:
    """A fire that calls for the critical response (RULES.md §4): a critical life-safety alarm that convenes
    emergency command and always starts an evacuation."""
    return RuleSpec(
        rule,
        section,
        title,
        title_zh,
        (Severity.CRITICAL,),
        source,
        Check.READINGS,
        params=params or {},
        latching=latching,
        life_safety=True,
        inspect_within=inspect_within,
        convenes_command=True,
        evacuates=True,
        starts_verification=starts_verification,
        doc=doc,
        raised_in=raised_in or {},
    )


def scheduled(
    rule: str,
    section: str,
    title: str,
    title_zh: str,
    severities: tuple[Severity, ...],
    source: str,
    *paged: str,
    doc: AlarmDoc,
) -> RuleSpec:
    """A duty the inspection scheduler finds missed, paging `paged` at any severity."""
    return RuleSpec(
        rule,
        section,
        title,
        title_zh,
        severities,
        source,
        Check.SCHEDULE,
        pages=paged_at_any_severity(*paged),
        doc=doc,
    )
