"""Training duties (RULES.md §6 #11, §2.9 train.*): from HR records, not from tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from gateway.contract import Severity
from server.domain.inspections.catalog import D
from server.domain.inspections.overdue import OverdueFinding, OverdueRule, escalation_steps
from server.domain.inspections.site_view import RosterEntry, SiteView, duties
from server.domain.roster import Duty


class Course(StrEnum):
    INDUCTION = "induction"
    """Pre-job safety training (岗前培训), fire content of 61号令 Art.36 included."""
    FIRE_ANNUAL = "fire_annual"


@dataclass(frozen=True, slots=True)
class Training:
    person: str
    course: Course
    passed_at: datetime


@dataclass(frozen=True, slots=True)
class Starter:
    """A new employee from HR: the induction must be passed before their first rostered shift."""

    person: str
    starts: date


TRAIN_FIRE = OverdueRule("train.fire_annual_overdue", "", 365 * D, Severity.MINOR, ("hr", "safety_officer"))
TRAIN_NEW = OverdueRule("train.new_staff", "", timedelta(0), Severity.MAJOR, ("shift_lead", "hr"))
STARTER_HORIZON = 62 * D
"""How far after `starts` the first rostered shift is looked for."""


def first_duty(site: SiteView, person: str, starts: date, now: datetime) -> Duty[RosterEntry] | None:
    """The person's first rostered shift that starts on or after `starts` and has begun by `now`."""
    since = datetime.combine(starts, time(0), site.tz).astimezone(UTC)
    if since > now:
        return None
    until = min(now, since + STARTER_HORIZON)
    for duty in duties(site, since, until):
        if duty.entry.person == person and since <= duty.start <= now:
            return duty
    return None


def evaluate_training(site: SiteView, records: Sequence[Training], starters: Sequence[Starter],
                      origin: datetime, now: datetime) -> list[OverdueFinding]:
    """train.new_staff (no induction at the start of the first rostered shift, until one is recorded) and
    train.fire_annual_overdue (> 365 d since the person's last fire training; the induction counts;
    without any record the age is counted from `origin`, when monitoring started). Only people on the
    roster are checked; a starter is checked for annual training only from the induction on."""
    passed: dict[str, list[Training]] = {}
    for record in records:
        if record.passed_at <= now:
            passed.setdefault(record.person, []).append(record)
    zone_of: dict[str, str] = {}
    for entry in site.config.roster:
        zone_of.setdefault(entry.person, entry.zone)
    out: list[OverdueFinding] = []
    starting = {s.person: s for s in starters}
    for person in sorted(zone_of):
        mine = passed.get(person, [])
        zone = zone_of[person]
        starter = starting.get(person)
        if starter is not None and not any(r.course is Course.INDUCTION for r in mine):
            duty = first_duty(site, person, starter.starts, now)
            if duty is not None:
                steps = escalation_steps(site, TRAIN_NEW, TRAIN_NEW.severity, duty.entry.zone, duty.start, now,
                                         duty.start + timedelta(seconds=1))
                out.append(OverdueFinding(TRAIN_NEW.id, TRAIN_NEW.severity, person, duty.entry.zone, duty.start, None,
                                          steps))
            continue  # a starter's annual clock starts with the induction
        last = max((r.passed_at for r in mine), default=origin)
        late_at = last + TRAIN_FIRE.after
        if now >= late_at:
            out.append(OverdueFinding(TRAIN_FIRE.id, TRAIN_FIRE.severity, person, zone, late_at, None,
                                      escalation_steps(site, TRAIN_FIRE, TRAIN_FIRE.severity, zone, late_at, now)))
    return out
