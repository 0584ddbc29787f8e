"""The `silences` table: who muted which alarms' pages until when (server/services/notify/silences.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.response_models import SilenceRow
from server.adapters.sql.values import aware
from server.domain.notify import Silence, silence_end


class SilenceRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def active(self, now: datetime) -> list[Silence]:
        with self.sessions() as session:
            rows = session.scalars(select(SilenceRow).where(SilenceRow.ends_at > now)).all()
            found = [Silence(silence_end(aware(r.ends_at) or r.ends_at, aware(r.created_at) or r.created_at),
                             r.rule, r.zone, r.subject, r.by, r.reason) for r in rows]
            return [s for s in found if s.ends_at > now]

    def add(self, silence: Silence, now: datetime) -> int:
        with self.sessions.begin() as session:
            row = SilenceRow(rule=silence.rule, zone=silence.zone, subject=silence.subject, ends_at=silence.ends_at,
                             by=silence.by, reason=silence.reason, created_at=now)
            session.add(row)
            session.flush()
            return row.id
