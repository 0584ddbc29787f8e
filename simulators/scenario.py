"""Scenario files: a timeline of things that happen on the floor and the alarms they must cause.

A scenario is the oracle of an end-to-end test: run it against the real edge and server, then check that
every `expect` alarm was raised (rule id from RULES.md §2, optional subject, within a time after a step)
and no `forbid` alarm was. The YAML shape::

    name: strip-overload                      # = file name without .yaml
    title: Heater on a seat strip
    description: ...
    floor: demo                               # directory under simulators/floors, or a path
    start: 2026-11-30T10:00:00+08:00          # simulated clock at t = 0 (shift logic uses it)
    duration: 10m                             # 90, "90s", "15m", "1h", "00:15:00"
    background: {scope: zones, zones: [f3-z1], incidents: false}
    timeline:
      - {at: 60s, name: heater_on, action: appliance_on, device: plug-strip-f3-03-spare, watts: 2000}
    expect:
      - {rule: elec.strip_overload, subject: strip-f3-03, after: heater_on, within: 120s}
    forbid:
      - {rule: fire.smoke_alarm}

Every problem is reported as ``file:line: field: message`` (the line of the offending YAML node).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from gateway.yaml_lines import Loc
from gateway.yamlfile import YamlFileError, parse_yaml, validate
from simulators.model import DEMO_FLOOR, Floor
from simulators.rules import RULE_IDS

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
FLOORS_DIR = DEMO_FLOOR.parent


class ScenarioError(YamlFileError):
    """An unusable scenario file; `problems` holds one ``file:line: field: message`` each."""


def _seconds(value: Any) -> float:
    """90 | "90s" | "15m" | "1h30m" | "00:15:00" -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration, not a boolean")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration such as 90, '90s', '15m', '1h' or '00:15:00'")
    text = value.strip()
    if re.fullmatch(r"\d+:\d{2}(:\d{2})?", text):
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 2:
            parts.append(0)
        return float(parts[0] * 3600 + parts[1] * 60 + parts[2])
    match = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?", text)
    if not text or match is None:
        raise ValueError(f"{value!r} is not a duration (90, '90s', '15m', '1h', '00:15:00')")
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Step(_Model):
    at: Seconds
    name: Id | None = None
    note: str = ""


class ApplianceOn(_Step):
    """Someone plugs an appliance (heater, kettle) into a plug: its watts add to the plug's load."""

    action: Literal["appliance_on"]
    device: Id
    watts: Annotated[float, Field(gt=0, le=4000)]
    label: str = "appliance"


class ApplianceOff(_Step):
    action: Literal["appliance_off"]
    device: Id
    label: str | None = None
    """None removes every appliance from the plug."""


class SeatLoad(_Step):
    """Force a plug's base load (PC left on after the shift, or switched off); `watts: null` restores."""

    action: Literal["seat_load"]
    device: Id
    watts: Annotated[float, Field(ge=0, le=4000)] | None


class AddStrip(_Step):
    """An unregistered strip plugged into a registered one (daisy chain); it shows up as an unknown
    Tasmota meter with `topic` and its load appears on `upstream`."""

    action: Literal["add_strip"]
    topic: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    upstream: Id
    watts: Annotated[float, Field(ge=0, le=4000)]


class Smoke(_Step):
    """Smoke at a detector (floor detector or machine-room probe)."""

    action: Literal["smoke"]
    device: Id
    active: bool = True
    """`active`, not `on`: YAML 1.1 reads an unquoted `on` key as the boolean true."""


class Heat(_Step):
    """A temperature sensor heats up (fire, hot spot): linear ramp to `to_c` at `rate_c_per_min`."""

    action: Literal["heat"]
    device: Id
    to_c: Annotated[float, Field(ge=-40, le=125)]
    rate_c_per_min: Annotated[float, Field(gt=0, le=60)] = 5.0


class SetTemperature(_Step):
    """A sensor reads a fixed value (a fault: 85.0 sentinel, a jump); `value: null` restores."""

    action: Literal["set_temperature"]
    device: Id
    value: Annotated[float, Field(ge=-300, le=300)] | None


class Flap(_Step):
    """A flapping sensor: it alternates between `high` and its true reading (and with `drop`, goes
    silent every other period), `count` times."""

    action: Literal["flap"]
    device: Id
    high: Annotated[float, Field(ge=-300, le=300)]
    period: Seconds = 30.0
    count: Annotated[int, Field(ge=1, le=1000)] = 6
    drop: bool = False


class AcFailure(_Step):
    """The machine room's air conditioning stops: inlet temperature drifts to `target_c`."""

    action: Literal["ac_failure"]
    zone: Id
    target_c: Annotated[float, Field(ge=20, le=60)] = 38.0
    tau_min: Annotated[float, Field(gt=0, le=600)] = 25.0


