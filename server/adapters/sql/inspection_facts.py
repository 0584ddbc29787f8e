"""The SQL reads of a checklist pre-fill (server/services/inspection_facts.py): the alarms of a task's scope
and the lead round's self-checks and operator issues. Each method is one read-only session."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.inspection_models import InspectionResultRow, InspectionTaskRow
from server.adapters.sql.models import AlarmRow
from server.domain.inspections import ResultRecord, TaskRecord
from server.domain.prefill import AlarmFact
from server.domain.utc import as_utc

LIMIT = 500


def task_record(row: InspectionTaskRow) -> TaskRecord:
    return TaskRecord(row.id, row.schedule_id, row.subject, row.zone, row.seat, row.assignee, row.status,
                      as_utc(row.run_at), as_utc(row.due_at), as_utc(row.completed_at) if row.completed_at else None,
                      row.completed_by, row.device, row.role, row.trigger, row.note)


def result_record(row: InspectionResultRow) -> ResultRecord:
    return ResultRecord(row.task_id, row.item_id, row.outcome, row.note, row.suggested,
                        tuple(row.evidence) if row.evidence is not None else None)


class InspectionFactsRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def alarm_facts(self, site: str, since: datetime, subjects: Collection[str] | None,
                    zones: Collection[str] | None) -> tuple[AlarmFact, ...]:
        query = select(AlarmRow).where(or_(AlarmRow.rule.like("elec.%"), AlarmRow.rule.like("door.%")),
                                       or_(AlarmRow.is_open, AlarmRow.raised_at >= since.astimezone(UTC)),
                                       AlarmRow.site == site)
        if zones is not None:
            query = query.where(or_(AlarmRow.zone.in_(sorted(zones)), AlarmRow.subject.in_(list(subjects or ()))))
        elif subjects is not None:
            query = query.where(AlarmRow.subject.in_(list(subjects)))
        with self.sessions() as session:
            rows = session.scalars(query.order_by(AlarmRow.raised_at).limit(LIMIT)).all()
            return tuple(AlarmFact(r.id, r.rule, r.subject, r.zone, r.severity, as_utc(r.raised_at), r.is_open,
                                   r.acknowledged_at is not None) for r in rows)

    def self_checks(self, schedules: Collection[str], zone: str | None, since: datetime,
                    now: datetime) -> list[TaskRecord]:
        since_utc, now_utc = since.astimezone(UTC), now.astimezone(UTC)
        zoned = [InspectionTaskRow.zone == zone] if zone is not None else []
        with self.sessions() as session:
            return [task_record(r) for r in session.scalars(select(InspectionTaskRow).where(
                InspectionTaskRow.schedule_id.in_(sorted(schedules)), *zoned, InspectionTaskRow.run_at <= now_utc,
                or_(InspectionTaskRow.completed_at >= since_utc,
                    and_(InspectionTaskRow.status == "open", InspectionTaskRow.run_at >= since_utc)),
            ).order_by(InspectionTaskRow.run_at).limit(LIMIT))]

    def issues(self, schedule: str, zone: str | None, since: datetime, now: datetime) -> list[TaskRecord]:
        since_utc, now_utc = since.astimezone(UTC), now.astimezone(UTC)
        zoned = [InspectionTaskRow.zone == zone] if zone is not None else []
        with self.sessions() as session:
            return [task_record(r) for r in session.scalars(select(InspectionTaskRow).where(
                InspectionTaskRow.schedule_id == schedule, *zoned, InspectionTaskRow.run_at <= now_utc,
                or_(InspectionTaskRow.run_at >= since_utc, InspectionTaskRow.status != "done"),
            ).order_by(InspectionTaskRow.run_at).limit(LIMIT))]

    def tasks(self, ids: Collection[int]) -> dict[int, TaskRecord]:
        if not ids:
            return {}
        with self.sessions() as session:
            return {r.id: task_record(r) for r in session.scalars(select(InspectionTaskRow).where(
                InspectionTaskRow.id.in_(list(ids))))}

    def results(self, task_ids: Collection[int]) -> list[ResultRecord]:
        if not task_ids:
            return []
        with self.sessions() as session:
            return [result_record(r) for r in session.scalars(
                select(InspectionResultRow).where(InspectionResultRow.task_id.in_(list(task_ids)))
                .order_by(InspectionResultRow.id))]
