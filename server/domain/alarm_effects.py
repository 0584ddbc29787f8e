"""An alarm transition whose listeners have not all run yet: a pending row of the effects outbox
(server/services/recovery.py)."""

from __future__ import annotations

from dataclasses import dataclass

from server.domain.alarms import Alarm


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    alarm: Alarm
    """The alarm exactly as the listeners were told of it."""
    failures: int
    """Dispatches in which a listener raised."""


@dataclass(frozen=True, slots=True)
class GivenUp:
    """A row that failed too often to be dispatched again; kept with its last error."""

    alarm_id: int
    failures: int
    error: str
