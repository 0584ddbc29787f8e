"""The `access_log` table: badge events by person id (never badge numbers), one row per event."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.repository import insert_new
from server.adapters.sql.response_models import AccessLogRow
from server.domain.evacuation import Access


class AccessLogRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def add_new(self, events: Sequence[Access]) -> int:
        rows = [{"person": e.person, "door": e.door, "kind": e.kind, "ts": e.ts, "direction": e.direction}
                for e in events]
        with self.sessions.begin() as session:
            return insert_new(session, AccessLogRow, rows)
