"""Overdue duties (RULES.md §2.9) and their escalation (§4): the findings active at an instant."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from gateway.contract import Severity
from server.domain.inspections.catalog import CATALOG, D, H
from server.domain.inspections.completion import TaskState, TaskStatus
from server.domain.inspections.site_view import SiteView


@dataclass(frozen=True, slots=True)
class OverdueRule:
    id: str
    schedule_id: str
    after: timedelta
    """Per task (`per_task`): time after the run; otherwise: time since the last completion."""
    severity: Severity
    notify: tuple[str, ...]
    per_task: bool = False
    major_after: timedelta | None = None
    """Since-last rules: from this age on the finding is major."""
    major_consecutive: int | None = None
    """Per-task rules: this many consecutive overdue tasks of one subject make it major."""
    keep: timedelta = 7 * D
    """Per-task rules: how far back (by run) an undone task is still a finding."""


OVERDUE_RULES: tuple[OverdueRule, ...] = (
    OverdueRule("insp.end_of_shift_missing", "eos_self_check", timedelta(minutes=30), Severity.MINOR,
                ("shift_lead",), per_task=True),
    OverdueRule("insp.fire_patrol_overdue", "fire_patrol", D, Severity.MINOR, ("supervisor",), per_task=True,
                major_consecutive=2),
    OverdueRule("insp.supervisor_electrical_overdue", "supervisor_electrical", 7 * D, Severity.MINOR,
                ("manager",), major_after=14 * D),
    OverdueRule("insp.fire_check_monthly_overdue", "fire_check_monthly", 31 * D, Severity.MAJOR,
                ("manager", "safety_officer")),
    OverdueRule("insp.extinguisher_monthly_overdue", "extinguisher_monthly", 31 * D, Severity.MAJOR,
                ("safety_officer",)),
    OverdueRule("insp.facility_annual_test_overdue", "annual_fire_system_test", 365 * D, Severity.MAJOR,
                ("manager",)),
    OverdueRule("insp.detector_cleaning_due", "detector_cleaning", 730 * D, Severity.MINOR, ("facility_manager",)),
    OverdueRule("drill.evacuation_overdue", "evacuation_drill", 183 * D, Severity.MAJOR, ("emergency_command",)),
    OverdueRule("drill.comprehensive_overdue", "comprehensive_drill", 365 * D, Severity.MAJOR,
                ("emergency_command",)),
    OverdueRule("it.access_review", "access_review_quarterly", 90 * D, Severity.MINOR, ("supervisor", "it")),
    OverdueRule("esc.lead_not_forwarded", "lead_forward", timedelta(minutes=30), Severity.MAJOR, ("supervisor",),
                per_task=True),
    OverdueRule("incident.post_review_overdue", "post_incident_review", 7 * D, Severity.MINOR,
                ("emergency_command",), per_task=True, keep=365 * D),
)
OVERDUE_BY_ID: Mapping[str, OverdueRule] = {r.id: r for r in OVERDUE_RULES}

DUTY_NAMES: Mapping[str, tuple[str, str]] = {
    "train.fire_annual_overdue": ("Annual fire-safety training", "年度消防安全培训"),
    "train.new_staff": ("Fire-safety training before the first shift", "新员工上岗前消防培训"),
}
"""Duties with no schedule of their own (en, zh)."""

ESCALATION: Mapping[Severity, tuple[tuple[timedelta, str], ...]] = {
    Severity.MINOR: ((timedelta(0), ""), (24 * H, "supervisor")),
    Severity.MAJOR: ((timedelta(0), ""), (timedelta(minutes=30), "supervisor")),
}
"""RULES §4: minor → owner, 24 h unacknowledged → supervisor; major → first notified, 30 min →
supervisor. "" stands for the rule's own notify list."""


@dataclass(frozen=True, slots=True)
class Step:
    at: datetime
    notify: tuple[str, ...]
    """Person ids where the roster resolves one (当日领班), else role names."""


