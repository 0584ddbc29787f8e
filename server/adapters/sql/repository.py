"""Repositories over the SQL tables. The alarm mapping follows the domain dataclass field by field:
fields with a column of the same name go there, the rest into `extra` (JSON)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, cast

from sqlalchemy import CursorResult, case, delete, inspect, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from gateway.contract import Severity
from server.adapters.sql.base import Base
from server.adapters.sql.models import (
    AlarmAuditRow,
    AlarmRow,
    ApiTokenRow,
    AuditRow,
    DeadLetterRow,
    EngineStateRow,
    RuleDeviceStateRow,
    RuleSiteStateRow,
    UserRow,
)
from server.adapters.sql.values import aware, plain
from server.credentials import new_token, token_hash
from server.domain import alarms as domain
from server.domain.rules.engine import StateDelta

_COLUMNS = {c.key for c in AlarmRow.__table__.columns} - {"extra", "is_open", "updated_at"}


def alarm_to_row(alarm: domain.Alarm, row: AlarmRow, now: datetime) -> AlarmRow:
    extra: dict[str, Any] = {}
    for f in dataclasses.fields(alarm):
        value = getattr(alarm, f.name)
        if f.name in _COLUMNS:
            if f.name == "id" and value is None:
                continue
            if isinstance(value, datetime):
                value = value.astimezone(UTC)  # SQLite keeps no zone: store every instant as UTC
            setattr(row, f.name, value.value if isinstance(value, Enum) else value)
        else:
            extra[f.name] = plain(value)
    row.extra = extra
    row.is_open = alarm.is_open
    row.updated_at = now.astimezone(UTC)
    return row


def row_to_alarm(row: AlarmRow) -> domain.Alarm:
    return domain.Alarm.from_record({
        **{c: (aware(getattr(row, c)) if isinstance(getattr(row, c), datetime) else getattr(row, c))
           for c in _COLUMNS},
        **(row.extra or {}),
    })


class AlarmRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def open_alarms(self) -> list[domain.Alarm]:
        with self.sessions() as session:
            rows = session.scalars(select(AlarmRow).where(AlarmRow.is_open)).all()
            return [row_to_alarm(r) for r in rows]

    def get(self, alarm_id: int) -> domain.Alarm | None:
        with self.sessions() as session:
            row = session.get(AlarmRow, alarm_id)
            return row_to_alarm(row) if row is not None else None

    def query(self, *, state: str | None = None, open_only: bool = False, zone: str | None = None,
             limit: int = 500) -> list[domain.Alarm]:
        """Newest first; the open alarms most severe first, so that a limit drops the least urgent: a floor in
        an outage raises hundreds of minor alarms after a critical one, and a limited list must keep it."""
        newest = AlarmRow.id.desc()
        query = select(AlarmRow).order_by(_SEVERITY_RANK.desc(), newest) if open_only else \
            select(AlarmRow).order_by(newest)
        query = query.limit(limit)
        if state:
            query = query.where(AlarmRow.state == state)
        if open_only:
            query = query.where(AlarmRow.is_open)
        if zone:
            query = query.where(AlarmRow.zone == zone)
        with self.sessions() as session:
            return [row_to_alarm(r) for r in session.scalars(query).all()]

    def audit(self, alarm_id: int) -> list[AlarmAuditRow]:
        with self.sessions() as session:
            return list(session.scalars(select(AlarmAuditRow).where(AlarmAuditRow.alarm_id == alarm_id)
                                        .order_by(AlarmAuditRow.id)).all())

    def dead_letters(self, limit: int = 200, source: str | None = None) -> list[DeadLetterRow]:
        query = select(DeadLetterRow).order_by(DeadLetterRow.id.desc()).limit(limit)
        if source:
            query = query.where(DeadLetterRow.source == source)
        with self.sessions() as session:
            return list(session.scalars(query).all())

    def load_state(self, key: str) -> dict[str, Any] | None:
        with self.sessions() as session:
            row = session.get(EngineStateRow, key)
            return row.state if row is not None else None

    def load_legacy_rules(self) -> dict[str, Any] | None:
        return self.load_state(LEGACY_RULES_KEY)

    def load_rule_rows(self, site: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """The rule engine's saved rows of `site`: (device -> row, part -> row); both empty if none."""
        with self.sessions() as session:
            devices = {device: state for device, state in session.execute(
                select(RuleDeviceStateRow.device, RuleDeviceStateRow.state).where(RuleDeviceStateRow.site == site))}
            parts = {part: state for part, state in session.execute(
                select(RuleSiteStateRow.part, RuleSiteStateRow.state).where(RuleSiteStateRow.site == site))}
        return devices, parts


