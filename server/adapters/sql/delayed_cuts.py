"""The `delayed_cuts` and `cut_holds` tables (migration 0008) for server/services/delayed_cuts.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.response_models import CommandRow, CutHoldRow, DelayedCutRow
from server.adapters.sql.unit_of_work import AuditedTransaction, Fence, FencedStore
from server.adapters.sql.values import aware
from server.domain.power import CutHold, CutOutcome, ScheduledCut

_FIELDS = [f.name for f in dataclasses.fields(ScheduledCut)]


def _cut(row: DelayedCutRow) -> ScheduledCut:
    return ScheduledCut(row.alarm_id, row.device, row.reason, aware(row.created_at) or row.created_at,
                        aware(row.due_at) or row.due_at, row.status, row.by, row.why, aware(row.done_at),
                        row.command_id)


def _hold(row: CutHoldRow) -> CutHold:
    return CutHold(row.device, aware(row.until), row.by, row.reason, aware(row.created_at) or row.created_at)


def _active_hold(session: Session, device: str, now: datetime) -> CutHold | None:
    row = session.scalars(select(CutHoldRow).where(
        CutHoldRow.device == device, CutHoldRow.until.is_not(None), CutHoldRow.until > now)
        .order_by(CutHoldRow.created_at.desc())).first()
    return _hold(row) if row is not None else None


class DelayedCutTransaction(AuditedTransaction):
    def get(self, alarm_id: int) -> ScheduledCut | None:
        row = self.session.get(DelayedCutRow, alarm_id)
        return _cut(row) if row is not None else None

    def save(self, cut: ScheduledCut) -> None:
        row = self.session.get(DelayedCutRow, cut.alarm_id)
        if row is None:
            self.session.add(DelayedCutRow(**{name: getattr(cut, name) for name in _FIELDS}))
            return
        stored = _cut(row)
        for name in _FIELDS:  # only what changed: a time read back from SQLite is not written again
            if getattr(cut, name) != getattr(stored, name):
                setattr(row, name, getattr(cut, name))

    def pending(self, device: str) -> list[ScheduledCut]:
        return [_cut(r) for r in self.session.scalars(select(DelayedCutRow).where(
            DelayedCutRow.device == device, DelayedCutRow.status == "pending")).all()]

    def active_hold(self, device: str, now: datetime) -> CutHold | None:
        return _active_hold(self.session, device, now)

    def add_hold(self, hold: CutHold) -> None:
        self.session.add(CutHoldRow(device=hold.device, until=hold.until, by=hold.by, reason=hold.reason,
                                    created_at=hold.created_at))

class DelayedCutRepository(FencedStore[DelayedCutTransaction]):
    def __init__(self, sessions: sessionmaker[Session], fence: Fence | None = None) -> None:
        super().__init__(sessions, fence, DelayedCutTransaction)

    def get(self, alarm_id: int) -> ScheduledCut | None:
        with self.sessions() as session:
            row = session.get(DelayedCutRow, alarm_id)
            return _cut(row) if row is not None else None

    def due(self, now: datetime) -> list[ScheduledCut]:
        with self.sessions() as session:
            return [_cut(r) for r in session.scalars(select(DelayedCutRow).where(
                DelayedCutRow.status == "pending", DelayedCutRow.due_at <= now)).all()]

    def of_device(self, device: str, limit: int) -> list[ScheduledCut]:
        with self.sessions() as session:
            return [_cut(r) for r in session.scalars(select(DelayedCutRow).where(DelayedCutRow.device == device)
                                                     .order_by(DelayedCutRow.created_at.desc()).limit(limit)).all()]

    def of_alarms(self, alarm_ids: Collection[int]) -> list[ScheduledCut]:
        with self.sessions() as session:
            return [_cut(r) for r in session.scalars(select(DelayedCutRow).where(
                DelayedCutRow.alarm_id.in_(list(alarm_ids)))).all()]

    def active_hold(self, device: str, now: datetime) -> CutHold | None:
        with self.sessions() as session:
            return _active_hold(session, device, now)

    def relay_off_sent(self, ref: str, device: str) -> str | None:
        with self.sessions() as session:
            return session.scalars(select(CommandRow.id).where(
                CommandRow.ref == ref, CommandRow.device == device, CommandRow.action == "relay_off")).first()

    def outcomes(self) -> list[CutOutcome]:
        with self.sessions() as session:
            rows = session.execute(select(DelayedCutRow.alarm_id, CommandRow.status, CommandRow.result_at,
                                          CommandRow.error).join(
                CommandRow, CommandRow.id == DelayedCutRow.command_id).where(
                DelayedCutRow.status == "cut", CommandRow.status.in_(["ok", "failed"]))).all()
        return [CutOutcome(alarm_id, status, aware(result_at), error) for alarm_id, status, result_at, error in rows]
