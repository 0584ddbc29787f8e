"""Inspection schedule, tasks, completion and overdue rules (RULES.md §6, §2.9, §4). PURE.

No I/O and no clock: every function takes the time it needs. The service (`server.services.
inspections`) stores what this package decides; the scheduler only calls the service.

Vocabulary:

* a **schedule** (`Schedule`) is one line of RULES.md §6 as data: who, how often (`Cadence`), checklist.
* a **run** is one instant at which a schedule falls due (`due_runs`, `shift_runs`).
* a **task** (`TaskSpec`) is a run for one subject (a seat, a zone or the whole site) with an assignee
  resolved from the role and the roster, and a deadline. Its `key` is unique per (schedule, subject,
  run), so creating the same task twice is harmless.
* **catch-up** (`catch_up`): runs missed while the server was down are created once (only the latest,
  if still within the grace period); the older ones are reported as missed, never replayed one by one.
  A new server's first plan (`first_look_back`, `first_catch_up`) looks back to the run whose deadline is
  still ahead, so today's daily checks exist from the start; runs before monitoring are nobody's miss.

One module a concern: `catalog` (the schedules as data), `cadence` (calendar runs), `site_view` (the
site and its roster duties), `tasks` (clock-made tasks, catch-up), `triggers` (which cleared alarms
make an inspection due), `event_tasks` (tasks events create), `defects` (who is told of a failed item),
`completion`, `overdue` (findings and
escalation), `monthly_compliance`, `training`, `records` (tasks and answers as stored). Callers import
from the package.
"""

from gateway.contract import Severity
from server.domain.inspections.cadence import SPOT_DAYS, SPOT_FIRST, SPOT_SLOTS, due_runs, spot_run
from server.domain.inspections.catalog import (
    CATALOG,
    SCHEDULES,
    TRIGGERED_ONLY,
    Cadence,
    CadenceKind,
    ChecklistItem,
    D,
    H,
    Schedule,
    Scope,
)
from server.domain.inspections.completion import (
    CompleterView,
    Completion,
    ItemResult,
    Outcome,
    TaskState,
    TaskStatus,
    may_complete,
    validate_completion,
)
from server.domain.inspections.defects import Defect, by_role, defect_text, defects
from server.domain.inspections.errors import InspectionError
from server.domain.inspections.event_tasks import FORWARD_FROM, REVIEW_MERGE, forward_task, review_task, triggered_task
from server.domain.inspections.monthly_compliance import Compliance, compliance, month_bounds
from server.domain.inspections.overdue import (
    DUTY_NAMES,
    ESCALATION,
    OVERDUE_BY_ID,
    OVERDUE_RULES,
    OverdueFinding,
    OverdueRule,
    Step,
    evaluate_overdue,
)
from server.domain.inspections.records import AlreadyStored, HazardRecord, ResultRecord, TaskRecord
from server.domain.inspections.site_view import SiteView, duties
from server.domain.inspections.tasks import (
    CatchUp,
    TaskSpec,
    catch_up,
    first_catch_up,
    first_look_back,
    plan,
    shift_runs,
    tasks_for_run,
)
from server.domain.inspections.training import (
    STARTER_HORIZON,
    TRAIN_FIRE,
    TRAIN_NEW,
    Course,
    Starter,
    Training,
    evaluate_training,
    first_duty,
)
from server.domain.inspections.triggers import TRIGGERS
from server.domain.roster import Duty  # what `duties` and `first_duty` return, importable where they are

__all__ = [
    "CATALOG", "DUTY_NAMES", "ESCALATION", "FORWARD_FROM", "OVERDUE_BY_ID", "OVERDUE_RULES", "REVIEW_MERGE",
    "SCHEDULES", "SPOT_DAYS", "SPOT_FIRST", "SPOT_SLOTS", "STARTER_HORIZON", "TRAIN_FIRE", "TRAIN_NEW",
    "TRIGGERED_ONLY", "TRIGGERS", "AlreadyStored", "Cadence", "CadenceKind", "CatchUp", "ChecklistItem",
    "CompleterView", "Completion", "Compliance", "Course", "D", "Defect", "Duty", "H", "HazardRecord",
    "InspectionError", "ItemResult", "Outcome", "OverdueFinding", "OverdueRule", "ResultRecord", "Schedule", "Scope",
    "Severity", "SiteView", "Starter", "Step", "TaskRecord", "TaskSpec", "TaskState", "TaskStatus", "Training",
    "by_role", "catch_up", "compliance", "defect_text", "defects", "due_runs", "duties", "evaluate_overdue",
    "evaluate_training", "first_catch_up", "first_duty", "first_look_back", "forward_task", "may_complete",
    "month_bounds", "plan", "review_task", "shift_runs", "spot_run", "tasks_for_run", "triggered_task",
    "validate_completion",
]
