"""Per zone and month: tasks done on time, late, missed or still open."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo

from server.domain.inspections.cadence import add_months
from server.domain.inspections.completion import TaskState, TaskStatus
from server.domain.inspections.errors import InspectionError


@dataclass
class Compliance:
    zone: str
    month: str
    on_time: int = 0
    late: int = 0
    missed: int = 0
    open: int = 0
    failed_items: int = 0
    schedule: str = ""
    """Set when counted per schedule (the boards' `inspection` points); "" when per zone only."""


def month_bounds(month: str, tz: tzinfo = UTC) -> tuple[datetime, datetime]:
    """'YYYY-MM' -> [start, end) of that month in `tz`, as UTC instants."""
    try:
        year, mon = (int(p) for p in month.split("-"))
        start = date(year, mon, 1)
    except ValueError:
        raise InspectionError("bad_month", f"month must be YYYY-MM, not {month!r}") from None
    ny, nm = add_months(year, mon, 1)
    return (datetime.combine(start, time(0), tz).astimezone(UTC),
            datetime.combine(date(ny, nm, 1), time(0), tz).astimezone(UTC))


def compliance(rows: Iterable[tuple[TaskState, int]], month: str, now: datetime,
               by_schedule: bool = False) -> list[Compliance]:
    """Per zone ("site" for site-wide tasks), and per schedule with `by_schedule`: on time, late, missed
    (deadline passed, never done), still open, and failed items, for tasks whose run falls in `month`.
    `rows`: (task, failed items)."""
    by_zone: dict[tuple[str, str], Compliance] = {}
    for task, failed in rows:
        zone, schedule = task.zone or "site", task.schedule_id if by_schedule else ""
        c = by_zone.setdefault((zone, schedule), Compliance(zone, month, schedule=schedule))
        c.failed_items += failed
        if task.status is TaskStatus.DONE and task.completed_at is not None:
            if task.completed_at <= task.due_at:
                c.on_time += 1
            else:
                c.late += 1
        elif task.status is TaskStatus.MISSED or task.due_at <= now:
            c.missed += 1
        else:
            c.open += 1
    return [by_zone[z] for z in sorted(by_zone)]
