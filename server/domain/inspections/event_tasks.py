"""Tasks that events create, never the clock: after a cleared alarm, an operator's failed self-check,
a closed critical incident."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from server.domain.inspections.catalog import CATALOG, H
from server.domain.inspections.errors import require_aware
from server.domain.inspections.site_view import SiteView
from server.domain.inspections.tasks import TaskSpec, first_with_role
from server.domain.inspections.triggers import TRIGGERS


def triggered_task(site: SiteView, rule: str, subject: str, zone: str | None, cleared_at: datetime) -> TaskSpec | None:
    """The inspection due after an alarm of `rule` on `subject` (device or zone) was cleared, or None."""
    within = TRIGGERS.get(rule)
    if within is None:
        return None
    require_aware(cleared_at, "cleared_at")
    schedule = CATALOG["post_event_check"]
    lead = site.shift_lead(zone, cleared_at) if zone else None
    assignee = lead.id if lead else first_with_role(site, schedule.role)
    device = None if subject == zone else subject
    return TaskSpec(schedule.id, subject, cleared_at, cleared_at + within, zone, device=device,
                    assignee=assignee, role=schedule.role, trigger=rule)


FORWARD_FROM = frozenset({"eos_self_check"})
"""Checklists whose failed items the operator cannot fix alone go to the 当日领班 (RULES §6 #1, §4)."""

REVIEW_MERGE = 24 * H
"""Critical alarms of one zone closing within this of a review's start belong to the same incident."""


def forward_task(site: SiteView, schedule_id: str, zone: str | None, seat: str | None, task_id: int,
                 failed: Sequence[str], at: datetime, checked_at: datetime | None = None) -> TaskSpec | None:
    """The issue a shift lead owes after an operator's self-check failed items that are not on-the-spot
    corrections: resolve or forward to the supervisor within 30 min (esc.lead_not_forwarded).

    The owner is the lead on duty now, else the lead of the shift that was checked (当日领班: a
    check at 20:00 belongs to the day shift's lead even when the night has none)."""
    schedule = CATALOG.get(schedule_id)
    if schedule is None or schedule.id not in FORWARD_FROM:
        return None
    open_items = [i for i in failed if (item := schedule.item(i)) is not None and not item.on_the_spot]
    if not open_items:
        return None
    forward = CATALOG["lead_forward"]
    lead = site.shift_lead(zone, at) if zone else None
    if lead is None and zone and checked_at is not None:
        lead = site.shift_lead(zone, checked_at - timedelta(seconds=1))
    return TaskSpec(forward.id, f"issue:{task_id}", at, at + forward.window, zone, seat=seat,
                    assignee=lead.id if lead else None, role=forward.role,
                    trigger=f"{schedule_id}:{','.join(open_items)}"[:64])


def review_task(site: SiteView, rule: str, subject: str, zone: str | None, closed_at: datetime) -> TaskSpec:
    """The review 应急指挥部 owes within 7 d after a critical incident closes (incident.post_review_overdue)."""
    require_aware(closed_at, "closed_at")
    schedule = CATALOG["post_incident_review"]
    return TaskSpec(schedule.id, f"incident:{zone or subject}", closed_at, closed_at + schedule.window, zone,
                    device=None if subject == zone else subject, assignee=first_with_role(site, schedule.role),
                    role=schedule.role, trigger=rule)
