"""The ingest checkpoint: what a drain writes beside its alarm changes (dead letters, the per-edge sequence
state, the rule engine's changed state), in the same transaction, so a crash keeps both or neither.

Its own unit: the alarm service runs it inside its commit without knowing what ingest collected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.domain.dead_letters import DeadLetter
from server.domain.rules.engine import StateDelta
from server.services.ports import CheckpointTx


@dataclass(frozen=True, slots=True)
class Checkpoint:
    dead_letters: Sequence[DeadLetter] = ()
    sequences: dict[str, Any] | None = None
    """The sequence tracker's snapshot; None: not saved this time."""
    engine_state: StateDelta | None = None
    """The rule engine's rows changed since the last checkpoint; None: not saved this time."""

    def is_empty(self) -> bool:
        return not self.dead_letters and self.sequences is None and self.engine_state is None

    def write(self, tx: CheckpointTx, now: datetime) -> int | None:
        """Add its rows to the caller's transaction; returns the rule-engine rows written (None: none due)."""
        if self.dead_letters:
            tx.add_dead_letters(self.dead_letters)
        if self.sequences is not None:
            tx.save_state("sequences", self.sequences, now)
        if self.engine_state is not None:
            return tx.save_rule_delta(self.engine_state, now)
        return None
