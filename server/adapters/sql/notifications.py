"""The notification service's tables (server/services/notify): `escalations`, the `notifications` outbox,
its `notification_log`, and the service's day marks in `state`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.models import EngineStateRow
from server.adapters.sql.repository import save_state
from server.adapters.sql.response_models import DeliveryLogRow, EscalationRow, EvacuationRow, NotificationRow
from server.adapters.sql.values import aware
from server.domain.notify_records import WITHDRAWN, DeliveryRecord, EscalationRecord, NotificationRecord

_ESCALATION = [f.name for f in dataclasses.fields(EscalationRecord)]
_NOTIFICATION = [f.name for f in dataclasses.fields(NotificationRecord) if f.name != "id"]


def _read(row: Any, names: list[str]) -> dict[str, Any]:
    """A row's columns, times made aware (SQLite hands back naive UTC) and lists copied."""
    values = {}
    for name in names:
        value = getattr(row, name)
        values[name] = aware(value) if isinstance(value, datetime) else list(value) if isinstance(
            value, list) else value
    return values


def _escalation(row: EscalationRow) -> EscalationRecord:
    return EscalationRecord(**_read(row, _ESCALATION))


def _notification(row: NotificationRow) -> NotificationRecord:
    return NotificationRecord(**_read(row, _NOTIFICATION), id=row.id)


def _delivery(row: DeliveryLogRow) -> DeliveryRecord:
    return DeliveryRecord(row.notification_id, aware(row.at) or row.at, row.attempt, row.ok, row.worker, row.error,
                          row.ms)


class NotifyTransaction:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._tracked: dict[tuple[str, int], tuple[Any, Any, dict[str, Any], list[str]]] = {}
        """(table, key) -> (row, the record handed out, its values then, the names written back)."""

    def _track(self, table: str, key: int, row: Any, record: Any, names: list[str]) -> Any:
        known = self._tracked.get((table, key))
        if known is not None:
            return known[1]
        self._tracked[(table, key)] = (row, record, _read(record, names), names)
        return record

    def write_back(self) -> None:
        """What changed of the records handed out, onto their rows (only that: a time read back from
        SQLite is not written again)."""
        for row, record, then, names in self._tracked.values():
            for name in names:
                value = getattr(record, name)
                if value != then[name]:
                    setattr(row, name, list(value) if isinstance(value, list) else value)

    def escalation(self, alarm_id: int) -> EscalationRecord | None:
        row = self.session.get(EscalationRow, alarm_id)
        if row is None:
            return None
        record: EscalationRecord = self._track("escalations", alarm_id, row, _escalation(row), _ESCALATION)
        return record

    def add_escalation(self, escalation: EscalationRecord) -> None:
        row = EscalationRow(alarm_id=escalation.alarm_id, severity=escalation.severity,
                            raised_at=escalation.raised_at, paged=[], first=[], repeats=0)
        self.session.add(row)
        # every column is written at the commit, as the record stands then
        self._tracked[("escalations", escalation.alarm_id)] = (
            row, escalation, {name: object() for name in _ESCALATION}, _ESCALATION)

    def due_escalations(self, now: datetime, limit: int) -> list[EscalationRecord]:
        rows = self.session.scalars(select(EscalationRow).where(
            EscalationRow.stopped.is_(False), EscalationRow.next_due_at.is_not(None),
            EscalationRow.next_due_at <= now).order_by(EscalationRow.next_due_at).limit(limit)).all()
        return [self._track("escalations", r.alarm_id, r, _escalation(r), _ESCALATION) for r in rows]

    def escalations_since(self, alarm_ids: Collection[int], severity: str) -> dict[int, datetime]:
        return {r.alarm_id: aware(r.raised_at) or r.raised_at for r in self.session.scalars(
            select(EscalationRow).where(EscalationRow.alarm_id.in_(list(alarm_ids)),
                                        EscalationRow.severity == severity)).all()}

    def has_key(self, dedupe_key: str) -> bool:
        return bool(self.session.scalar(select(NotificationRow.id).where(NotificationRow.dedupe_key == dedupe_key)))

    def groupable(self, group_key: str, severity: str, channel: str, since: datetime) -> NotificationRecord | None:
        row = self.session.scalars(select(NotificationRow).where(
            NotificationRow.group_key == group_key, NotificationRow.severity == severity,
            NotificationRow.channel == channel, NotificationRow.status == "queued",
            NotificationRow.attempts == 0, NotificationRow.claimed_by.is_(None),
            NotificationRow.created_at > since)).first()
        return _notification(row) if row is not None else None

    def fold(self, notification_id: int, items: list[dict[str, Any]], title: str, body: str) -> bool:
        # the claim and this update lock the row: whichever comes second sees the other's commit
        folded = self.session.execute(update(NotificationRow).where(
            NotificationRow.id == notification_id, NotificationRow.status == "queued",
            NotificationRow.claimed_by.is_(None),
        ).values(items=items, title=title, body=body).execution_options(synchronize_session=False))
        if getattr(folded, "rowcount", 0) != 1:
            return False
        row = self.session.get(NotificationRow, notification_id)
        if row is not None:
            self.session.expire(row)
        return True

    def add(self, notification: NotificationRecord) -> None:
        row = NotificationRow(**{name: getattr(notification, name) for name in _NOTIFICATION})
        self.session.add(row)
        self.session.flush()
        notification.id = row.id

    def notification(self, notification_id: int) -> NotificationRecord | None:
        # locked: a concurrent write (a withdrawal at an all-clear) waits, and is not overwritten by ours
        row = self.session.get(NotificationRow, notification_id, with_for_update=True)
        if row is None:
            return None
        record: NotificationRecord = self._track("notifications", notification_id, row, _notification(row),
                                                 _NOTIFICATION)
        return record

    def add_delivery(self, delivery: DeliveryRecord) -> None:
        self.session.add(DeliveryLogRow(notification_id=delivery.notification_id, at=delivery.at,
                                        attempt=delivery.attempt, ok=delivery.ok, worker=delivery.worker,
                                        error=delivery.error, ms=delivery.ms))

    def requeue_sending(self, claimed_by: str | None) -> int:
        mine = NotificationRow.claimed_by.is_not(None) if claimed_by is None else (
            NotificationRow.claimed_by == claimed_by)
        result = self.session.execute(update(NotificationRow).where(
            NotificationRow.status == "sending", mine,
        ).values(status="queued", lease_until=None))
        return int(getattr(result, "rowcount", 0) or 0)

    def withdraw(self, ref: str, reason: str) -> int:
        result = self.session.execute(update(NotificationRow).where(
            NotificationRow.ref == ref, NotificationRow.status.in_(("queued", "sending")),
        ).values(status=WITHDRAWN, last_error=reason[:500]))
        return int(getattr(result, "rowcount", 0) or 0)

    def ended_evacuations(self) -> list[tuple[str, datetime | None, str | None]]:
        unsent = select(NotificationRow.ref).where(NotificationRow.status.in_(("queued", "sending")))
        rows = self.session.execute(select(EvacuationRow.id, EvacuationRow.all_clear_at, EvacuationRow.all_clear_by)
                                    .where(EvacuationRow.state != "active", EvacuationRow.id.in_(unsent)))
        return [(ev_id, aware(at), by) for ev_id, at, by in rows]

    def claimable(self, now: datetime, limit: int, skip_channels: Collection[str],
                  skip_ids: Collection[int]) -> list[tuple[int, str]]:
        q = select(NotificationRow.id, NotificationRow.channel).where(or_(
            and_(NotificationRow.status == "queued", NotificationRow.next_attempt_at <= now),
            and_(NotificationRow.status == "sending", NotificationRow.lease_until < now),
        ))
        if skip_channels:
            q = q.where(NotificationRow.channel.not_in(list(skip_channels)))
        if skip_ids:
            q = q.where(NotificationRow.id.not_in(list(skip_ids)))
        return [(nid, channel) for nid, channel in self.session.execute(
            q.order_by(NotificationRow.next_attempt_at, NotificationRow.id).limit(limit))]

    def take(self, notification_id: int, now: datetime, lease_until: datetime, worker: str) -> bool:
        res = self.session.execute(update(NotificationRow).where(
            NotificationRow.id == notification_id,
            or_(NotificationRow.status == "queued",
                and_(NotificationRow.status == "sending", NotificationRow.lease_until < now)),
        ).values(status="sending", lease_until=lease_until, claimed_by=worker))
        return getattr(res, "rowcount", 0) == 1

    def renew(self, notification_id: int, worker: str, lease_until: datetime) -> bool:
        res = self.session.execute(update(NotificationRow).where(
            NotificationRow.id == notification_id, NotificationRow.status == "sending",
            NotificationRow.claimed_by == worker,
        ).values(lease_until=lease_until))
        return getattr(res, "rowcount", 0) == 1

    def state(self, key: str) -> dict[str, Any] | None:
        row = self.session.get(EngineStateRow, key)
        return dict(row.state) if row is not None else None

    def save_state(self, key: str, state: dict[str, Any], now: datetime) -> None:
        save_state(self.session, key, state, now)


