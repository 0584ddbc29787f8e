"""The alarm effects outbox (issue 9, fault 2): one row per committed alarm transition whose listeners
(MQTT AlarmChange, escalation, evacuation, overload cut, fire verification, inspections) must run.

The row is written in the SAME transaction as the transition, and marked done only after every listener
returned; a row still pending at start-up is a transition whose effects a crash may have lost, and is
dispatched again (server/services/recovery.py). Schema: migration 0007_effects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from server.adapters.sql.base import Base


class AlarmEffectRow(Base):
    __tablename__ = "alarm_effects"
    __table_args__ = (Index("ix_alarm_effects_pending", "done_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alarm_id: Mapped[int] = mapped_column(Integer, index=True)
    state: Mapped[str] = mapped_column(String(24))
    """The transition's new state (for people reading the table; the snapshot is what is dispatched)."""
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The alarm exactly as the listeners were told of it (domain field -> plain JSON value)."""
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    failures: Mapped[int] = mapped_column(Integer, default=0)
    """Dispatches in which a listener raised; such a row is retried (RETRY_S) until MAX_FAILURES."""
    recovered: Mapped[bool] = mapped_column(default=False)
    """Dispatched by a retry (start-up or after a failure), not only right after its commit."""
    last_error: Mapped[str | None] = mapped_column(Text)
