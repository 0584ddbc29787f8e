"""Silences: a person mutes an alarm's pages for a while (rule, zone, subject) with a reason."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from server.adapters.sql.repository import _aware
from server.adapters.sql.response_models import SilenceRow
from server.domain import notify as routing
from server.services.notify.state import NotifyState


class Silences(NotifyState):
    def _silences(self) -> list[routing.Silence]:
        with self.sessions() as session:
            rows = session.scalars(select(SilenceRow).where(SilenceRow.ends_at > self.clock())).all()
            return [routing.Silence(_aware(r.ends_at) or r.ends_at, r.rule, r.zone, r.subject, r.by, r.reason)
                    for r in rows]

    def add_silence(self, rule: str, zone: str, subject: str, ends_at: datetime, by: str, reason: str) -> int:
        with self.sessions.begin() as session:
            row = SilenceRow(rule=rule, zone=zone, subject=subject, ends_at=ends_at, by=by, reason=reason,
                             created_at=self.clock())
            session.add(row)
            session.flush()
            return row.id