class NotifyRepository:
    def __init__(self, sessions: sessionmaker[Session], fence: Callable[[Session], None] | None = None) -> None:
        self.sessions = sessions
        self.fence = fence
        """The site lease's check, first in a fenced transaction (None: one process owns it all)."""

    @property
    def fences(self) -> bool:
        return self.fence is not None

    @contextmanager
    def transaction(self, fenced: bool = False) -> Iterator[NotifyTransaction]:
        with self.sessions.begin() as session:
            tx = NotifyTransaction(session)
            yield tx
            tx.write_back()
            if fenced and self.fence is not None:
                # Last: the lease row is locked from here to the commit only, never while a row above waited
                # for its own lock (a fold of the escalation tick), which would hold every fenced commit.
                self.fence(session)

    def notifications(self, ids: Collection[int]) -> list[NotificationRecord]:
        with self.sessions() as session:
            return [_notification(r) for r in session.scalars(select(NotificationRow).where(
                NotificationRow.id.in_(list(ids))))]

    def first_page(self, alarm_id: int, key_prefix: str) -> list[NotificationRecord]:
        with self.sessions() as session:
            return [_notification(r) for r in session.scalars(select(NotificationRow).where(
                NotificationRow.alarm_id == alarm_id,
                NotificationRow.dedupe_key.like(f"{key_prefix}%")).order_by(NotificationRow.id))]

    def log(self, alarm_id: int | None, ref: str | None, limit: int) -> list[NotificationRecord]:
        with self.sessions() as session:
            q = select(NotificationRow).order_by(NotificationRow.id).limit(limit)
            if alarm_id is not None:
                q = q.where(NotificationRow.alarm_id == alarm_id)
            if ref is not None:
                q = q.where(NotificationRow.ref == ref)
            return [_notification(r) for r in session.scalars(q)]

    def deliveries(self, notification_ids: Collection[int]) -> list[DeliveryRecord]:
        if not notification_ids:
            return []
        with self.sessions() as session:
            return [_delivery(r) for r in session.scalars(select(DeliveryLogRow).where(
                DeliveryLogRow.notification_id.in_(list(notification_ids))).order_by(DeliveryLogRow.id))]
