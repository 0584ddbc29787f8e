"""The alarm service's transaction (server/services/alarms.py): the `alarms` rows and their `alarm_audit`
trail, the audit log, the ingest checkpoint's dead letters, named snapshots and rule rows, and the
`alarm_effects` outbox, all in one commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.effects import record_effects
from server.adapters.sql.models import AlarmAuditRow, AlarmRow, DeadLetterRow
from server.adapters.sql.repository import alarm_to_row, save_rule_delta, save_state
from server.adapters.sql.unit_of_work import AuditedTransaction, Fence, FencedStore
from server.domain.alarms import Alarm, Audit
from server.domain.dead_letters import DeadLetter
from server.domain.rules.engine import StateDelta


class AlarmTransaction(AuditedTransaction):
    def save(self, alarm: Alarm, audits: Iterable[Audit], now: datetime) -> int:
        session = self.session
        row = session.get(AlarmRow, alarm.id) if alarm.id is not None else None
        row = alarm_to_row(alarm, row or AlarmRow(), now)
        session.add(row)
        session.flush()  # assigns the id of a new alarm
        for audit in audits:
            session.add(AlarmAuditRow(alarm_id=row.id, at=audit.at, who=audit.who, action=audit.action,
                                      from_state=audit.from_state, to_state=audit.to_state, why=audit.why))
        return row.id

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            self.session.add(DeadLetterRow(received_at=letter.received_at, topic=letter.topic, source=letter.source,
                                           reason=letter.reason, payload=letter.payload))

    def save_state(self, key: str, state: dict[str, Any], now: datetime) -> None:
        save_state(self.session, key, state, now)

    def save_rule_delta(self, delta: StateDelta, now: datetime) -> int:
        return save_rule_delta(self.session, delta, now)

    def add_effects(self, alarms: Sequence[Alarm], now: datetime) -> list[int | None]:
        return record_effects(self.session, alarms, now)


class AlarmWriter(FencedStore[AlarmTransaction]):
    """The alarm service's transactions (AlarmStore); reads of alarms are AlarmRepository's."""

    def __init__(self, sessions: sessionmaker[Session], fence: Fence | None = None) -> None:
        super().__init__(sessions, fence, AlarmTransaction)