def save_state(session: Session, key: str, state: dict[str, Any], now: datetime) -> None:
    """Replace the named snapshot. An UPDATE (an INSERT the first time), never a load of the previous
    blob: reading the old JSON only to overwrite it was a quarter of the ingest thread's time at 1k devices."""
    updated = session.execute(update(EngineStateRow).where(EngineStateRow.key == key)
                              .values(state=state, updated_at=now))
    if not cast(CursorResult[Any], updated).rowcount:
        session.add(EngineStateRow(key=key, state=state, updated_at=now))


def save_rule_delta(session: Session, delta: StateDelta, now: datetime) -> int:
    """Write the rows of a rule-engine delta (upserts, deletes) in the caller's transaction; after the
    first delta that follows a single-blob restore, delete that blob. Returns the rows written."""
    site = delta.site
    if delta.devices:
        _upsert(session, RuleDeviceStateRow.__table__, "device", site, delta.devices, delta.device_json, now)
    if delta.parts:
        _upsert(session, RuleSiteStateRow.__table__, "part", site, delta.parts, {}, now)
    if delta.removed_devices:
        session.execute(delete(RuleDeviceStateRow).where(
            tuple_(RuleDeviceStateRow.site, RuleDeviceStateRow.device).in_([(site, d) for d in delta.removed_devices])))
    if delta.removed_parts:
        session.execute(delete(RuleSiteStateRow).where(
            tuple_(RuleSiteStateRow.site, RuleSiteStateRow.part).in_([(site, p) for p in delta.removed_parts])))
    if delta.full:
        session.execute(delete(EngineStateRow).where(EngineStateRow.key == LEGACY_RULES_KEY))
    return len(delta.devices) + len(delta.parts) + len(delta.removed_devices) + len(delta.removed_parts)


def _upsert(session: Session, table: Any, key: str, site: str, rows: dict[str, Any], texts: dict[str, str],
            now: datetime) -> None:
    """INSERT .. ON CONFLICT DO UPDATE of (site, key) -> state, one executemany straight to the driver:
    through the ORM's per-row parameter handling it cost about half again as much at 1,000 rows. A row
    whose JSON text the delta already made (`texts`, `json.dumps` as the column's serializer does) is
    written as that text; others go through the column's own bind processor, so the ORM reads them back
    as it wrote them."""
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name not in ("sqlite", "postgresql"):
        raise RuntimeError(f"database {dialect.name!r} is not supported: use SQLite or PostgreSQL")
    to_json = table.c.state.type.dialect_impl(dialect).bind_processor(dialect) or json.dumps
    stamp = table.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)
    at = stamp(now) if stamp is not None else now
    mark, state = ("?", "?") if dialect.paramstyle == "qmark" else ("%s", "CAST(%s AS JSON)")
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} (site, {key}, state, updated_at) VALUES ({mark}, {mark}, {state}, {mark}) "
        f"ON CONFLICT (site, {key}) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        [(site, name, texts[name] if name in texts else to_json(data), at) for name, data in rows.items()])


def insert_new(session: Session, row: type[Base], values: Sequence[dict[str, Any]]) -> int:
    """INSERT .. ON CONFLICT DO NOTHING: a row whose unique key is stored already is left out (a repeat of
    the same fact); how many rows were new."""
    if not values:
        return 0
    dialect = session.connection().dialect.name
    rows = list(values)
    key = inspect(row).primary_key  # what RETURNING counts: a multi-row INSERT's rowcount is -1
    if dialect == "postgresql":
        result = session.execute(postgresql.insert(row).values(rows).on_conflict_do_nothing().returning(*key))
    elif dialect == "sqlite":
        result = session.execute(sqlite.insert(row).values(rows).on_conflict_do_nothing().returning(*key))
    else:
        raise RuntimeError(f"database {dialect!r} is not supported: use SQLite or PostgreSQL")
    return len(result.all())


