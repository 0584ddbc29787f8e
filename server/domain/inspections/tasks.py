"""Tasks from schedules: one per run and subject, with an assignee and a deadline; catch-up after downtime."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server.domain.inspections.cadence import due_runs
from server.domain.inspections.catalog import TRIGGERED_ONLY, CadenceKind, Schedule, Scope
from server.domain.inspections.errors import InspectionError
from server.domain.inspections.site_view import SiteView, duties


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task to create. `key` is unique per (schedule, subject, run)."""

    schedule_id: str
    subject: str
    """"site", a zone id, "seat:<seat>:<person>", or a device id."""
    run_at: datetime
    due_at: datetime
    zone: str | None
    seat: str | None = None
    device: str | None = None
    assignee: str | None = None
    """Person id, or None when nobody holds the role (anyone with the role may then take it)."""
    role: str = ""
    trigger: str | None = None
    """For sensor-triggered tasks: the rule whose clearing caused the task."""

    @property
    def key(self) -> str:
        return f"{self.schedule_id}|{self.subject}|{self.run_at.astimezone(UTC).isoformat()}"


def first_with_role(site: SiteView, role: str) -> str | None:
    people = site.people_with_role(role)
    return people[0].id if people else None


def shift_runs(site: SiteView, schedule: Schedule, since: datetime, until: datetime) -> list[TaskSpec]:
    """Tasks of a shift-based schedule whose run falls in (since, until]."""
    if until < since:
        raise InspectionError("bad_range", "until is before since")
    out: list[TaskSpec] = []
    for duty in duties(site, since, until):
        entry = duty.entry
        if schedule.cadence.kind is CadenceKind.SHIFT_END:
            if entry.lead or entry.seat is None:
                continue
            if since < duty.end <= until:
                out.append(TaskSpec(schedule.id, f"seat:{entry.seat}:{entry.person}", duty.end,
                                    duty.end + schedule.window, entry.zone, seat=entry.seat,
                                    assignee=entry.person, role=schedule.role))
        elif schedule.cadence.kind is CadenceKind.SHIFT_BOUNDARY:
            if not entry.lead:
                continue
            for run in (duty.start, duty.end):
                if since < run <= until:
                    out.append(TaskSpec(schedule.id, f"lead:{entry.zone}:{entry.person}", run,
                                        run + schedule.window, entry.zone, assignee=entry.person,
                                        role=schedule.role))
    out.sort(key=lambda t: (t.run_at, t.subject))
    return out


def tasks_for_run(site: SiteView, schedule: Schedule, run: datetime) -> list[TaskSpec]:
    """Tasks of a calendar schedule for one run instant (one per machine room, or one for the site)."""
    due = run + schedule.window
    if schedule.scope is Scope.MACHINE_ROOM:
        zones = sorted(z for z, info in site.zones.items() if str(info.kind) == "machine_room")
        out = []
        for zone in zones:
            lead = site.shift_lead(zone, run)
            assignee = first_with_role(site, schedule.role) or (lead.id if lead else None)
            out.append(TaskSpec(schedule.id, zone, run, due, zone, assignee=assignee, role=schedule.role))
        return out
    return [TaskSpec(schedule.id, "site", run, due, None, assignee=first_with_role(site, schedule.role),
                     role=schedule.role)]


def plan(site: SiteView, schedules: Iterable[Schedule], since: datetime, until: datetime,
         seed: str = "") -> list[TaskSpec]:
    """Every task whose run falls in (since, until], for all the given schedules, oldest first.
    `seed` (default: the site id) draws the unannounced spot checks."""
    out: list[TaskSpec] = []
    for schedule in schedules:
        if schedule.id in TRIGGERED_ONLY:
            continue
        if schedule.cadence.calendar_based:
            for run in due_runs(schedule, since, until, site.tz, seed or site.id):
                out.extend(tasks_for_run(site, schedule, run))
        else:
            out.extend(shift_runs(site, schedule, since, until))
    out.sort(key=lambda t: (t.run_at, t.schedule_id, t.subject))
    return out


@dataclass(frozen=True, slots=True)
class CatchUp:
    create: list[TaskSpec]
    """Tasks to create as open: at most one per (schedule, subject): the latest, if within grace."""
    missed: list[TaskSpec]
    """Older runs that were never created: recorded as missed, never replayed one by one."""


def catch_up(tasks: Sequence[TaskSpec], now: datetime, grace: timedelta) -> CatchUp:
    """Coalesce runs that fell due while nobody was looking (server down, scheduler late).

    Per (schedule, subject) the latest run is created if `now - run <= grace` or its deadline is still
    ahead; every other run is missed.
    """
    latest: dict[tuple[str, str], TaskSpec] = {}
    for task in tasks:
        current = latest.get((task.schedule_id, task.subject))
        if current is None or task.run_at > current.run_at:
            latest[(task.schedule_id, task.subject)] = task
    create: list[TaskSpec] = []
    missed: list[TaskSpec] = []
    for task in tasks:
        if latest[(task.schedule_id, task.subject)] is task and (now - task.run_at <= grace or task.due_at > now):
            create.append(task)
        else:
            missed.append(task)
    return CatchUp(create, missed)


def first_look_back(schedule: Schedule, grace: timedelta) -> timedelta:
    """How far the first plan of a schedule (a new server) looks back: far enough to find the run whose
    deadline is still ahead (today's patrol at 00:00, this month's check), and at least `grace`."""
    return max(grace, schedule.window)


def first_catch_up(tasks: Sequence[TaskSpec], now: datetime, grace: timedelta) -> CatchUp:
    """`catch_up` for the first plan of a schedule: runs before monitoring started (older than `grace`)
    that are not created are nobody's miss and are left out, not recorded as missed."""
    result = catch_up(tasks, now, grace)
    return CatchUp(result.create, [t for t in result.missed if now - t.run_at <= grace])