@dataclass(frozen=True, slots=True)
class OverdueFinding:
    rule: str
    severity: Severity
    subject: str
    zone: str | None
    since: datetime
    """When the duty became overdue."""
    task_id: int | None
    steps: tuple[Step, ...] = field(default=())
    """Escalation steps reached by `now`, in order."""

    @property
    def notify(self) -> tuple[str, ...]:
        return self.steps[-1].notify if self.steps else ()

    def messages(self, tz: tzinfo) -> tuple[str, str]:
        """The alarm's text (en, zh): which duty, for whom, overdue since when in the site's local time."""
        since = self.since.astimezone(tz)
        at = f"{since:%Y-%m-%d %H:%M} {since.tzname() or ''}".rstrip()
        schedule = CATALOG.get(OVERDUE_BY_ID[self.rule].schedule_id) if self.rule in OVERDUE_BY_ID else None
        what, what_zh = (schedule.what, schedule.what_zh) if schedule else DUTY_NAMES.get(self.rule, (self.rule,
                                                                                                     self.rule))
        who = f" ({self.subject})" if self.subject != (schedule.id if schedule else "") else ""
        return f"{what}{who}: overdue since {at}", f"{what_zh}{who}：自 {at} 起逾期未完成"


def _resolve(site: SiteView, role: str, zone: str | None, at: datetime, now: datetime) -> str:
    """当日领班: the lead of the shift the duty belongs to (`at`), else the lead on duty `now`."""
    if role == "shift_lead" and zone is not None:
        lead = site.shift_lead(zone, at) or site.shift_lead(zone, now)
        if lead is not None:
            return lead.id
    return role


def escalation_steps(site: SiteView, rule: OverdueRule, severity: Severity, zone: str | None, since: datetime,
                     now: datetime, duty_at: datetime | None = None) -> tuple[Step, ...]:
    out: list[Step] = []
    for offset, role in ESCALATION[severity]:
        at = since + offset
        if at > now:
            break
        roles = rule.notify if role == "" else (role,)
        who_at = (duty_at or since) - timedelta(seconds=1)
        out.append(Step(at, tuple(_resolve(site, r, zone, who_at, at) for r in roles)))
    return tuple(out)


def evaluate_overdue(site: SiteView, tasks: Sequence[TaskState], last_done: Mapping[str, datetime | None],
                     origin: datetime, now: datetime) -> list[OverdueFinding]:
    """Active §2.9 findings at `now`.

    `tasks`: stored tasks (any status); `last_done`: schedule id -> last completion (None if never);
    `origin`: when monitoring started (the age of a never-done duty is counted from there).
    """
    out: list[OverdueFinding] = []
    for rule in OVERDUE_RULES:
        if rule.per_task:
            mine = sorted((t for t in tasks if t.schedule_id == rule.schedule_id), key=lambda t: t.run_at)
            streak: dict[str, int] = {}
            for task in mine:
                late_at = task.run_at + rule.after
                done_in_time = task.status is TaskStatus.DONE and task.completed_at is not None \
                    and task.completed_at <= late_at
                if done_in_time or late_at > now:
                    streak[task.subject] = 0
                    continue
                streak[task.subject] = streak.get(task.subject, 0) + 1
                if task.status is TaskStatus.DONE:
                    continue  # late but done: no longer an open finding
                severity = rule.severity
                if rule.major_consecutive and streak[task.subject] >= rule.major_consecutive:
                    severity = Severity.MAJOR
                out.append(OverdueFinding(rule.id, severity, task.subject, task.zone, late_at, task.id,
                                          escalation_steps(site, rule, severity, task.zone, late_at, now, task.run_at)))
        else:
            last = last_done.get(rule.schedule_id) or origin
            late_at = last + rule.after
            if now < late_at:
                continue
            severity = rule.severity
            if rule.major_after is not None and now >= last + rule.major_after:
                severity = Severity.MAJOR
            out.append(OverdueFinding(rule.id, severity, rule.schedule_id, None, late_at, None,
                                      escalation_steps(site, rule, severity, None, late_at, now)))
    return out
