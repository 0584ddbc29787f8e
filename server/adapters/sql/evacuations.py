"""The `evacuations` and `evacuation_marks` tables (migration 0003), and the access log their roll call
reads, for server/services/evacuation.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.response_models import AccessLogRow, EvacuationRow, RollCallMarkRow
from server.adapters.sql.unit_of_work import AuditedTransaction, Fence, FencedStore
from server.adapters.sql.values import aware
from server.domain.evacuation import Access, EvacuationRecord


def _evacuation(row: EvacuationRow) -> EvacuationRecord:
    return EvacuationRecord(row.id, row.site, row.floor, tuple(row.zones), row.fire_zone, row.drill, row.state,
                            row.trigger, row.reason, aware(row.triggered_at) or row.triggered_at,
                            aware(row.issued_at) or row.issued_at, row.started_by, row.message_zh,
                            row.message_en, aware(row.all_clear_at), row.all_clear_by)


class EvacuationTransaction(AuditedTransaction):
    def count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(EvacuationRow)) or 0

    def add(self, evacuation: EvacuationRecord) -> None:
        e = evacuation
        self.session.add(EvacuationRow(id=e.id, site=e.site, floor=e.floor, zones=list(e.zones),
                                       fire_zone=e.fire_zone, drill=e.drill, state=e.state, trigger=e.trigger,
                                       reason=e.reason, triggered_at=e.triggered_at, issued_at=e.issued_at,
                                       started_by=e.started_by, message_zh=e.message_zh, message_en=e.message_en,
                                       all_clear_at=e.all_clear_at, all_clear_by=e.all_clear_by))

    def end(self, evacuation_id: str, at: datetime, by: str) -> None:
        row = self.session.get(EvacuationRow, evacuation_id)
        assert row is not None, "end() of an evacuation read before"
        row.state, row.all_clear_at, row.all_clear_by = "all_clear", at, by

    def marked(self, evacuation_id: str, person: str) -> bool:
        return self.session.scalars(select(RollCallMarkRow).where(RollCallMarkRow.evacuation_id == evacuation_id,
                                                                  RollCallMarkRow.person == person)).first() is not None

    def add_mark(self, evacuation_id: str, person: str, by: str, at: datetime, note: str) -> None:
        self.session.add(RollCallMarkRow(evacuation_id=evacuation_id, person=person, by=by, at=at, note=note))

    def renew_mark(self, evacuation_id: str, person: str, by: str, at: datetime, note: str) -> None:
        self.session.execute(update(RollCallMarkRow)
                             .where(RollCallMarkRow.evacuation_id == evacuation_id, RollCallMarkRow.person == person)
                             .values(by=by, at=at, note=note))

class EvacuationRepository(FencedStore[EvacuationTransaction]):
    def __init__(self, sessions: sessionmaker[Session], fence: Fence | None = None) -> None:
        super().__init__(sessions, fence, EvacuationTransaction)

    def get(self, evacuation_id: str) -> EvacuationRecord | None:
        with self.sessions() as session:
            row = session.get(EvacuationRow, evacuation_id)
            return _evacuation(row) if row is not None else None

    def active_on(self, floor: str) -> EvacuationRecord | None:
        with self.sessions() as session:
            row = session.scalars(select(EvacuationRow).where(EvacuationRow.floor == floor,
                                                              EvacuationRow.state == "active")).first()
            return _evacuation(row) if row is not None else None

    def active(self) -> list[EvacuationRecord]:
        with self.sessions() as session:
            return [_evacuation(r) for r in session.scalars(select(EvacuationRow).where(
                EvacuationRow.state == "active"))]

    def started_since(self, floor: str, trigger: str, since: datetime) -> bool:
        with self.sessions() as session:
            return session.scalar(select(EvacuationRow.id).where(
                EvacuationRow.floor == floor, EvacuationRow.trigger == trigger,
                EvacuationRow.issued_at >= since).limit(1)) is not None

    def history(self, limit: int) -> list[EvacuationRecord]:
        with self.sessions() as session:
            return [_evacuation(r) for r in session.scalars(
                select(EvacuationRow).order_by(EvacuationRow.issued_at.desc()).limit(limit)).all()]

    def roll_call(self, evacuation_id: str) -> tuple[list[Access], dict[str, datetime]]:
        with self.sessions() as session:
            events = [Access(r.person, r.door, r.direction, aware(r.ts) or r.ts, r.kind)
                      for r in session.scalars(select(AccessLogRow).order_by(AccessLogRow.ts)).all()]
            marks = {m.person: aware(m.at) or m.at for m in session.scalars(
                select(RollCallMarkRow).where(RollCallMarkRow.evacuation_id == evacuation_id)).all()}
        return events, marks
