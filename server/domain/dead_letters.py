"""A message (or one item of it) that ingest could not use, kept for people to look at (the `dead_letters`
table, written with the drain's checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: datetime
    topic: str
    source: str
    """The edge id when the topic names one, else the topic."""
    reason: str
    payload: str
    """The bad part as received (the whole message, or the one rejected item), capped in size."""
