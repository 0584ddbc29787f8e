"""The `commands` table (migration 0003) for server/services/commands.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.response_models import CommandRow
from server.adapters.sql.unit_of_work import AuditedTransaction, Fence, FencedStore
from server.adapters.sql.values import aware
from server.domain.commands import CommandRecord

_FIELDS = [f.name for f in dataclasses.fields(CommandRecord)]


def _command(row: CommandRow) -> CommandRecord:
    return CommandRecord(row.id, row.device, row.edge, row.action, row.reason, row.who, row.safety, row.ref,
                         aware(row.issued_at) or row.issued_at, aware(row.expires_at) or row.expires_at,
                         row.status, aware(row.result_at), row.error)


class CommandTransaction(AuditedTransaction):
    def add(self, command: CommandRecord) -> None:
        self.session.add(CommandRow(**{name: getattr(command, name) for name in _FIELDS}))

    def exists(self, command_id: str) -> bool:
        return self.session.get(CommandRow, command_id) is not None

    def set_result(self, command_id: str, status: str, at: datetime, error: str | None) -> bool:
        row = self.session.get(CommandRow, command_id)
        if row is None:
            return False
        row.status = status
        row.result_at = at
        row.error = error
        return True

class CommandRepository(FencedStore[CommandTransaction]):
    def __init__(self, sessions: sessionmaker[Session], fence: Fence | None = None) -> None:
        super().__init__(sessions, fence, CommandTransaction)

    def recent(self, device: str | None, ref: str | None, limit: int) -> list[CommandRecord]:
        q = select(CommandRow).order_by(CommandRow.issued_at.desc()).limit(limit)
        if device:
            q = q.where(CommandRow.device == device)
        if ref:
            q = q.where(CommandRow.ref == ref)
        with self.sessions() as session:
            return [_command(r) for r in session.scalars(q).all()]

    def of_refs(self, refs: Sequence[str]) -> list[CommandRecord]:
        if not refs:
            return []
        q = select(CommandRow).where(CommandRow.ref.in_(list(refs))).order_by(CommandRow.issued_at)
        with self.sessions() as session:
            return [_command(r) for r in session.scalars(q).all()]
