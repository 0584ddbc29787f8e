"""The `alarm_effects` table (migration 0007_effects) for server/services/recovery.py: each row holds the
alarm as the listeners are to see it, as plain JSON field by field (Alarm.from_record reads it back)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.recovery_models import AlarmEffectRow
from server.adapters.sql.values import plain
from server.domain import alarms as domain
from server.domain.alarm_effects import GivenUp, Pending


def snapshot(alarm: domain.Alarm) -> dict[str, Any]:
    """The alarm as plain JSON, field by field (Alarm.from_record reads it back)."""
    return {f.name: plain(getattr(alarm, f.name)) for f in dataclasses.fields(alarm)}


def record_effects(session: Session, alarms: Sequence[domain.Alarm], now: datetime) -> list[int | None]:
    """In the caller's transaction (the alarm service's, server/adapters/sql/alarms.py): one pending row per
    alarm (None for an alarm without an id)."""
    rows: list[AlarmEffectRow | None] = []
    for alarm in alarms:
        if alarm.id is None:
            rows.append(None)
            continue
        row = AlarmEffectRow(alarm_id=alarm.id, state=alarm.state.value, snapshot=snapshot(alarm),
                             created_at=now, failures=0, recovered=False)
        session.add(row)
        rows.append(row)
    session.flush()  # assigns the ids
    return [r.id if r is not None else None for r in rows]


class EffectsRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def finish(self, outcomes: Sequence[tuple[int, str | None]], now: datetime, *, recovered: bool,
               give_up_after: int) -> list[GivenUp]:
        given_up: list[GivenUp] = []
        with self.sessions.begin() as session:
            done = [i for i, error in outcomes if error is None]
            if done:
                values: dict[str, Any] = {"done_at": now}
                if recovered:
                    values["recovered"] = True
                session.execute(update(AlarmEffectRow).where(AlarmEffectRow.id.in_(done)).values(**values))
            for effect_id, error in outcomes:
                if error is None:
                    continue
                row = session.get(AlarmEffectRow, effect_id)
                if row is None:
                    continue
                row.failures += 1
                row.last_error = error[:2000]
                row.recovered = row.recovered or recovered
                if row.failures >= give_up_after:
                    row.done_at = now  # given up: kept with its last error
                    given_up.append(GivenUp(row.alarm_id, row.failures, error))
        return given_up

    def pending(self, *, failed_only: bool, before: datetime | None, limit: int) -> list[Pending]:
        with self.sessions() as session:
            q = select(AlarmEffectRow).where(AlarmEffectRow.done_at.is_(None))
            if failed_only:
                q = q.where(AlarmEffectRow.failures > 0)
            if before is not None:
                q = q.where(AlarmEffectRow.created_at < before)
            rows = session.scalars(q.order_by(AlarmEffectRow.id).limit(limit)).all()
            return [Pending(r.id, domain.Alarm.from_record(dict(r.snapshot)), r.failures) for r in rows]

    def counts(self) -> dict[str, int]:
        with self.sessions() as session:
            def n(*where: Any) -> int:
                return int(session.scalar(select(func.count()).select_from(AlarmEffectRow).where(*where)) or 0)
            return {"pending": n(AlarmEffectRow.done_at.is_(None)),
                    "failed": n(AlarmEffectRow.done_at.is_(None), AlarmEffectRow.failures > 0),
                    "recovered": n(AlarmEffectRow.recovered.is_(True)),
                    "done": n(AlarmEffectRow.done_at.is_not(None))}

    def prune(self, done_before: datetime) -> int:
        with self.sessions.begin() as session:
            result = session.execute(delete(AlarmEffectRow).where(AlarmEffectRow.done_at.is_not(None),
                                                                  AlarmEffectRow.done_at < done_before))
            return int(getattr(result, "rowcount", 0) or 0)
