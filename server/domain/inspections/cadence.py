"""When a calendar schedule falls due: its run instants in a range, and the drawn unannounced spot check."""

from __future__ import annotations

import calendar
import hashlib
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from server.domain.inspections.catalog import CadenceKind, Schedule
from server.domain.inspections.errors import InspectionError, require_aware

_EPOCH = date(2000, 1, 1)


def add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


SPOT_DAYS = 5
SPOT_FIRST = time(9, 0)
SPOT_SLOTS = 33
"""Quarter hours from 09:00 to 17:00 inclusive: when an unannounced check may start."""


def spot_run(seed: str, schedule_id: str, iso_year: int, iso_week: int, tz: tzinfo) -> datetime:
    """The drawn instant (UTC) of a RANDOM_WEEKLY schedule in one ISO week.

    Deterministic: SHA-256 over "seed|schedule|year-Www", so a restart or a second server computes
    the same instant, while the weekday and time differ from week to week. The seed is the site id
    unless the deployment sets another (keep it private to make the draw unguessable).
    """
    digest = hashlib.sha256(f"{seed}|{schedule_id}|{iso_year}-W{iso_week:02d}".encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    day = date.fromisocalendar(iso_year, iso_week, 1 + number % SPOT_DAYS)
    minutes = SPOT_FIRST.hour * 60 + SPOT_FIRST.minute + 15 * ((number // SPOT_DAYS) % SPOT_SLOTS)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tz).astimezone(UTC)


def due_runs(schedule: Schedule, since: datetime, until: datetime, tz: tzinfo = UTC, seed: str = "") -> list[datetime]:
    """Run instants of a calendar schedule in (since, until], in UTC, oldest first.

    `tz` is the site's time zone (cadence times are local); `seed` feeds RANDOM_WEEKLY draws.
    Shift-based schedules need the roster: use `shift_runs`. A range the wrong way round is an error.
    """
    require_aware(since, "since")
    require_aware(until, "until")
    if until < since:
        raise InspectionError("bad_range", f"until ({until.isoformat()}) is before since ({since.isoformat()})")
    cadence = schedule.cadence
    if not cadence.calendar_based:
        raise InspectionError("needs_roster", f"{schedule.id} runs at shift ends: use shift_runs")
    out: list[datetime] = []

    def keep(local: datetime) -> None:
        instant = local.astimezone(UTC)
        if since < instant <= until:
            out.append(instant)

    first = since.astimezone(tz).date() - timedelta(days=1)
    last = until.astimezone(tz).date()
    if cadence.kind is CadenceKind.INTERVAL:
        step = cadence.every
        if step is None or step <= timedelta(0):
            return []
        origin = datetime.combine(_EPOCH, time(0), tz)
        n = max(0, (since - origin) // step)
        instant = origin + n * step
        while instant <= until:
            keep(instant)
            instant += step
        return out
    if cadence.kind is CadenceKind.RANDOM_WEEKLY:
        day = first - timedelta(days=first.weekday())
        while day <= last:
            iso = day.isocalendar()
            instant = spot_run(seed, schedule.id, iso.year, iso.week, tz)
            if since < instant <= until:
                out.append(instant)
            day += timedelta(days=7)
        return out
    if cadence.kind is CadenceKind.MONTHLY:
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            if (month - 1) % cadence.months == 0 and year % cadence.years == 0:
                dom = min(cadence.day, calendar.monthrange(year, month)[1])
                keep(datetime.combine(date(year, month, dom), cadence.at, tz))
            year, month = add_months(year, month, 1)
        return out
    day = first
    while day <= last:
        if cadence.kind is CadenceKind.DAILY or day.weekday() == cadence.weekday:
            keep(datetime.combine(day, cadence.at, tz))
        day += timedelta(days=1)
    return out
