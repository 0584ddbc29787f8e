"""A command to an edge as the server keeps it: who asked and why, and what the edge answered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CommandRecord:
    id: str
    device: str
    edge: str
    action: str
    """The contract's Action value (relay_off, door_release, ...)."""
    reason: str
    who: str
    safety: bool
    """Sent by a safety rule (fire, overload): restoring needs the controls.relay_reenable role."""
    ref: str
    issued_at: datetime
    expires_at: datetime
    status: str
    """sent, ok, failed."""
    result_at: datetime | None = None
    error: str | None = None
