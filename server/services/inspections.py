"""Inspection service: stores what `server.domain.inspections` decides.

* `create_due(now)`: plans tasks from each schedule's watermark to `now`; runs missed while the server
  was down are caught up once (the latest, within the grace period) and the others stored as missed.
  A unique constraint on (schedule, subject, run) makes a restart or a double run harmless.
* `complete`, `add_photo`: validated by the domain; a refused completion changes nothing.
* Pre-fill (`server.domain.prefill`): items with a `prefill` kind get a suggestion and its evidence,
  computed from current facts each time an open task is read (a person must see the facts of now,
  not of when the task was created) and once more when it is completed; the result row stores that
  suggestion and evidence beside what the person chose, so an override stays visible in history.
* `overdue(now)`: the §2.9 findings with their escalation steps (RULES §4).
* `history`, `history_csv`, `compliance`: queries for maintenance and audits.
"""

from __future__ import annotations

import csv
import hashlib
import io
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.contract import Severity
from server.adapters.sql.inspection_models import (
    InspectionHazardRow,
    InspectionPhotoRow,
    InspectionResultRow,
    InspectionTaskRow,
    InspectionWatermarkRow,
)
from server.domain import alarms as alarm_domain
from server.domain import evacuation, prefill
from server.domain import inspections as domain
from server.domain.inspections import (
    CATALOG,
    CompleterView,
    Completion,
    InspectionError,
    Outcome,
    Schedule,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from server.domain.site import Site
from server.services.inspection_facts import FactsReader
from server.services.inspection_report import render

MAX_PHOTO_BYTES = 5 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


class NotFound(InspectionError):
    def __init__(self, what: str) -> None:
        super().__init__("not_found", what)


def photo_type(data: bytes) -> str:
    """The MIME type of a PNG or JPEG by its magic bytes; anything else, or > 5 MB, is refused."""
    if not data:
        raise InspectionError("bad_photo", "the photo is empty")
    if len(data) > MAX_PHOTO_BYTES:
        raise InspectionError("photo_too_large", f"the photo is {len(data)} bytes; the limit is 5 MB")
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    raise InspectionError("bad_photo", "the photo is neither a PNG nor a JPEG")


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything is stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _state(row: InspectionTaskRow, photos: int = 0) -> TaskState:
    return TaskState(row.id, row.schedule_id, row.subject, _utc(row.run_at), _utc(row.due_at), row.zone,
                     row.assignee, TaskStatus(row.status), _opt_utc(row.completed_at), photos)


@dataclass(frozen=True, slots=True)
class ItemView:
    id: str
    text: str
    text_zh: str
    prefill: str | None
    on_the_spot: bool
    outcome: str | None
    note: str
    suggested: str | None = None
    """pass, fail or unknown from the pre-fill (None: the item has no pre-fill)."""
    evidence: tuple[str, ...] = ()
    overridden: bool = False
    """The person chose otherwise than a definite suggestion."""


@dataclass(frozen=True, slots=True)
class TaskView:
    id: int
    schedule_id: str
    what: str
    what_zh: str
    subject: str
    zone: str | None
    seat: str | None
    device: str | None
    assignee: str | None
    role: str
    trigger: str | None
    run_at: datetime
    due_at: datetime
    status: str
    """open, done or missed; `overdue` says whether an open task is past its deadline."""
    overdue: bool
    completed_at: datetime | None
    completed_by: str | None
    note: str
    items: tuple[ItemView, ...] = ()
    photos: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanReport:
    created: int
    missed: int


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    zone: str | None = None
    device: str | None = None
    item: str | None = None
    result: str | None = None
    person: str | None = None
    schedule: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InspectionError("naive_time", f"{name} must carry a time zone (e.g. ...+08:00 or Z)")
        if self.since is not None and self.until is not None and self.until < self.since:
            raise InspectionError("bad_range", f"until ({self.until.isoformat()}) is before since "
                                  f"({self.since.isoformat()})")
        if self.result is not None and self.result not in {o.value for o in Outcome}:
            raise InspectionError("bad_outcome", f"result must be one of {', '.join(o.value for o in Outcome)}")


@dataclass(frozen=True, slots=True)
class HistoryRow:
    task_id: int
    schedule_id: str
    what: str
    zone: str | None
    seat: str | None
    device: str | None
    subject: str
    run_at: datetime
    due_at: datetime
    status: str
    assignee: str | None
    completed_by: str | None
    completed_at: datetime | None
    on_time: bool | None
    item: str
    item_text: str
    result: str
    item_note: str
    task_note: str
    suggested: str = ""
    overridden: bool = False
    evidence: tuple[str, ...] = ()
    what_zh: str = ""
    item_text_zh: str = ""


CSV_HEADER = ("task_id", "schedule", "what", "what_zh", "zone", "seat", "device", "subject", "run_at", "due_at",
              "status", "assignee", "completed_by", "completed_at", "on_time", "item", "item_text", "item_text_zh",
              "result", "suggested", "overridden", "item_note", "task_note", "evidence")

PREFILL_FALLBACK = timedelta(hours=24)
"""With no earlier completed check of the same duty, "since last check" means the last 24 h."""


class InspectionService:
    def __init__(self, sessions: sessionmaker[Session], site: Site, clock: Callable[[], datetime], *,
                 grace: timedelta = timedelta(hours=2), schedules: Sequence[Schedule] = domain.SCHEDULES,
                 facts: FactsReader | None = None, spot_seed: str = "",
                 training: tuple[Sequence[domain.Training], Sequence[domain.Starter]] | None = None) -> None:
        self.sessions = sessions
        self.site = site
        self.clock = clock
        self.grace = grace
        self._planning = threading.Lock()
        self.facts = facts
        """Where pre-fill facts come from; None: items get no suggestion."""
        self.spot_seed = spot_seed
        """Seed of the unannounced spot-check draw ("" = the site id; see domain.spot_run)."""
        self.training = training
        """HR training records and starters; None (no HR data): the train.* rules are not evaluated."""
        self.schedules = [s for s in schedules if s.id not in domain.TRIGGERED_ONLY]

    # ---- planning ------------------------------------------------------------------------------

    def create_due(self, now: datetime | None = None) -> PlanReport:
        """Create every task that fell due up to `now`. Idempotent; safe after a restart."""
        now = _utc(now or self.clock())
        created = missed = 0
        # The scheduler's job and the API's task list both plan; one at a time in this process (two
        # planners saw no watermark and both inserted one), and another process's is a unique-key clash.
        with self._planning:
            for schedule in self.schedules:
                try:
                    with self.sessions.begin() as session:
                        mark = session.get(InspectionWatermarkRow, schedule.id)
                        since = _utc(mark.planned_until) if mark is not None else now - self.grace
                        if since >= now:
                            continue
                        specs = domain.plan(self.site, [schedule], since, now, self.spot_seed)
                        result = domain.catch_up(specs, now, self.grace)
                        made = self._insert(session, result.create, TaskStatus.OPEN, now)
                        lapsed = self._insert(session, result.missed, TaskStatus.MISSED, now)
                        if mark is None:
                            session.add(InspectionWatermarkRow(schedule_id=schedule.id, planned_until=now))
                        else:
                            mark.planned_until = now
                except IntegrityError:
                    continue  # another server planned this schedule at the same moment: its rows stand
                created, missed = created + made, missed + lapsed
        return PlanReport(created, missed)

    def on_alarm(self, alarm: alarm_domain.Alarm) -> None:
        """An alarm listener: after an overload, forced door, detector fault or smoke event ends, an inspection
        is due; a closed critical alarm owes a review (a drill's has its report instead)."""
        if alarm.state in (alarm_domain.AlarmState.CLEARED, alarm_domain.AlarmState.CLOSED):
            self.add_triggered(alarm.rule, alarm.subject, alarm.zone, alarm.cleared_at or self.clock())
        if (alarm.state is alarm_domain.AlarmState.CLOSED and alarm.severity is Severity.CRITICAL
                and not evacuation.is_drill_text(alarm.message_zh, alarm.message)):
            self.add_review(alarm.rule, alarm.subject, alarm.zone, alarm.closed_at or self.clock())

    def add_triggered(self, rule: str, subject: str, zone: str | None, cleared_at: datetime) -> int | None:
        """After an alarm of `rule` was cleared: create the inspection of that device or zone, if any."""
        spec = domain.triggered_task(self.site, rule, subject, zone, _utc(cleared_at))
        if spec is None:
            return None
        with self.sessions.begin() as session:
            self._insert(session, [spec], TaskStatus.OPEN, _utc(self.clock()))
            row = session.scalar(select(InspectionTaskRow).where(
                InspectionTaskRow.schedule_id == spec.schedule_id, InspectionTaskRow.subject == spec.subject,
                InspectionTaskRow.run_at == spec.run_at.astimezone(UTC)))
            return row.id if row is not None else None

    def add_review(self, rule: str, subject: str, zone: str | None, closed_at: datetime) -> int | None:
        """A critical incident closed: 应急指挥部 owes a review within 7 d. Critical alarms of the same
        zone closing within 24 h of an existing review belong to that incident (one review)."""
        spec = domain.review_task(self.site, rule, subject, zone, _utc(closed_at))
        with self.sessions.begin() as session:
            existing = session.scalar(select(InspectionTaskRow.id).where(
                InspectionTaskRow.schedule_id == spec.schedule_id, InspectionTaskRow.subject == spec.subject,
                InspectionTaskRow.run_at > spec.run_at - domain.REVIEW_MERGE,
                InspectionTaskRow.run_at <= spec.run_at).order_by(InspectionTaskRow.run_at.desc()).limit(1))
            if existing is not None:
                return existing
            self._insert(session, [spec], TaskStatus.OPEN, _utc(self.clock()))
            return session.scalar(select(InspectionTaskRow.id).where(
                InspectionTaskRow.schedule_id == spec.schedule_id, InspectionTaskRow.subject == spec.subject,
                InspectionTaskRow.run_at == spec.run_at))

    def _insert(self, session: Session, specs: Iterable[TaskSpec], status: TaskStatus, now: datetime) -> int:
        count = 0
        for spec in specs:
            run_at = spec.run_at.astimezone(UTC)
            exists = session.scalar(select(InspectionTaskRow.id).where(
                InspectionTaskRow.schedule_id == spec.schedule_id, InspectionTaskRow.subject == spec.subject,
                InspectionTaskRow.run_at == run_at))
            if exists is not None:
                continue
            try:
                with session.begin_nested():
                    session.add(InspectionTaskRow(
                        schedule_id=spec.schedule_id, subject=spec.subject, run_at=run_at,
                        due_at=spec.due_at.astimezone(UTC), zone=spec.zone, seat=spec.seat, device=spec.device,
                        assignee=spec.assignee, role=spec.role, trigger=spec.trigger, status=status.value,
                        created_at=now, note=""))
                count += 1
            except IntegrityError:
                continue  # another process created it first: the constraint did its job
        return count

    # ---- reading -------------------------------------------------------------------------------

    def tasks(self, status: str, now: datetime | None = None, zone: str | None = None,
              assignee: str | None = None, limit: int = 500) -> list[TaskView]:
        """status: due (open, deadline ahead), overdue (open, deadline passed), done, missed, open."""
        now = _utc(now or self.clock())
        query = select(InspectionTaskRow)
        if status == "due":
            query = query.where(InspectionTaskRow.status == "open", InspectionTaskRow.due_at > now)
        elif status == "overdue":
            query = query.where(InspectionTaskRow.status == "open", InspectionTaskRow.due_at <= now)
        elif status in ("done", "missed", "open"):
            query = query.where(InspectionTaskRow.status == status)
        else:
            raise InspectionError("bad_status", "status must be one of due, overdue, done, missed, open")
        if zone is not None:
            query = query.where(InspectionTaskRow.zone == zone)
        if assignee is not None:
            query = query.where(InspectionTaskRow.assignee == assignee)
        order = InspectionTaskRow.completed_at.desc() if status == "done" else InspectionTaskRow.due_at
        with self.sessions() as session:
            rows = session.scalars(query.order_by(order, InspectionTaskRow.id).limit(limit)).all()
            return [self._view(row, now) for row in rows]

    def get(self, task_id: int, now: datetime | None = None) -> TaskView:
        now = _utc(now or self.clock())
        with self.sessions() as session:
            row = session.get(InspectionTaskRow, task_id)
            if row is None:
                raise NotFound(f"no inspection task {task_id}")
            results = {r.item_id: r for r in session.scalars(
                select(InspectionResultRow).where(InspectionResultRow.task_id == task_id))}
            photos = tuple(session.scalars(select(InspectionPhotoRow.id).where(
                InspectionPhotoRow.task_id == task_id).order_by(InspectionPhotoRow.id)))
            schedule = CATALOG[row.schedule_id]
            live = self._suggest(session, row, now) if row.status == TaskStatus.OPEN.value else {}
            items = []
            for i in schedule.items:
                stored = results.get(i.id)
                if stored is not None:
                    items.append(ItemView(i.id, i.text, i.text_zh, i.prefill, i.on_the_spot, stored.outcome,
                                          stored.note, stored.suggested, tuple(stored.evidence or ()),
                                          prefill.overridden(stored.suggested, stored.outcome)))
                else:
                    hint = live.get(i.id)
                    items.append(ItemView(i.id, i.text, i.text_zh, i.prefill, i.on_the_spot, None, "",
                                          hint.outcome.value if hint else None, hint.evidence if hint else ()))
            return self._view(row, now, tuple(items), photos)

    # ---- pre-fill ------------------------------------------------------------------------------

    def last_check(self, session: Session, row: InspectionTaskRow) -> datetime:
        """When the same duty was last completed (same seat, else same subject), before this task."""
        same = (InspectionTaskRow.seat == row.seat) if row.seat is not None else \
            (InspectionTaskRow.subject == row.subject)
        last = session.scalar(select(func.max(InspectionTaskRow.completed_at)).where(
            InspectionTaskRow.schedule_id == row.schedule_id, same, InspectionTaskRow.status == "done",
            InspectionTaskRow.id != row.id, InspectionTaskRow.run_at < row.run_at))
        return _utc(last) if last is not None else _utc(row.run_at) - PREFILL_FALLBACK

    def _suggest(self, session: Session, row: InspectionTaskRow, now: datetime) -> dict[str, prefill.Suggestion]:
        """Suggestions for the items of `row` that have a pre-fill kind, from the facts of `now`."""
        schedule = CATALOG.get(row.schedule_id)
        if self.facts is None or schedule is None:
            return {}
        kinds = frozenset(i.prefill for i in schedule.items if i.prefill)
        if not kinds:
            return {}
        facts = self.facts.gather(schedule, row.zone, row.seat, row.device, self.last_check(session, row), now, kinds)
        return {i.id: prefill.suggest(i.prefill, i.id, facts) for i in schedule.items if i.prefill}

    def photo(self, task_id: int, photo_id: int) -> tuple[str, bytes]:
        with self.sessions() as session:
            row = session.get(InspectionPhotoRow, photo_id)
            if row is None or row.task_id != task_id:
                raise NotFound(f"no photo {photo_id} on task {task_id}")
            return row.content_type, row.data

    @staticmethod
    def _view(row: InspectionTaskRow, now: datetime, items: tuple[ItemView, ...] = (),
              photos: tuple[int, ...] = ()) -> TaskView:
        schedule = CATALOG.get(row.schedule_id)
        due = _utc(row.due_at)
        return TaskView(row.id, row.schedule_id, schedule.what if schedule else row.schedule_id,
                        schedule.what_zh if schedule else "", row.subject, row.zone, row.seat, row.device,
                        row.assignee, row.role, row.trigger, _utc(row.run_at), due, row.status,
                        row.status == "open" and due <= now, _opt_utc(row.completed_at), row.completed_by,
                        row.note, items, photos)

    # ---- completing ----------------------------------------------------------------------------

    def complete(self, task_id: int, who: CompleterView, results: Mapping[str, tuple[str, str]],
                 note: str = "", now: datetime | None = None) -> Completion:
        """Validate and store a completion in one transaction; a refused one changes nothing."""
        now = _utc(now or self.clock())
        with self.sessions.begin() as session:
            row = session.scalar(select(InspectionTaskRow).where(InspectionTaskRow.id == task_id).with_for_update())
            if row is None:
                raise NotFound(f"no inspection task {task_id}")
            photos = session.scalar(select(func.count()).select_from(InspectionPhotoRow).where(
                InspectionPhotoRow.task_id == task_id)) or 0
            done = domain.validate_completion(_state(row, photos), who, results, now, note)
            hints = self._suggest(session, row, now)
            for result in done.results:
                hint = hints.get(result.item_id)
                session.add(InspectionResultRow(task_id=task_id, item_id=result.item_id,
                                                outcome=result.outcome.value, note=result.note,
                                                suggested=hint.outcome.value if hint else None,
                                                evidence=list(hint.evidence) if hint else None))
            notes = {r.item_id: r.note for r in done.results}
            for item_id in done.hazards:
                session.add(InspectionHazardRow(task_id=task_id, item_id=item_id, zone=row.zone, device=row.device,
                                                note=notes[item_id], found_at=now, found_by=who.name))
            row.status = TaskStatus.DONE.value
            row.completed_at = now
            row.completed_by = who.name
            row.note = done.note
            # failed items the operator could not fix: the 当日领班 resolves or forwards them (30 min)
            forward = domain.forward_task(self.site, row.schedule_id, row.zone, row.seat, row.id, done.failed, now,
                                          _utc(row.run_at))
            if forward is not None:
                self._insert(session, [forward], TaskStatus.OPEN, now)
        return done

    def add_photo(self, task_id: int, who: CompleterView, data: bytes, item_id: str | None = None,
                  now: datetime | None = None) -> int:
        """Attach a PNG or JPEG (≤ 5 MB) to an open task, e.g. as proof of an on-the-spot correction."""
        content_type = photo_type(data)
        now = _utc(now or self.clock())
        with self.sessions.begin() as session:
            row = session.get(InspectionTaskRow, task_id)
            if row is None:
                raise NotFound(f"no inspection task {task_id}")
            schedule = CATALOG[row.schedule_id]
            if item_id is not None and schedule.item(item_id) is None:
                raise InspectionError("unknown_item", f"task {task_id} ({schedule.id}) has no item {item_id}")
            if row.status == TaskStatus.DONE.value:
                raise InspectionError("already_completed", f"task {task_id} is already completed")
            if not domain.may_complete(schedule, _state(row), who):
                raise InspectionError("not_allowed", f"task {task_id} is assigned to {row.assignee}")
            photo = InspectionPhotoRow(task_id=task_id, item_id=item_id, content_type=content_type, size=len(data),
                                       sha256=hashlib.sha256(data).hexdigest(), data=data, uploaded_at=now,
                                       uploaded_by=who.name)
            session.add(photo)
            session.flush()
            return photo.id

    # ---- overdue -------------------------------------------------------------------------------

    def overdue(self, now: datetime | None = None) -> list[domain.OverdueFinding]:
        """§2.9 findings at `now` with their escalation steps (the caller raises or notifies)."""
        now = _utc(now or self.clock())
        recent = [(InspectionTaskRow.schedule_id == r.schedule_id) & (InspectionTaskRow.run_at >= now - r.keep)
                  for r in domain.OVERDUE_RULES if r.per_task]
        with self.sessions() as session:
            rows = session.scalars(select(InspectionTaskRow).where(or_(*recent))).all()
            last = dict(session.execute(select(InspectionTaskRow.schedule_id, func.max(InspectionTaskRow.completed_at))
                                        .where(InspectionTaskRow.status == "done")
                                        .group_by(InspectionTaskRow.schedule_id)).all())
            origin = session.scalar(select(func.min(InspectionWatermarkRow.planned_until)))
        last_done = {k: _opt_utc(v) for k, v in last.items()}
        start = _utc(origin) if origin else now
        found = domain.evaluate_overdue(self.site, [_state(r) for r in rows], last_done, start, now)
        if self.training is not None:
            found += domain.evaluate_training(self.site, self.training[0], self.training[1], start, now)
        return found

    # ---- history and compliance ----------------------------------------------------------------

    def history(self, query: HistoryQuery, limit: int = 100_000) -> list[HistoryRow]:
        """One row per checklist item of completed tasks, and one row per open or missed task."""
        stmt = select(InspectionTaskRow, InspectionResultRow).outerjoin(
            InspectionResultRow, InspectionResultRow.task_id == InspectionTaskRow.id)
        if query.zone is not None:
            stmt = stmt.where(InspectionTaskRow.zone == query.zone)
        if query.device is not None:
            stmt = stmt.where(InspectionTaskRow.device == query.device)
        if query.schedule is not None:
            stmt = stmt.where(InspectionTaskRow.schedule_id == query.schedule)
        if query.person is not None:
            stmt = stmt.where(or_(InspectionTaskRow.assignee == query.person,
                                  InspectionTaskRow.completed_by == query.person))
        if query.item is not None:
            stmt = stmt.where(InspectionResultRow.item_id == query.item)
        if query.result is not None:
            stmt = stmt.where(InspectionResultRow.outcome == query.result)
        if query.since is not None:
            stmt = stmt.where(InspectionTaskRow.run_at >= query.since.astimezone(UTC))
        if query.until is not None:
            stmt = stmt.where(InspectionTaskRow.run_at < query.until.astimezone(UTC))
        stmt = stmt.order_by(InspectionTaskRow.run_at, InspectionTaskRow.id, InspectionResultRow.id).limit(limit)
        out: list[HistoryRow] = []
        with self.sessions() as session:
            for task, result in session.execute(stmt):
                schedule = CATALOG.get(task.schedule_id)
                item = schedule.item(result.item_id) if schedule and result else None
                completed = _opt_utc(task.completed_at)
                out.append(HistoryRow(
                    task.id, task.schedule_id, schedule.what if schedule else "", task.zone, task.seat, task.device,
                    task.subject, _utc(task.run_at), _utc(task.due_at), task.status, task.assignee,
                    task.completed_by, completed, None if completed is None else completed <= _utc(task.due_at),
                    result.item_id if result else "", item.text if item else "", result.outcome if result else "",
                    result.note if result else "", task.note, (result.suggested or "") if result else "",
                    prefill.overridden(result.suggested, result.outcome) if result else False,
                    tuple(result.evidence or ()) if result else (),
                    what_zh=schedule.what_zh if schedule else "", item_text_zh=item.text_zh if item else ""))
        return out

    def history_csv(self, query: HistoryQuery) -> bytes:
        """CSV a spreadsheet opens: UTF-8 with BOM, a header row, CRLF lines, site-local ISO times."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_HEADER)

        def t(value: datetime | None) -> str:
            return "" if value is None else value.astimezone(self.site.tz).isoformat(timespec="seconds")

        for r in self.history(query):
            writer.writerow((r.task_id, r.schedule_id, r.what, r.what_zh, r.zone or "", r.seat or "", r.device or "",
                             r.subject, t(r.run_at), t(r.due_at), r.status, r.assignee or "", r.completed_by or "",
                             t(r.completed_at), "" if r.on_time is None else ("yes" if r.on_time else "no"),
                             r.item, r.item_text, r.item_text_zh, r.result, r.suggested, "yes" if r.overridden else "",
                             r.item_note, r.task_note, " | ".join(r.evidence)))
        return buffer.getvalue().encode("utf-8-sig")

    def report_html(self, query: HistoryQuery, now: datetime | None = None) -> str:
        """The printable report: compliance per zone for every month the history covers, then the tasks."""
        now = _utc(now or self.clock())
        rows = self.history(query)
        months = sorted({r.run_at.astimezone(self.site.tz).strftime("%Y-%m") for r in rows})
        figures = {m: [c for c in self.compliance(m, now) if query.zone is None or c.zone == query.zone]
                   for m in months}
        hazards: dict[int, list[tuple[str, str, str, datetime]]] = {}
        ids = sorted({r.task_id for r in rows})
        with self.sessions() as session:
            for start in range(0, len(ids), 500):
                for h in session.scalars(select(InspectionHazardRow).where(
                        InspectionHazardRow.task_id.in_(ids[start:start + 500])).order_by(InspectionHazardRow.id)):
                    hazards.setdefault(h.task_id, []).append((h.item_id, h.note, h.found_by, _utc(h.found_at)))
        filters = {k: (v.astimezone(self.site.tz).isoformat(timespec="minutes") if isinstance(v, datetime) else str(v))
                   for k in HistoryQuery.__dataclass_fields__ if (v := getattr(query, k)) is not None}
        return render(site_name=self.site.name or self.site.id, tz=self.site.tz, filters=filters, generated=now,
                      rows=rows, compliance=figures, hazards=hazards)

    def compliance(self, month: str, now: datetime | None = None) -> list[domain.Compliance]:
        """Per zone ("site" for site-wide duties) for tasks run in `month` (YYYY-MM, site time)."""
        now = _utc(now or self.clock())
        start, end = domain.month_bounds(month, self.site.tz)
        with self.sessions() as session:
            failed = (select(InspectionResultRow.task_id, func.count().label("n"))
                      .where(InspectionResultRow.outcome == Outcome.FAIL.value)
                      .group_by(InspectionResultRow.task_id).subquery())
            rows = session.execute(select(InspectionTaskRow, failed.c.n).outerjoin(
                failed, failed.c.task_id == InspectionTaskRow.id).where(
                InspectionTaskRow.run_at >= start, InspectionTaskRow.run_at < end)).all()
            return domain.compliance(((_state(task), n or 0) for task, n in rows), month, now)
