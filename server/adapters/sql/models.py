"""Tables. Every state change is a row somewhere: alarms and their audit trail, dead letters, the
per-edge sequence state and the rule engine's pending durations (so a restart misses nothing)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from server.adapters.sql.base import Base


class AlarmRow(Base):
    __tablename__ = "alarms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    zone: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(24))
    is_open: Mapped[bool] = mapped_column(Boolean)
    """Not yet closed (active, acknowledged, shelved, suppressed); one open alarm per (rule, subject)."""
    raised_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    cleared_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(64))
    close_reason: Mapped[str | None] = mapped_column(Text)
    shelved_until: Mapped[datetime | None]
    value: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text, default="")
    message_zh: Mapped[str] = mapped_column(Text, default="")
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    flap_count: Mapped[int] = mapped_column(Integer, default=0)
    latching: Mapped[bool] = mapped_column(Boolean, default=False)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Domain state that has no column of its own (flap history, escalation step)."""

    __table_args__ = (
        # The database itself guarantees one open alarm per (rule, subject), whatever the code does.
        Index("uq_alarm_open", "rule", "subject", unique=True,
              sqlite_where=text("is_open"), postgresql_where=text("is_open")),
        Index("ix_alarm_state", "state"),
    )


class AlarmAuditRow(Base):
    __tablename__ = "alarm_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(ForeignKey("alarms.id"), index=True)
    at: Mapped[datetime]
    who: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    why: Mapped[str] = mapped_column(Text, default="")


class DeadLetterRow(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    topic: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(128))
    """The edge id when the topic names one, else the topic."""
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    """The bad part as received (the whole message, or the one rejected item), capped in size."""


class EngineStateRow(Base):
    """Named JSON snapshots: the per-edge sequences (`sequences`), the digest's state; `rules` is the rule
    engine's single-blob snapshot of versions before `rule_device_state`, read once and then deleted."""

    __tablename__ = "engine_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class RuleDeviceStateRow(Base):
    """The rule engine's state of one device (its dump and its pending timers), written only when it
    changed since the last checkpoint (RuleEngine.delta)."""

    __tablename__ = "rule_device_state"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    device: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class RuleSiteStateRow(Base):
    """The rule engine's site-wide state, one row per part: `open`, `timers` (those not keyed by a
    device), `fire:<zone>`, `shared:<key>`; written only when the part changed."""

    __tablename__ = "rule_site_state"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    part: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime]


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[str] = mapped_column(String(256))
    """Comma-separated role names."""
    zones: Mapped[str] = mapped_column(String(512), default="")
    """Comma-separated zones the user answers for; empty means all."""
    password_hash: Mapped[str | None] = mapped_column(String(256))
    """scrypt, with its parameters and salt (see server/services/auth.py); None: token-only account."""
    created_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ApiTokenRow(Base):
    """Bearer tokens: one per login (expiring), or a service token made by an admin (no expiry)."""

    __tablename__ = "api_tokens"

    token_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    """SHA-256 of the bearer token; the token itself is never stored."""
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    label: Mapped[str] = mapped_column(String(64), default="")


class AuditRow(Base):
    """Who did what through the API (it.privileged_action)."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    who: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    """The changed thing as it was (None: it did not exist)."""
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    """The changed thing as it is after the change."""
from server.adapters.sql import inspection_models, leases, recovery_models, response_models  # noqa: E402,F401
