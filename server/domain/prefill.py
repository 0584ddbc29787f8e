"""Checklist pre-fill (RULES.md §6: "for each item the system pre-fills sensor data"). PURE.

A checklist item that names a `prefill` kind gets a *suggested* outcome (pass, fail or unknown) and
the evidence behind it, in words a person can check on the spot ("plug-s001 max 1,840 W at 14:02
since last check 2026-11-28 18:00"). The person confirms or corrects; the service stores both.

This module only decides what given facts suggest. Gathering them (live device state, the alarm
table, the series store, backup archives) is `server.services.inspection_facts`.

Picks (ours, no number in RULES.md): standby ≤ 20 W ("PC, monitor and phone off or in standby");
a high-power appliance is a peak ≥ the elec.high_power_appliance step (800 W); a device is silent
after 3 × its reporting interval or heartbeat; probe sanity is 5–45 °C and 5–95 % RH; the last
backup is stale after 24 h (it.backup_stale). An operator issue is late once its lead_forward
deadline (30 min, esc.lead_not_forwarded) has passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from server.domain.thresholds import DEFAULTS

STANDBY_W = 20.0
HIGH_POWER_W = float(DEFAULTS["elec.high_power_appliance"]["step_w"])
SILENT_FACTOR = 3
PROBE_TEMP_C = (5.0, 45.0)
PROBE_RH_PCT = (5.0, 95.0)
BACKUP_MAX_AGE = timedelta(hours=24)
MAX_EVIDENCE = 12
"""Longer lists end with "… and N more": a checklist line stays readable."""

DOOR_TYPES: Mapping[str, tuple[str, ...]] = {
    "fire_doors_shut": ("fire_door",),
    "mr_door_closed": ("machine_room",),
    "door_self_closes": ("machine_room",),
}
"""Which doors a door_state item is about (by the device's door_type)."""

ALERT_PREFIXES = ("elec.", "door.")
"""The lead round reviews open elec.* and door.* alerts (RULES §6 #2)."""


class Suggested(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    """The system does not know (no data, stale data): the person decides without a hint."""


@dataclass(frozen=True, slots=True)
class Suggestion:
    outcome: Suggested
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeviceFact:
    """What the server last heard from one device."""

    id: str
    kind: str
    door_type: str | None = None
    seat: str | None = None
    online: bool | None = None
    last_seen: datetime | None = None
    metrics: Mapping[str, bool | int | float] = field(default_factory=dict)
    metric_ts: Mapping[str, datetime] = field(default_factory=dict)
    interval: timedelta = timedelta(seconds=60)
    """The longest of its reporting interval and heartbeat: silence beyond 3 × this is an outage."""


@dataclass(frozen=True, slots=True)
class Peak:
    """The highest power_w sample of a plug in the period, from the series store."""

    device: str
    max_w: float
    at: datetime
    samples: int


@dataclass(frozen=True, slots=True)
class AlarmFact:
    id: int
    rule: str
    subject: str
    zone: str | None
    severity: str
    raised_at: datetime
    is_open: bool
    acknowledged: bool


@dataclass(frozen=True, slots=True)
class IssueFact:
    """An operator issue the 当日领班 owes an answer to (a lead_forward task, RULES §6 #2, §4)."""

    seat: str | None
    reported_by: str | None
    """The operator who signed the self-check that raised it."""
    reported_at: datetime
    due_at: datetime
    what: tuple[str, ...]
    """The failed items, by the operator's note where there is one, else the item text."""
    handled: str | None = None
    """"resolved" or "forwarded" once the lead signed, else None (still open)."""
    handled_at: datetime | None = None
    handled_note: str = ""


@dataclass(frozen=True, slots=True)
class ReportFact:
    """One operator self-check (the report the lead collects) in the round's period."""

    seat: str | None
    operator: str | None
    due_at: datetime
    done_at: datetime | None
    """None: not submitted yet."""


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the suggestions of one task may use, already narrowed to the task's scope."""

    now: datetime
    since: datetime
    """The last check of the same duty (or the fallback start of the period)."""
    tz: tzinfo
    devices: tuple[DeviceFact, ...] = ()
    peaks: Mapping[str, Peak] = field(default_factory=dict)
    """power_w peaks since `since`, per plug; a plug absent here had no sample (or no series store)."""
    series_available: bool = True
    alarms: tuple[AlarmFact, ...] = ()
    """Alarms on the scope that are open now or were raised since `since`."""
    last_backup: datetime | None = None
    backup_known: bool = False
    """False when no backup folder is configured: the suggestion is then unknown, not fail."""
    issues: tuple[IssueFact, ...] = ()
    """Operator issues of the scope raised since `since`, and older ones still open."""
    reports: tuple[ReportFact, ...] = ()
    """Operator self-checks of the scope signed since `since`, or run since then and still open."""


def _t(value: datetime, tz: tzinfo, now: datetime | None = None) -> str:
    """Local time, with the date when it is not the day of `now`."""
    local = value.astimezone(tz)
    if now is not None and local.date() == now.astimezone(tz).date():
        return local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def _cap(lines: Sequence[str]) -> tuple[str, ...]:
    if len(lines) <= MAX_EVIDENCE:
        return tuple(lines)
    return (*lines[:MAX_EVIDENCE], f"… and {len(lines) - MAX_EVIDENCE} more")


@dataclass(slots=True)
class _Evidence:
    """The lines gathered for one item, by what each says of it."""

    fail: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    ok: list[str] = field(default_factory=list)

    def judged(self, lead: Sequence[str] = ()) -> Suggestion:
        """One failing fact fails the item; else one unknown leaves it to the person; the lines that
        decided come first, after the `lead` lines (a summary)."""
        if self.fail:
            return Suggestion(Suggested.FAIL, _cap([*lead, *self.fail, *self.unknown, *self.ok]))
        if self.unknown:
            return Suggestion(Suggested.UNKNOWN, _cap([*lead, *self.unknown, *self.ok]))
        return Suggestion(Suggested.PASS, _cap([*lead, *self.ok]))


def _since(f: Facts) -> str:
    return f"since last check {_t(f.since, f.tz)}"


def _fresh(device: DeviceFact, metric: str, now: datetime) -> bool:
    ts = device.metric_ts.get(metric)
    return ts is not None and now - ts <= SILENT_FACTOR * device.interval


def plug_power(f: Facts) -> Suggestion:
    """"PC, monitor and phone off or in standby": each seat plug's latest power_w ≤ standby, or relay off."""
    plugs = [d for d in f.devices if d.kind == "smart_plug" and d.seat is not None]
    if not plugs:
        return Suggestion(Suggested.UNKNOWN, ("no metered plug at this seat",))
    found = _Evidence()
    for plug in plugs:
        if plug.metrics.get("relay_on") is False:
            found.ok.append(f"{plug.id} relay off")
            continue
        watts = plug.metrics.get("power_w")
        if not isinstance(watts, (int, float)) or isinstance(watts, bool) or not _fresh(plug, "power_w", f.now):
            last = plug.metric_ts.get("power_w")
            found.unknown.append(
                f"{plug.id} no recent power reading" + (f" (last {_t(last, f.tz, f.now)})" if last else "")
            )
            continue
        at = _t(plug.metric_ts["power_w"], f.tz, f.now)
        if watts <= STANDBY_W:
            found.ok.append(f"{plug.id} {watts:,.0f} W at {at} (standby ≤ {STANDBY_W:,.0f} W)")
        else:
            found.fail.append(f"{plug.id} still drawing {watts:,.0f} W at {at} (standby ≤ {STANDBY_W:,.0f} W)")
    return found.judged()


def elec_events(f: Facts) -> Suggestion:
    """"No private strip or high-power appliance" / "no electricity misuse": elec.* alarms raised since
    the last check and power peaks ≥ the high-power step on the plugs in scope."""
    fail: list[str] = []
    for alarm in sorted(f.alarms, key=lambda a: a.raised_at):
        if alarm.rule.startswith("elec.") and alarm.raised_at >= f.since:
            fail.append(f"{alarm.rule} on {alarm.subject} at {_t(alarm.raised_at, f.tz, f.now)}"
                        + (" (open)" if alarm.is_open else ""))
    plugs = [d for d in f.devices if d.kind == "smart_plug"]
    quiet: list[str] = []
    for plug in plugs:
        peak = f.peaks.get(plug.id)
        if peak is None:
            continue
        line = f"{plug.id} max {peak.max_w:,.0f} W at {_t(peak.at, f.tz, f.now)} {_since(f)}"
        (fail if peak.max_w >= HIGH_POWER_W else quiet).append(line)
    if fail:
        return Suggestion(Suggested.FAIL, _cap(fail))
    if plugs and f.series_available and len(quiet) < len(plugs):
        missing = [p.id for p in plugs if p.id not in f.peaks]
        return Suggestion(Suggested.UNKNOWN, _cap([f"no elec.* alarm {_since(f)}", *quiet,
                                                   f"no power readings {_since(f)} from {', '.join(missing)}"]))
    if plugs and not f.series_available:
        return Suggestion(Suggested.UNKNOWN, (f"no elec.* alarm {_since(f)}", "no reading history to check peaks"))
    return Suggestion(Suggested.PASS, _cap([f"no elec.* alarm {_since(f)}", *quiet]))


def door_state(f: Facts, item_id: str) -> Suggestion:
    """Doors of the item's type closed now (door_open false, fresh), and none held open since the last check."""
    types = DOOR_TYPES.get(item_id, ("fire_door",))
    doors = [d for d in f.devices if d.door_type in types]
    if not doors:
        return Suggestion(Suggested.UNKNOWN, (f"no {' or '.join(types)} door sensor in this area",))
    found = _Evidence()
    held = {a.subject: a for a in f.alarms if a.rule in ("door.held_open", "door.fire_door_held_open")
            and (a.is_open or a.raised_at >= f.since)}
    for door in doors:
        state = door.metrics.get("door_open")
        ts = door.metric_ts.get("door_open")
        if state is True and ts is not None:
            found.fail.append(f"{door.id} reported open at {_t(ts, f.tz, f.now)}")
        elif door.online is False:
            since = f" since {_t(door.last_seen, f.tz, f.now)}" if door.last_seen else ""
            found.unknown.append(f"{door.id} offline{since}")
        elif state is False and ts is not None:
            found.ok.append(f"{door.id} closed (reported {_t(ts, f.tz, f.now)})")
        else:
            found.unknown.append(f"{door.id} has not reported its state")
        alarm = held.get(door.id)
        if alarm is not None:
            found.fail.append(f"{alarm.rule} on {door.id} at {_t(alarm.raised_at, f.tz, f.now)}"
                        + (" (open)" if alarm.is_open else ""))
    return found.judged()


def open_alerts(f: Facts) -> Suggestion:
    """"Open elec.* and door.* alerts reviewed": acknowledged ones count as reviewed."""
    open_ = sorted((a for a in f.alarms if a.is_open and a.rule.startswith(ALERT_PREFIXES)),
                   key=lambda a: a.raised_at)
    if not open_:
        return Suggestion(Suggested.PASS, ("no open elec.* or door.* alert",))
    lines = [f"{a.rule} on {a.subject} since {_t(a.raised_at, f.tz, f.now)}, "
             + ("acknowledged" if a.acknowledged else "not acknowledged") for a in open_]
    if any(not a.acknowledged for a in open_):
        return Suggestion(Suggested.FAIL, _cap(lines))
    return Suggestion(Suggested.PASS, _cap(lines))


def mr_probe(f: Facts) -> Suggestion:
    """"Probe readings sane": machine-room probes fresh and within plausible ranges."""
    probes = [d for d in f.devices if d.kind in ("mr_probe", "temp_sensor")]
    if not probes:
        return Suggestion(Suggested.UNKNOWN, ("no machine-room probe",))
    found = _Evidence()
    for probe in probes:
        seen = False
        for metric, (low, high), unit in (("temperature_c", PROBE_TEMP_C, "°C"), ("humidity_pct", PROBE_RH_PCT, "%")):
            value = probe.metrics.get(metric)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            seen = True
            at = _t(probe.metric_ts[metric], f.tz, f.now)
            if not _fresh(probe, metric, f.now):
                found.fail.append(f"{probe.id} {metric} silent since {at}")
            elif not low <= value <= high:
                found.fail.append(f"{probe.id} {metric} {value:g} {unit} at {at} outside {low:g}–{high:g} {unit}")
            else:
                found.ok.append(f"{probe.id} {value:g} {unit} at {at}")
        if not seen:
            found.unknown.append(f"{probe.id} has not reported")
    return found.judged()


def sensor_health(f: Facts) -> Suggestion:
    """"Offline or stuck sensors reviewed": which devices are offline, silent or never heard from."""
    bad: list[str] = []
    for device in sorted(f.devices, key=lambda d: d.id):
        if device.online is False:
            bad.append(f"{device.id} offline" + (f" since {_t(device.last_seen, f.tz, f.now)}"
                                                  if device.last_seen else ""))
        elif device.last_seen is None:
            bad.append(f"{device.id} never reported")
        elif f.now - device.last_seen > SILENT_FACTOR * device.interval:
            bad.append(f"{device.id} silent since {_t(device.last_seen, f.tz, f.now)}")
    if bad:
        return Suggestion(Suggested.FAIL, _cap([f"{len(bad)} of {len(f.devices)} devices need a look", *bad]))
    return Suggestion(Suggested.PASS, (f"all {len(f.devices)} devices reporting",))


def it_backup(f: Facts) -> Suggestion:
    """"Last automatic backup succeeded": the newest verified archive is < 24 h old (it.backup_stale)."""
    if not f.backup_known:
        return Suggestion(Suggested.UNKNOWN, ("no backup folder configured",))
    if f.last_backup is None:
        return Suggestion(Suggested.FAIL, ("no backup archive found",))
    age = f.now - f.last_backup
    hours = age.total_seconds() / 3600
    line = f"last backup {_t(f.last_backup, f.tz)} ({hours:,.1f} h ago)"
    return Suggestion(Suggested.PASS if age <= BACKUP_MAX_AGE else Suggested.FAIL, (line,))


def _mins(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"


def forwards(f: Facts) -> Suggestion:
    """"Operator reports collected, unresolved ones forwarded to supervisor": every operator issue since
    the last check resolved or forwarded (pass); one still open past its 30 min deadline fails; one open
    within its deadline, or a self-check not yet submitted, leaves it to the lead (the reports are not
    all in); no self-check and no issue at all is no data (unknown, never a silent pass)."""
    if not f.issues and not f.reports:
        return Suggestion(Suggested.UNKNOWN, (f"no operator self-check or issue {_since(f)}",))
    found = _Evidence()
    for issue in sorted(f.issues, key=lambda i: i.reported_at):
        who = f"{issue.reported_by} {_t(issue.reported_at, f.tz, f.now)}" if issue.reported_by \
            else _t(issue.reported_at, f.tz, f.now)
        head = f"seat {issue.seat or '?'} {'; '.join(issue.what) or 'issue'} ({who})"
        if issue.handled is not None and issue.handled_at is not None:
            verb = "forwarded to supervisor" if issue.handled == "forwarded" else "resolved"
            late = issue.handled_at - issue.due_at
            line = f"{head}: {verb} {_t(issue.handled_at, f.tz, f.now)}"
            line += f" ({_mins(late)} late)" if late > timedelta(0) else ""
            found.ok.append(line + (f" – {issue.handled_note}" if issue.handled_note else ""))
        elif f.now >= issue.due_at:
            found.fail.append(f"{head}: open, {_mins(f.now - issue.due_at)} past its "
                        f"{_t(issue.due_at, f.tz, f.now)} deadline")
        else:
            found.unknown.append(f"{head}: open, due {_t(issue.due_at, f.tz, f.now)}")
    pending = [r for r in f.reports if r.done_at is None]
    for report in sorted(pending, key=lambda r: (r.due_at, r.seat or "")):
        found.unknown.append(f"seat {report.seat or '?'} self-check ({report.operator or 'unassigned'}) not submitted, "
                       f"due {_t(report.due_at, f.tz, f.now)}")
    done = len(f.reports) - len(pending)
    head = f"{done} of {len(f.reports)} self-checks signed {_since(f)}, {len(f.issues)} issue(s)"
    return found.judged(lead=(head,))


KINDS = frozenset({"plug_power", "elec_events", "door_state", "open_alerts", "mr_probe", "sensor_health",
                   "it_backup", "forwards"})


def suggest(kind: str, item_id: str, facts: Facts) -> Suggestion:
    """The suggestion for one item of kind `kind` (a ChecklistItem.prefill)."""
    if kind == "plug_power":
        return plug_power(facts)
    if kind == "elec_events":
        return elec_events(facts)
    if kind == "door_state":
        return door_state(facts, item_id)
    if kind == "open_alerts":
        return open_alerts(facts)
    if kind == "mr_probe":
        return mr_probe(facts)
    if kind == "sensor_health":
        return sensor_health(facts)
    if kind == "it_backup":
        return it_backup(facts)
    if kind == "forwards":
        return forwards(facts)
    return Suggestion(Suggested.UNKNOWN, (f"no pre-fill for {kind!r}",))


def overridden(suggested: str | None, chosen: str) -> bool:
    """The person chose otherwise than a definite suggestion (unknown is no suggestion)."""
    return suggested in (Suggested.PASS.value, Suggested.FAIL.value) and chosen != suggested
