"""Completing a task: who may, and which results a checklist accepts (RULES.md §4 当场改正)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from server.domain.inspections.catalog import CATALOG, Schedule
from server.domain.inspections.errors import InspectionError


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    MISSED = "missed"


@dataclass(frozen=True, slots=True)
class ItemResult:
    item_id: str
    outcome: Outcome
    note: str = ""


@dataclass(frozen=True, slots=True)
class TaskState:
    """What completion and overdue evaluation need to know about a stored task."""

    id: int
    schedule_id: str
    subject: str
    run_at: datetime
    due_at: datetime
    zone: str | None
    assignee: str | None
    status: TaskStatus
    completed_at: datetime | None = None
    photos: int = 0


@dataclass(frozen=True, slots=True)
class CompleterView:
    """The person completing: id (the actor's name) and site role names."""

    name: str
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class Completion:
    task_id: int
    by: str
    at: datetime
    on_time: bool
    results: tuple[ItemResult, ...]
    failed: tuple[str, ...]
    hazards: tuple[str, ...]
    """Failed on-the-spot items: recorded as hazards (corrected on the spot, with a note or photo)."""
    note: str = ""


def _outcome(value: object, item_id: str) -> Outcome:
    try:
        return Outcome(str(value))
    except ValueError:
        raise InspectionError("bad_outcome", f"item {item_id!r}: result must be one of "
                              f"{', '.join(o.value for o in Outcome)}, not {value!r}") from None


def may_complete(schedule: Schedule, task: TaskState, who: CompleterView) -> bool:
    if "admin" in who.roles or (task.assignee is not None and who.name == task.assignee):
        return True
    if task.assignee is None and schedule.role in who.roles:
        return True
    # someone else's task: only a role above it (the chain of RULES §4) may complete it
    return any(role in who.roles for role in schedule.completer_roles)


def _who_may_complete(schedule: Schedule, task: TaskState) -> str:
    """The refusal's one line: whose task it is and who else may complete it (may_complete's rules)."""
    whose = (f"task {task.id} is assigned to {task.assignee}: only they" if task.assignee is not None
             else f"task {task.id} is for the {schedule.role} role: only a {schedule.role}")
    above = f", a {' or '.join(schedule.completer_roles)}" if schedule.completer_roles else ""
    return f"{whose}{above}, or an admin may complete it"


def validate_completion(task: TaskState, who: CompleterView, results: Mapping[str, tuple[str, str]],
                        at: datetime, note: str = "") -> Completion:
    """Check a completion and return what to store. `results`: item id -> (outcome, note).

    Every item of the checklist needs a result; unknown items, a second completion, someone else's
    task without the role, and a failed on-the-spot item without a note or photo are refused.
    """
    schedule = CATALOG.get(task.schedule_id)
    if schedule is None:
        raise InspectionError("unknown_schedule", f"task {task.id}: unknown schedule {task.schedule_id!r}")
    if task.status is TaskStatus.DONE:
        raise InspectionError("already_completed", f"task {task.id} was already completed"
                              + (f" at {task.completed_at.isoformat()}" if task.completed_at else ""))
    if not may_complete(schedule, task, who):
        raise InspectionError("not_allowed", _who_may_complete(schedule, task))
    unknown = sorted(set(results) - {i.id for i in schedule.items})
    if unknown:
        raise InspectionError("unknown_item", f"task {task.id} ({schedule.id}) has no item(s) {', '.join(unknown)}")
    missing = [i.id for i in schedule.items if i.id not in results]
    if missing:
        raise InspectionError("missing_item", f"task {task.id}: no result for item(s) {', '.join(missing)}")
    out: list[ItemResult] = []
    for item in schedule.items:
        raw, item_note = results[item.id]
        outcome = _outcome(raw, item.id)
        if outcome is Outcome.FAIL and item.on_the_spot and not item_note.strip() and task.photos == 0:
            raise InspectionError("note_required", f"item {item.id!r} failed and is corrected on the spot "
                                  "(当场改正): a note or a photo is required")
        out.append(ItemResult(item.id, outcome, item_note.strip()))
    if schedule.one_of and not any(r.item_id in schedule.one_of and r.outcome is Outcome.PASS for r in out):
        raise InspectionError("one_of_required", f"task {task.id}: at least one of {', '.join(schedule.one_of)} "
                              "must pass")
    failed = tuple(r.item_id for r in out if r.outcome is Outcome.FAIL)
    hazards = tuple(i for i in failed if (it := schedule.item(i)) is not None and it.on_the_spot)
    return Completion(task.id, who.name, at, at <= task.due_at, tuple(out), failed, hazards, note.strip())
