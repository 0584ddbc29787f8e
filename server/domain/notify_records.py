"""The notification service's stored state as it reads and changes it (server/services/notify): an
alarm's escalation timer, a queued push, one delivery attempt. The store (server/services/ports.py,
NotifyStore) hands them out in a transaction and writes back what changed when it commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

WITHDRAWN = "withdrawn"
"""Status of an outbox row that must no longer be sent (an evacuation's notice after its all-clear); its
`last_error` says why. A send already in flight when it was withdrawn is recorded as it ended."""


@dataclass(slots=True)
class EscalationRecord:
    """One per notifiable alarm: the next step and the next repeat, both as due times (UTC)."""

    alarm_id: int
    severity: str
    raised_at: datetime
    next_step: int = 0
    step_due_at: datetime | None = None
    repeat_at: datetime | None = None
    repeats: int = 0
    next_due_at: datetime | None = None
    """min(step_due_at, repeat_at): what the worker polls on."""
    paged: list[str] = field(default_factory=list)
    first: list[str] = field(default_factory=list)
    acked_at: datetime | None = None
    stopped: bool = False
    stopped_why: str = ""


@dataclass(slots=True)
class NotificationRecord:
    """One queued push to one channel (the outbox), with its delivery state; `id` 0 until stored."""

    dedupe_key: str
    alarm_id: int | None
    ref: str
    recipient: str
    channel: str
    severity: str
    title: str
    body: str
    items: list[dict[str, Any]]
    group_key: str | None
    fallback: bool
    status: str
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    lease_until: datetime | None = None
    claimed_by: str | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    id: int = 0


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One attempt to send a notification."""

    notification_id: int
    at: datetime
    attempt: int
    ok: bool
    worker: str
    error: str | None
    ms: float