class AcRestore(_Step):
    action: Literal["ac_restore"]
    zone: Id


class Leak(_Step):
    action: Literal["leak"]
    device: Id
    active: bool = True


class Badge(_Step):
    """A badge at a door controller. The controller decides like a real one (revoked badge: denied;
    visitor outside approval: denied) unless `result` forces it; a grant opens the door for `open`."""

    action: Literal["badge"]
    device: Id
    person: Id | None = None
    badge: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    direction: Literal["in", "out"] = "in"
    result: Literal["granted", "denied"] | None = None
    open: Seconds = 4.0


class DoorOpen(_Step):
    """The door opens (after a grant) and stays open for `open`; the controller reports
    door_held_open once it exceeds its `held_after` limit."""

    action: Literal["door_held"]
    device: Id
    open: Seconds
    held_after: Seconds = 30.0


class DoorForced(_Step):
    """The door is pushed open while locked, with no grant and no request to exit."""

    action: Literal["door_forced"]
    device: Id
    open: Seconds = 8.0


class RequestToExit(_Step):
    action: Literal["rex"]
    device: Id
    open: Seconds = 4.0


class Silence(_Step):
    """The device stops reporting (battery pulled, radio gone). With `availability: true` its bridge or
    broker also announces it offline (Zigbee2MQTT availability, Last Will); a smoke detector whose battery
    is pulled says nothing at all, so the default is false."""

    action: Literal["silence"]
    device: Id
    availability: bool = False


class Resume(_Step):
    action: Literal["resume"]
    device: Id


class Battery(_Step):
    action: Literal["battery"]
    device: Id
    pct: Annotated[float, Field(ge=0, le=100)]


class CallPoint(_Step):
    action: Literal["call_point"]
    device: Id
    activated: bool = True


class Evacuate(_Step):
    """Everyone on the floor by the roster leaves through the egress doors (request to exit) over `over`,
    but for two who stay; the wardens then mark the arrivals safe at the assembly point through the
    server's API (all but three), drill or not (simulators/runner.py `_evacuate`)."""

    action: Literal["evacuate"]
    floor: Id
    over: Seconds = 300.0


class Operator(_Step):
    """Something a person does through the server's API at this time, e.g. "POST /api/evacuations
    {\"floor\": \"f3\", \"drill\": true}"; performed by `simulators.operator` (a dry run only lists it)."""

    action: Literal["operator"]
    request: str


Step = Annotated[
    ApplianceOn
    | ApplianceOff
    | SeatLoad
    | AddStrip
    | Smoke
    | Heat
    | SetTemperature
    | Flap
    | AcFailure
    | AcRestore
    | Leak
    | Badge
    | DoorOpen
    | DoorForced
    | RequestToExit
    | Silence
    | Resume
    | Battery
    | CallPoint
    | Evacuate
    | Operator,
    Field(discriminator="action"),
]


def _rule(value: str) -> str:
    if value not in RULE_IDS:
        raise ValueError(f"unknown rule id {value!r} (not in RULES.md §2)")
    return value


class _AlarmRef(_Model):
    rule: Annotated[str, BeforeValidator(_rule)]
    subject: Id | None = None
    """The device or zone the alarm is about (None: any)."""


class Expectation(_AlarmRef):
    severity: Literal["warning", "minor", "major", "critical"] | None = None
    after: Id | None = None
    """Name of the step that causes it (None: the start of the run)."""
    within: Seconds = 300.0
    """Deadline after `after` (simulated seconds)."""
    occurrences: int = Field(1, ge=1)
    """How many times the condition must have been seen by the deadline: one alarm per (rule, subject)
    counts its re-triggers, so a second offence by the same subject shows here, not as a new alarm."""


class Forbidden(_AlarmRef):
    """An alarm the scenario must not cause (e.g. no fire.confirmed for a cigarette)."""


class Background(_Model):
    scope: Literal["floor", "zones", "involved", "none"] = "floor"
    """Which other devices run normally: the whole floor, `zones`, only the devices the timeline names,
    or none."""
    zones: list[Id] = Field(default_factory=list)
    incidents: bool = False
    """Demo mode: random kettles, heaters and radio drop-outs (off in scenarios: they raise alarms)."""


class Scenario(_Model):
    name: Id
    title: str
    description: str = ""
    floor: str = "demo"
    start: AwareDatetime
    duration: Seconds
    seed: int = 1
    background: Background = Background()
    timeline: list[Step] = Field(min_length=1)
    expect: list[Expectation] = Field(min_length=1)
    forbid: list[Forbidden] = Field(default_factory=list)
    expect_cut: list[Id] = Field(default_factory=list)
    """Plugs the system must switch off by itself (power-cut policy, RULES.md §2.1) during the run."""

    @field_validator("timeline")
    @classmethod
    def _ordered(cls, steps: list[Any]) -> list[Any]:
        names = [s.name for s in steps if s.name]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"step names must be unique: {sorted(dupes)}")
        return steps

    def step_named(self, name: str) -> Any:
        return next((s for s in self.timeline if s.name == name), None)

    @property
    def start_dt(self) -> datetime:
        return self.start


