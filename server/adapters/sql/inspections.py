"""The inspection tables (migration 0002: tasks, results, photos, hazards, the planner's watermarks) for
server/services/inspections.py. All times are stored in UTC."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from server.adapters.sql.inspection_facts import result_record, task_record
from server.adapters.sql.inspection_models import (
    InspectionHazardRow,
    InspectionPhotoRow,
    InspectionResultRow,
    InspectionTaskRow,
    InspectionWatermarkRow,
)
from server.adapters.sql.notifications import NotifyTransaction
from server.domain.inspections import AlreadyStored, HazardRecord, Outcome, ResultRecord, TaskRecord, TaskSpec
from server.domain.utc import as_utc

HAZARD_BATCH = 500


def _last_done(session: Session, task: TaskRecord) -> datetime | None:
    same = (InspectionTaskRow.seat == task.seat) if task.seat is not None else \
        (InspectionTaskRow.subject == task.subject)
    last = session.scalar(select(func.max(InspectionTaskRow.completed_at)).where(
        InspectionTaskRow.schedule_id == task.schedule_id, same, InspectionTaskRow.status == "done",
        InspectionTaskRow.id != task.id, InspectionTaskRow.run_at < task.run_at))
    return as_utc(last) if last is not None else None


def _within(column: InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None],
            since: datetime | None, until: datetime | None) -> ColumnElement[bool]:
    """`column` in [since, until), either end open when None (a NULL time is in no range)."""
    return and_(column >= since.astimezone(UTC) if since is not None else column.is_not(None),
                column < until.astimezone(UTC) if until is not None else true())

class InspectionTransaction:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._outbox: NotifyTransaction | None = None

    def outbox(self) -> NotifyTransaction:
        if self._outbox is None:
            self._outbox = NotifyTransaction(self.session)
        return self._outbox

    def write_back(self) -> None:
        """What the outbox changed of the records it handed out, onto their rows (before the commit)."""
        if self._outbox is not None:
            self._outbox.write_back()

    def watermark(self, schedule_id: str) -> datetime | None:
        mark = self.session.get(InspectionWatermarkRow, schedule_id)
        return as_utc(mark.planned_until) if mark is not None else None

    def set_watermark(self, schedule_id: str, planned_until: datetime) -> None:
        mark = self.session.get(InspectionWatermarkRow, schedule_id)
        if mark is None:
            self.session.add(InspectionWatermarkRow(schedule_id=schedule_id, planned_until=planned_until))
        else:
            mark.planned_until = planned_until

    def insert(self, specs: Iterable[TaskSpec], status: str, now: datetime) -> int:
        count = 0
        for spec in specs:
            run_at = spec.run_at.astimezone(UTC)
            exists = self.session.scalar(select(InspectionTaskRow.id).where(
                InspectionTaskRow.schedule_id == spec.schedule_id, InspectionTaskRow.subject == spec.subject,
                InspectionTaskRow.run_at == run_at))
            if exists is not None:
                continue
            try:
                with self.session.begin_nested():
                    self.session.add(InspectionTaskRow(
                        schedule_id=spec.schedule_id, subject=spec.subject, run_at=run_at,
                        due_at=spec.due_at.astimezone(UTC), zone=spec.zone, seat=spec.seat, device=spec.device,
                        assignee=spec.assignee, role=spec.role, trigger=spec.trigger, status=status,
                        created_at=now, note=""))
                count += 1
            except IntegrityError:
                continue  # another process created it first: the constraint did its job
        return count

    def task_id(self, schedule_id: str, subject: str, run_at: datetime) -> int | None:
        return self.session.scalar(select(InspectionTaskRow.id).where(
            InspectionTaskRow.schedule_id == schedule_id, InspectionTaskRow.subject == subject,
            InspectionTaskRow.run_at == run_at))

    def latest_task_id(self, schedule_id: str, subject: str, after: datetime, until: datetime) -> int | None:
        return self.session.scalar(select(InspectionTaskRow.id).where(
            InspectionTaskRow.schedule_id == schedule_id, InspectionTaskRow.subject == subject,
            InspectionTaskRow.run_at > after, InspectionTaskRow.run_at <= until)
            .order_by(InspectionTaskRow.run_at.desc()).limit(1))

    def task(self, task_id: int, lock: bool = False) -> TaskRecord | None:
        if lock:
            row = self.session.scalar(select(InspectionTaskRow).where(InspectionTaskRow.id == task_id)
                                      .with_for_update())
        else:
            row = self.session.get(InspectionTaskRow, task_id)
        return task_record(row) if row is not None else None

    def photo_count(self, task_id: int) -> int:
        return self.session.scalar(select(func.count()).select_from(InspectionPhotoRow).where(
            InspectionPhotoRow.task_id == task_id)) or 0

    def last_done(self, task: TaskRecord) -> datetime | None:
        return _last_done(self.session, task)

    def add_result(self, result: ResultRecord) -> None:
        self.session.add(InspectionResultRow(task_id=result.task_id, item_id=result.item_id, outcome=result.outcome,
                                             note=result.note, suggested=result.suggested,
                                             evidence=list(result.evidence) if result.evidence is not None else None))

    def add_hazard(self, hazard: HazardRecord) -> None:
        self.session.add(InspectionHazardRow(task_id=hazard.task_id, item_id=hazard.item_id, zone=hazard.zone,
                                             device=hazard.device, note=hazard.note, found_at=hazard.found_at,
                                             found_by=hazard.found_by))

    def complete(self, task_id: int, at: datetime, by: str, note: str) -> None:
        row = self.session.get(InspectionTaskRow, task_id)
        assert row is not None, "complete() after task() in the same transaction"
        row.status = "done"
        row.completed_at = at
        row.completed_by = by
        row.note = note

    def add_photo(self, task_id: int, item_id: str | None, content_type: str, data: bytes, sha256: str,
                  at: datetime, by: str) -> int:
        photo = InspectionPhotoRow(task_id=task_id, item_id=item_id, content_type=content_type, size=len(data),
                                   sha256=sha256, data=data, uploaded_at=at, uploaded_by=by)
        self.session.add(photo)
        self.session.flush()
        return photo.id


class InspectionRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    @contextmanager
    def transaction(self) -> Iterator[InspectionTransaction]:
        try:
            with self.sessions.begin() as session:
                tx = InspectionTransaction(session)
                yield tx
                tx.write_back()
        except IntegrityError as error:
            raise AlreadyStored(str(error.orig)) from error

    def task(self, task_id: int) -> TaskRecord | None:
        with self.sessions() as session:
            row = session.get(InspectionTaskRow, task_id)
            return task_record(row) if row is not None else None

    def tasks(self, status: str, now: datetime, zone: str | None, assignee: str | None,
              limit: int) -> list[TaskRecord]:
        query = select(InspectionTaskRow)
        if status == "due":
            query = query.where(InspectionTaskRow.status == "open", InspectionTaskRow.due_at > now)
        elif status == "overdue":
            query = query.where(InspectionTaskRow.status == "open", InspectionTaskRow.due_at <= now)
        else:
            query = query.where(InspectionTaskRow.status == status)
        if zone is not None:
            query = query.where(InspectionTaskRow.zone == zone)
        if assignee is not None:
            query = query.where(InspectionTaskRow.assignee == assignee)
        # done and missed are history, newest first (a limit drops the oldest); open work is by deadline
        order = (InspectionTaskRow.completed_at.desc() if status == "done" else InspectionTaskRow.due_at.desc()
                 if status == "missed" else InspectionTaskRow.due_at)
        with self.sessions() as session:
            return [task_record(r) for r in session.scalars(query.order_by(order, InspectionTaskRow.id).limit(limit))]

    def results(self, task_id: int) -> list[ResultRecord]:
        with self.sessions() as session:
            return [result_record(r) for r in session.scalars(
                select(InspectionResultRow).where(InspectionResultRow.task_id == task_id))]

    def photo_ids(self, task_id: int) -> tuple[int, ...]:
        with self.sessions() as session:
            return tuple(session.scalars(select(InspectionPhotoRow.id).where(
                InspectionPhotoRow.task_id == task_id).order_by(InspectionPhotoRow.id)))

    def photo(self, photo_id: int) -> tuple[int, str, bytes] | None:
        with self.sessions() as session:
            row = session.get(InspectionPhotoRow, photo_id)
            return (row.task_id, row.content_type, row.data) if row is not None else None

    def last_done(self, task: TaskRecord) -> datetime | None:
        with self.sessions() as session:
            return _last_done(session, task)

    def recent(self, runs_since: Sequence[tuple[str, datetime]]) -> list[TaskRecord]:
        recent = [(InspectionTaskRow.schedule_id == schedule_id) & (InspectionTaskRow.run_at >= since)
                  for schedule_id, since in runs_since]
        with self.sessions() as session:
            return [task_record(r) for r in session.scalars(select(InspectionTaskRow).where(or_(*recent)))]

    def last_completed(self) -> dict[str, datetime | None]:
        with self.sessions() as session:
            return {k: as_utc(v) if v is not None else None for k, v in session.execute(
                select(InspectionTaskRow.schedule_id, func.max(InspectionTaskRow.completed_at))
                .where(InspectionTaskRow.status == "done").group_by(InspectionTaskRow.schedule_id)).all()}

    def planned_from(self) -> datetime | None:
        # The first task's creation, not the watermarks: every plan moves each watermark to its own now.
        with self.sessions() as session:
            origin = session.scalar(select(func.min(InspectionTaskRow.created_at)))
            if origin is None:
                origin = session.scalar(select(func.min(InspectionWatermarkRow.planned_until)))
            return as_utc(origin) if origin else None

    def history(self, *, zone: str | None, device: str | None, schedule: str | None, person: str | None,
                item: str | None, result: str | None, since: datetime | None, until: datetime | None,
                limit: int) -> list[tuple[TaskRecord, ResultRecord | None]]:
        stmt = select(InspectionTaskRow, InspectionResultRow).outerjoin(
            InspectionResultRow, InspectionResultRow.task_id == InspectionTaskRow.id)
        if zone is not None:
            stmt = stmt.where(InspectionTaskRow.zone == zone)
        if device is not None:
            stmt = stmt.where(InspectionTaskRow.device == device)
        if schedule is not None:
            stmt = stmt.where(InspectionTaskRow.schedule_id == schedule)
        if person is not None:
            stmt = stmt.where(or_(InspectionTaskRow.assignee == person, InspectionTaskRow.completed_by == person))
        if item is not None:
            stmt = stmt.where(InspectionResultRow.item_id == item)
        if result is not None:
            stmt = stmt.where(InspectionResultRow.outcome == result)
        if since is not None or until is not None:
            # A task belongs to the range it was run, due or signed in: a yearly test signed today is in
            # today's history, and so is a task whose deadline falls in the range, open or missed.
            stmt = stmt.where(or_(*(_within(column, since, until) for column in (
                InspectionTaskRow.run_at, InspectionTaskRow.due_at, InspectionTaskRow.completed_at))))
        # newest first under the limit, so that a long history drops its oldest rows, never the latest ones
        stmt = stmt.order_by(InspectionTaskRow.run_at.desc(), InspectionTaskRow.id.desc(),
                             InspectionResultRow.id.desc()).limit(limit)
        with self.sessions() as session:
            newest: list[tuple[TaskRecord, ResultRecord | None]] = [
                (task_record(task), result_record(r) if r is not None else None) for task, r in session.execute(stmt)]
        return newest[::-1]

    def hazards(self, task_ids: Sequence[int]) -> list[HazardRecord]:
        out: list[HazardRecord] = []
        with self.sessions() as session:
            for start in range(0, len(task_ids), HAZARD_BATCH):
                out += [HazardRecord(h.task_id, h.item_id, h.zone, h.device, h.note, as_utc(h.found_at), h.found_by)
                        for h in session.scalars(select(InspectionHazardRow).where(
                            InspectionHazardRow.task_id.in_(task_ids[start:start + HAZARD_BATCH]))
                            .order_by(InspectionHazardRow.id))]
        return out

    def failures(self, start: datetime, end: datetime) -> list[tuple[TaskRecord, int]]:
        """Tasks run in [start, end) with their number of failed items."""
        with self.sessions() as session:
            failed = (select(InspectionResultRow.task_id, func.count().label("n"))
                      .where(InspectionResultRow.outcome == Outcome.FAIL.value)
                      .group_by(InspectionResultRow.task_id).subquery())
            rows = session.execute(select(InspectionTaskRow, failed.c.n).outerjoin(
                failed, failed.c.task_id == InspectionTaskRow.id).where(
                InspectionTaskRow.run_at >= start, InspectionTaskRow.run_at < end)).all()
            return [(task_record(task), n or 0) for task, n in rows]
