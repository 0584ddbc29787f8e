"""The `commands` table (migration 0003) for server/services/commands.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.repository import _aware, record_audit
from server.adapters.sql.response_models import CommandRow
from server.domain.commands import CommandRecord

_FIELDS = [f.name for f in dataclasses.fields(CommandRecord)]


def _command(row: CommandRow) -> CommandRecord:
    return CommandRecord(row.id, row.device, row.edge, row.action, row.reason, row.who, row.safety, row.ref,
                         _aware(row.issued_at) or row.issued_at, _aware(row.expires_at) or row.expires_at,
                         row.status, _aware(row.result_at), row.error)


class CommandTransaction:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, command: CommandRecord) -> None:
        self.session.add(CommandRow(**{name: getattr(command, name) for name in _FIELDS}))

    def set_result(self, command_id: str, status: str, at: datetime, error: str | None) -> bool:
        row = self.session.get(CommandRow, command_id)
        if row is None:
            return False
        row.status = status
        row.result_at = at
        row.error = error
        return True

    def audit(self, who: str, action: str, target: str, detail: dict[str, Any], at: datetime) -> None:
        record_audit(self.session, who, action, target, detail, at)


class CommandRepository:
    def __init__(self, sessions: sessionmaker[Session], fence: Callable[[Session], None] | None = None) -> None:
        self.sessions = sessions
        self.fence = fence
        """The partition lease's check, first in every transaction (None: one process owns it all)."""

    @contextmanager
    def transaction(self) -> Iterator[CommandTransaction]:
        with self.sessions.begin() as session:
            if self.fence is not None:
                self.fence(session)
            yield CommandTransaction(session)

    def last_relay(self, device: str) -> CommandRecord | None:
        with self.sessions() as session:
            row = session.scalars(select(CommandRow).where(
                CommandRow.device == device, CommandRow.action.in_(["relay_off", "relay_on"]))
                .order_by(CommandRow.issued_at.desc())).first()
            return _command(row) if row is not None else None

    def recent(self, device: str | None, ref: str | None, limit: int) -> list[CommandRecord]:
        q = select(CommandRow).order_by(CommandRow.issued_at.desc()).limit(limit)
        if device:
            q = q.where(CommandRow.device == device)
        if ref:
            q = q.where(CommandRow.ref == ref)
        with self.sessions() as session:
            return [_command(r) for r in session.scalars(q).all()]
