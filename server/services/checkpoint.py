"""The ingest checkpoint: what a drain writes beside its alarm changes (dead letters, the per-edge sequence
state, the rule engine's changed state), in the same transaction, so a crash keeps both or neither.

Its own unit: the alarm service runs it inside its commit without knowing what ingest collected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from server.adapters.sql.models import DeadLetterRow
from server.adapters.sql.repository import save_rule_delta, save_state
from server.domain.rules.engine import StateDelta


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: datetime
    topic: str
    source: str
    reason: str
    payload: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    dead_letters: Sequence[DeadLetter] = ()
    sequences: dict[str, Any] | None = None
    """The sequence tracker's snapshot; None: not saved this time."""
    engine_state: StateDelta | None = None
    """The rule engine's rows changed since the last checkpoint; None: not saved this time."""

    def is_empty(self) -> bool:
        return not self.dead_letters and self.sequences is None and self.engine_state is None

    def write(self, session: Session, now: datetime) -> int | None:
        """Add its rows to the caller's transaction; returns the rule-engine rows written (None: none due)."""
        for letter in self.dead_letters:
            session.add(DeadLetterRow(received_at=letter.received_at, topic=letter.topic,
                                      source=letter.source, reason=letter.reason, payload=letter.payload))
        if self.sequences is not None:
            save_state(session, "sequences", self.sequences, now)
        if self.engine_state is not None:
            return save_rule_delta(session, self.engine_state, now)
        return None
