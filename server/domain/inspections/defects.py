"""Defects found on inspection: who is told to fix a failed checklist item (RULES.md §6; 61号令 Art.25-26:
a fire-safety defect found on a patrol or check is reported and rectified).

Only the end-of-shift self-check's failures went anywhere (`forward_task`: the 当日领班 resolves or
forwards them). Here a failed item of the checks below is paged, once per task and recipient, to the roles
that fix it: `facilities` (设备管理/物业, the role the rules already page for equipment faults such as
fire.detector_fault and door.egress_controller_offline), the safety officer where fire safety itself is
degraded (egress doors that did not release, the machine room's suppression panel), and the supervisor for
what is not a repair (people missing at key locations, an access log that does not match the list). An
on-the-spot correction (`ChecklistItem.on_the_spot`) was fixed by whoever found it and is only recorded as
a hazard. Checks not listed here store their failures and page nobody (docs/inspections.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from server.domain.inspections.catalog import CATALOG, ChecklistItem, Schedule

FACILITIES = "facilities"
SAFETY = "safety_officer"
SUPERVISOR = "supervisor"

OWNERS: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType({
    "egress_release_quarterly": {"*": (FACILITIES, SAFETY)},
    "fire_patrol": {"*": (FACILITIES,), "key_staff_present": (SUPERVISOR,)},
    "extinguisher_monthly": {"*": (FACILITIES,)},
    "mr_walkthrough": {"*": (FACILITIES,), "suppression_normal": (FACILITIES, SAFETY), "access_log": (SUPERVISOR,)},
})
"""Schedule id -> item id (or "*" for its other items) -> the roles paged when that item fails."""


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
    return [Defect(item, notes.get(item.id, ""), owners.get(item.id, owners["*"]))
            for item in schedule.items if item.id in failing and not item.on_the_spot]


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