LEGACY_RULES_KEY = "rules"
"""`engine_state` key of the single-blob rule snapshot written by versions before migration 0009."""


def record_audit(session: Session, who: str, action: str, target: str, detail: dict[str, Any],
                 now: datetime, before: Any = None, after: Any = None) -> None:
    session.add(AuditRow(at=now, who=who, action=action, target=target, detail=plain(detail),
                         before=plain(before) if before is not None else None,
                         after=plain(after) if after is not None else None))


def audit_rows(session: Session, *, who: str | None = None, action: str | None = None, target: str | None = None,
               since: datetime | None = None, limit: int = 500) -> list[AuditRow]:
    """Newest first."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if who:
        query = query.where(AuditRow.who == who)
    if action:
        query = query.where(AuditRow.action == action)
    if target:
        query = query.where(AuditRow.target == target)
    if since:
        query = query.where(AuditRow.at >= since)
    return list(session.scalars(query).all())


_SEVERITY_RANK = case({s.value: rank for rank, s in enumerate(
    (Severity.WARNING, Severity.MINOR, Severity.MAJOR, Severity.CRITICAL), start=1)}, value=AlarmRow.severity, else_=0)
"""Alarm severities in SQL, worse higher, for ordering."""


class UserRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def by_token(self, token: str, now: datetime) -> UserRow | None:
        """The active user a valid, unexpired token belongs to."""
        with self.sessions() as session:
            found = session.execute(
                select(UserRow, ApiTokenRow.expires_at).join(ApiTokenRow, ApiTokenRow.user_id == UserRow.id)
                .where(ApiTokenRow.token_hash == token_hash(token), UserRow.active)
            ).first()
            if found is None:
                return None
            user, expires_at = found
            if expires_at is not None and aware(expires_at) <= now:  # type: ignore[operator]
                return None
            return user

    def by_name(self, name: str) -> UserRow | None:
        with self.sessions() as session:
            return session.scalars(select(UserRow).where(UserRow.name == name)).first()

    def all(self) -> list[UserRow]:
        with self.sessions() as session:
            return list(session.scalars(select(UserRow).order_by(UserRow.name)).all())

    def count(self) -> int:
        with self.sessions() as session:
            return len(session.scalars(select(UserRow.id)).all())

    def save(self, name: str, roles: Sequence[str], now: datetime, zones: Sequence[str] = (),
             password_hash: str | None = None) -> UserRow:
        """Create the user, or update roles, zones (and password, when given) of an existing one."""
        with self.sessions.begin() as session:
            row = session.scalars(select(UserRow).where(UserRow.name == name)).first()
            if row is None:
                row = UserRow(name=name, created_at=now, active=True)
                session.add(row)
            row.roles, row.zones, row.active = ",".join(roles), ",".join(zones), True
            if password_hash is not None:
                row.password_hash = password_hash
            session.flush()
        return row

    def deactivate(self, name: str) -> bool:
        """Disable the account and revoke all its tokens."""
        with self.sessions.begin() as session:
            row = session.scalars(select(UserRow).where(UserRow.name == name)).first()
            if row is None:
                return False
            row.active = False
            session.execute(delete(ApiTokenRow).where(ApiTokenRow.user_id == row.id))
        return True

    def issue_token(self, user_id: int, now: datetime, ttl: timedelta | None, label: str) -> str:
        token = new_token()
        with self.sessions.begin() as session:
            session.add(ApiTokenRow(token_hash=token_hash(token), user_id=user_id, created_at=now,
                                    expires_at=None if ttl is None else now + ttl, label=label))
        return token

    def revoke_token(self, token: str) -> None:
        with self.sessions.begin() as session:
            session.execute(delete(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash(token)))

    def add_token(self, user_id: int, token: str, now: datetime, label: str) -> None:
        """Register a token chosen elsewhere (FLOORWATCH_ADMIN_TOKEN) as a service token."""
        with self.sessions.begin() as session:
            session.add(ApiTokenRow(token_hash=token_hash(token), user_id=user_id, created_at=now,
                                    expires_at=None, label=label))