# --------------------------------------------------------------------------------------------------
# Loading with file, line and field
# --------------------------------------------------------------------------------------------------


def _clean(loc: Sequence[str | int]) -> Loc:
    """Drop pydantic's discriminator tags (timeline.3.badge.person -> timeline[3].person)."""
    out: list[str | int] = []
    for index, part in enumerate(loc):
        if (
            isinstance(part, str)
            and index > 0
            and isinstance(loc[index - 1], int)
            and loc[:1] == ("timeline",)
            and index == 2
        ):
            continue
        out.append(part)
    return tuple(out)


def parse_scenario(text: str, source: str, floor: Floor | None = None) -> Scenario:
    """Validate a scenario; with `floor`, also check that every device, zone and person exists. Every
    problem is reported at once, schema and cross-references alike."""
    try:
        doc = parse_yaml(text, source, "a scenario is a mapping (name, title, start, ...)")
    except YamlFileError as exc:
        raise ScenarioError(exc.problems) from None
    checked = validate(doc, Scenario, ("timeline", "expect", "forbid"), stand_ins=_STAND_INS, clean=_clean)
    if checked.value is not None:
        for loc, message in _cross_check(checked.value, floor):
            if not checked.about_dropped(message):
                doc.add(checked.place(loc), message)
    if doc.problems or checked.value is None:
        raise ScenarioError(doc.problems)
    return checked.value


_STAND_INS: dict[str, Any] = {"name": "x", "title": "", "start": "2026-01-01T00:00:00+00:00", "duration": 86400,
                              "floor": "demo"}
"""Values for required keys that failed, so that the rest of the scenario is still cross-checked."""


def _cross_check(scenario: Scenario, floor: Floor | None) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    names = {s.name for s in scenario.timeline if s.name}
    for i, step in enumerate(scenario.timeline):
        if step.at > scenario.duration:
            problems.append((("timeline", i, "at"), f"after the end of the run ({scenario.duration:g} s)"))
    for section, items in (("expect", scenario.expect),):
        for i, item in enumerate(items):
            if item.after is not None and item.after not in names:
                problems.append(((section, i, "after"), f"no timeline step is named {item.after!r}"))
    if floor is None:
        return problems
    added = {s.topic for s in scenario.timeline if isinstance(s, AddStrip)}
    for i, step in enumerate(scenario.timeline):
        device = getattr(step, "device", None)
        if device is not None and device not in floor.devices and device not in added:
            problems.append((("timeline", i, "device"), f"no device {device!r} on floor {floor.directory.name}"))
        for field_name in ("zone",):
            zone = getattr(step, field_name, None)
            if zone is not None and zone not in floor.zones:
                problems.append((("timeline", i, field_name), f"no zone {zone!r} on floor {floor.directory.name}"))
        if isinstance(step, AddStrip) and step.upstream not in floor.devices:
            problems.append((("timeline", i, "upstream"), f"no device {step.upstream!r}"))
        if isinstance(step, Badge):
            if step.person is None and step.badge is None:
                problems.append((("timeline", i, "person"), "a badge step needs person or badge"))
            if step.person is not None and step.person not in floor.people:
                problems.append((("timeline", i, "person"), f"no person {step.person!r}"))
        if isinstance(step, Evacuate) and step.floor not in {z.floor for z in floor.zones.values()}:
            problems.append((("timeline", i, "floor"), f"no floor {step.floor!r}"))
    for i, zone in enumerate(scenario.background.zones):
        if zone not in floor.zones:
            problems.append((("background", "zones", i), f"no zone {zone!r}"))
    refs: tuple[tuple[str, list[_AlarmRef]], ...] = (
        ("expect", list(scenario.expect)),
        ("forbid", list(scenario.forbid)),
    )
    for section, items2 in refs:
        for i, item2 in enumerate(items2):
            subject = item2.subject
            known = subject in floor.devices or subject in floor.zones or subject in floor.people
            if subject is not None and not known:
                problems.append(((section, i, "subject"), f"no device, zone or person {subject!r}"))
    return problems


def floor_dir(name: str) -> Path:
    """A scenario's `floor:`: a directory name under simulators/floors, or a path."""
    path = Path(name)
    return path if path.is_absolute() or path.exists() else FLOORS_DIR / name


def scenario_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    return SCENARIO_DIR / f"{name}.yaml"


def load_scenario(name: str, floor: Floor | None = None) -> Scenario:
    path = scenario_path(name)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
        raise ScenarioError([f"{path}:1: (document): no such scenario (known: {known})"])
    return parse_scenario(path.read_text(encoding="utf-8"), str(path), floor)


def list_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
