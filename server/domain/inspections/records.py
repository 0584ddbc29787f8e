"""Inspection tasks and answers as the store hands them back (server/services/ports.py, InspectionFactsStore)."""

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


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """One checklist item's stored answer on a task."""

    task_id: int
    item_id: str
    outcome: str
    note: str
