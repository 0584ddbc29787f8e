"""The alarm service's transaction (server/services/alarms.py): the `alarms` rows and their `alarm_audit`
trail, the audit log, the ingest checkpoint's dead letters, named snapshots and rule rows, and the
`alarm_effects` outbox, all in one commit."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.effects import record_effects
from server.adapters.sql.models import AlarmAuditRow, AlarmRow, DeadLetterRow
from server.adapters.sql.repository import alarm_to_row, record_audit, save_rule_delta, save_state
from server.domain.alarms import Alarm, Audit
from server.domain.dead_letters import DeadLetter
from server.domain.rules.engine import StateDelta


class AlarmTransaction:
    def __init__(self, session: Session) -> None:
        self.session = session

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

    def audit(self, who: str, action: str, target: str, detail: dict[str, Any], at: datetime) -> None:
        record_audit(self.session, who, action, target, detail, at)

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


class AlarmWriter:
    """The alarm service's transactions (AlarmStore); reads of alarms are AlarmRepository's."""

    def __init__(self, sessions: sessionmaker[Session], fence: Callable[[Session], None] | None = None) -> None:
        self.sessions = sessions
        self.fence = fence
        """The partition lease's check, first in every transaction (None: one process owns it all)."""

    @contextmanager
    def transaction(self) -> Iterator[AlarmTransaction]:
        with self.sessions.begin() as session:
            if self.fence is not None:
                self.fence(session)
            yield AlarmTransaction(session)
