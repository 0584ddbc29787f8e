"""Defects found on inspection: who is told to fix a failed checklist item (RULES.md §6; 61号令 Art.25-26:
a fire-safety defect found on a patrol or check is reported and rectified).

Every check that guards people (fire, egress, power, machine room, access) pages a failed item, once per
task and recipient, to the roles that fix it: `facilities` (设备管理/物业, the role the rules already page for
equipment faults such as fire.detector_fault and door.egress_controller_offline), the safety officer where
fire safety itself is degraded (egress doors that did not release, suppression, detectors, the monitor's own
sensors), `it` for badges and accounts (as it.leaver_account), the manager for what only management can
order (hazard rectification, a drill not held), and the supervisor for what is not a repair (people
missing at key locations, an access log that does not match the list). An on-the-spot correction
(`ChecklistItem.on_the_spot`) was fixed by whoever found it and is only recorded as a hazard. An item owned
by `()` is administrative (a record to write, a review by the person who would be told) and pages nobody;
docs/inspections.md says which and why. Every schedule of the catalog has an entry, so a new one is a
decision, not a silence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from server.domain.inspections.catalog import CATALOG, ChecklistItem, Schedule

FACILITIES = "facilities"
SAFETY = "safety_officer"
SUPERVISOR = "supervisor"
MANAGER = "manager"
IT = "it"
NOBODY: tuple[str, ...] = ()
"""Administrative: stored and reported, paged to nobody."""

OWNERS: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType({
    # the operator's failures go to the 当日领班 as a `lead_forward` task (domain.forward_task), not a page
    "eos_self_check": {"*": NOBODY},
    "lead_round": {"*": (SUPERVISOR,)},
    "fire_patrol": {"*": (FACILITIES,), "key_staff_present": (SUPERVISOR,)},
    "supervisor_electrical": {"*": (FACILITIES,)},
    "fire_check_monthly": {"*": (FACILITIES,), "art26_1": (MANAGER, SAFETY), "art26_3": (FACILITIES, SAFETY),
                           "art26_6": (SUPERVISOR,), "art26_7": (SUPERVISOR,)},
    "extinguisher_monthly": {"*": (FACILITIES,)},
    "mr_walkthrough": {"*": (FACILITIES,), "suppression_normal": (FACILITIES, SAFETY), "access_log": (SUPERVISOR,)},
    "sensor_tests_monthly": {"*": (FACILITIES, SAFETY)},
    "egress_release_quarterly": {"*": (FACILITIES, SAFETY)},
    "access_review_monthly": {"*": (IT,), "visitor_records": (SUPERVISOR,)},
    "evacuation_drill": {"*": NOBODY, "egress_released": (FACILITIES, SAFETY), "prompt_119": (IT, SAFETY),
                         "headcount": (SUPERVISOR, SAFETY)},
    "comprehensive_drill": {"*": NOBODY, "drill_done": (MANAGER,)},
    "annual_fire_system_test": {"*": NOBODY, "certified_test": (FACILITIES, SAFETY)},
    "detector_cleaning": {"*": (FACILITIES, SAFETY)},
    # the IT duty who finds a failed backup is the one who reruns it; data, not people
    "it_backup_check": {"*": NOBODY},
    "access_review_quarterly": {"*": (IT,)},
    "supervisor_spot_check": {"*": (FACILITIES,)},
    "post_event_check": {"*": (SAFETY,)},
    # one of its two items fails by design (resolved *or* forwarded); none passing is esc.lead_not_forwarded
    "lead_forward": {"*": NOBODY},
    # the review's own records; a review not done is incident.post_review_overdue
    "post_incident_review": {"*": NOBODY},
})
"""Schedule id -> item id (or "*" for its other items) -> the roles paged when that item fails (NOBODY:
administrative)."""


@dataclass(frozen=True, slots=True)
class Defect:
    """One failed item to report, with the inspector's note."""

    item: ChecklistItem
    note: str
    roles: tuple[str, ...]


def defects(schedule_id: str, failed: Iterable[str], notes: Mapping[str, str]) -> list[Defect]:
    """The failed items of a completed task that someone must be told to fix, in checklist order."""
    owners = OWNERS.get(schedule_id)
    schedule = CATALOG.get(schedule_id)
    if owners is None or schedule is None:
        return []
    failing = set(failed)
    found = [Defect(item, notes.get(item.id, ""), owners.get(item.id, owners["*"]))
             for item in schedule.items if item.id in failing and not item.on_the_spot]
    return [d for d in found if d.roles]


def by_role(found: Iterable[Defect]) -> dict[str, list[Defect]]:
    """Each role's defects: one message per recipient for the whole task."""
    out: dict[str, list[Defect]] = {}
    for defect in found:
        for role in defect.roles:
            out.setdefault(role, []).append(defect)
    return out


def defect_text(schedule: Schedule, found: Iterable[Defect], where: str, by: str, at: str,
                link: str) -> tuple[str, str]:
    """(title, body) of a defect page, Chinese first as every page: what failed, the note, who found it."""
    items = list(found)
    title = f"[隐患/defect] {schedule.what_zh} {schedule.what}: {len(items)} 项不合格 failed"
    lines = [f"{where} — {by} {at}"]
    for d in items:
        note = f" — {d.note}" if d.note else ""
        lines.append(f"✗ {d.item.text_zh or d.item.text} / {d.item.text}{note}")
    lines.append("请安排整改 / please arrange the repair")
    lines.append(link)
    return title, "\n".join(lines)
