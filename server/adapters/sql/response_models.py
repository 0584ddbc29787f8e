"""Response tables: the notification outbox and its delivery log, escalation timers, silences,
evacuations with their roll-call marks, the access log that roll call reads, and server commands
(door release, relay cut/restore) with who asked and why.

They share `Base.metadata` (imported at the end of `models.py`); the schema comes from migration 0003.
Channel URLs are never stored: a row holds the URL's hash and the worker finds the URL in the site
file's contacts at delivery time, so tokens in URLs never reach the database or the logs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from server.adapters.sql.base import Base


class NotificationRow(Base):
    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_notification_dedupe"),
                      Index("ix_notification_due", "status", "next_attempt_at"),
                      Index("ix_notification_alarm", "alarm_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    """alarm/escalation step/recipient/channel: the same step never queues the same push twice."""
    alarm_id: Mapped[int | None] = mapped_column(Integer)
    ref: Mapped[str] = mapped_column(String(64), default="")
    """Evacuation id for evacuation pushes."""
    recipient: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(40))
    """Hash of the channel URL (scheme:sha256[:16]); the URL stays in the site file."""
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    group_key: Mapped[str | None] = mapped_column(String(160))
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    """queued, sending (claimed with a lease), sent, failed (gave up), suppressed."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))


class DeliveryLogRow(Base):
    __tablename__ = "notification_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(Integer, index=True)
    at: Mapped[datetime]
    attempt: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    worker: Mapped[str] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(500))
    ms: Mapped[float] = mapped_column(default=0.0)


class EscalationRow(Base):
    """One per notifiable alarm: the next step and the next repeat, both as due times in SQL."""

    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalation_due", "stopped", "next_due_at"),)

    alarm_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    severity: Mapped[str] = mapped_column(String(16))
    raised_at: Mapped[datetime]
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    step_due_at: Mapped[datetime | None]
    repeat_at: Mapped[datetime | None]
    repeats: Mapped[int] = mapped_column(Integer, default=0)
    next_due_at: Mapped[datetime | None]
    """min(step_due_at, repeat_at): what the worker polls on."""
    paged: Mapped[list[str]] = mapped_column(JSON, default=list)
    first: Mapped[list[str]] = mapped_column(JSON, default=list)
    acked_at: Mapped[datetime | None]
    stopped: Mapped[bool] = mapped_column(Boolean, default=False)
    stopped_why: Mapped[str] = mapped_column(String(120), default="")


class SilenceRow(Base):
    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64), default="")
    zone: Mapped[str] = mapped_column(String(64), default="")
    subject: Mapped[str] = mapped_column(String(128), default="")
    ends_at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]


class EvacuationRow(Base):
    __tablename__ = "evacuations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    floor: Mapped[str] = mapped_column(String(64))
    zones: Mapped[list[str]] = mapped_column(JSON)
    fire_zone: Mapped[str | None] = mapped_column(String(64))
    drill: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    triggered_at: Mapped[datetime]
    issued_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(64))
    message_zh: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    all_clear_at: Mapped[datetime | None]
    all_clear_by: Mapped[str | None] = mapped_column(String(64))


class RollCallMarkRow(Base):
    __tablename__ = "evacuation_marks"
    __table_args__ = (UniqueConstraint("evacuation_id", "person", name="uq_mark"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evacuation_id: Mapped[str] = mapped_column(String(64))
    person: Mapped[str] = mapped_column(String(64))
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    note: Mapped[str] = mapped_column(String(300), default="")


class AccessLogRow(Base):
    """Granted badge events by person id (never the badge number), for roll call."""

    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_ts", "ts"),
                      # one badge event, however often the broker hands it over (a redelivery after a crash
                      # or a takeover, an old owner that has not noticed its lease is gone): one row. An `in`
                      # and an `out` in the same instant are two; no direction is one value, not distinct NULLs.
                      Index("uq_access_event", "person", "door", "kind", "ts", text("coalesce(direction, '')"),
                            unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person: Mapped[str] = mapped_column(String(64))
    door: Mapped[str] = mapped_column(String(128))
    direction: Mapped[str | None] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(24))
    ts: Mapped[datetime]


class CommandRow(Base):
    """A command the server sent to an edge, with who and why (it.privileged_action for relays)."""

    __tablename__ = "commands"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device: Mapped[str] = mapped_column(String(128), index=True)
    edge: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(String(500))
    who: Mapped[str] = mapped_column(String(64))
    safety: Mapped[bool] = mapped_column(Boolean, default=False)
    """Sent by a safety rule (fire, overload): restoring needs the controls.relay_reenable role."""
    ref: Mapped[str] = mapped_column(String(64), default="", index=True)
    """What the command belongs to (`alarm:<id>`, an evacuation's id): every alarm view looks it up by this."""
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    """sent, ok, failed."""
    result_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(500))


class DelayedCutRow(Base):
    """elec.high_power_appliance's delayed cut of one alarm (RULES.md §2.1): a row, not a timer, so a
    restart neither drops nor repeats it (migration 0008_delayed_cuts)."""

    __tablename__ = "delayed_cuts"
    __table_args__ = (Index("ix_delayed_cut_due", "status", "due_at"),)

    alarm_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    device: Mapped[str] = mapped_column(String(128), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    """pending, held (a person overrode it), cut (command sent), cancelled (the alarm cleared)."""
    by: Mapped[str] = mapped_column(String(64), default="")
    why: Mapped[str] = mapped_column(String(500), default="")
    done_at: Mapped[datetime | None]
    command_id: Mapped[str | None] = mapped_column(String(64))


class CutHoldRow(Base):
    """A person keeps a plug on: delayed cuts of it are held until `until` (migration 0008_delayed_cuts)."""

    __tablename__ = "cut_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device: Mapped[str] = mapped_column(String(128), index=True)
    until: Mapped[datetime | None]
    """None: only the cuts pending when the hold was given."""
    by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]
