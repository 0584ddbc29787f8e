"""Inspection tasks, answers and hazards as the store hands them back (server/services/ports.py,
InspectionStore and InspectionFactsStore)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One stored inspection task; times in UTC."""

    id: int
    schedule_id: str
    subject: str
    zone: str | None
    seat: str | None
    assignee: str | None
    status: str
    run_at: datetime
    due_at: datetime
    completed_at: datetime | None
    completed_by: str | None
    device: str | None = None
    role: str = ""
    trigger: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """One checklist item's stored answer on a task, with the pre-fill's suggestion when it was signed."""

    task_id: int
    item_id: str
    outcome: str
    note: str
    suggested: str | None = None
    evidence: tuple[str, ...] | None = None
    """The facts shown with the suggestion; None: the item had none."""


@dataclass(frozen=True, slots=True)
class HazardRecord:
    """A hazard an inspection found (a failed item that is a hazard)."""

    task_id: int
    item_id: str
    zone: str | None
    device: str | None
    note: str
    found_at: datetime
    found_by: str


class AlreadyStored(Exception):
    """Another writer stored the same task or watermark first (a unique key): its row stands."""
