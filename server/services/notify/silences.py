"""Silences: a person mutes an alarm's pages for a while (rule, zone, subject) with a reason."""

from __future__ import annotations

from datetime import datetime

from server.domain import notify as routing
from server.services.notify.state import NotifyState


class Silences(NotifyState):
    def _silences(self) -> list[routing.Silence]:
        return self.silence_store.active(self.clock())

    def add_silence(self, rule: str, zone: str, subject: str, ends_at: datetime, by: str, reason: str) -> int:
        """Raises routing.SilenceRefused for an end in the past or beyond routing.MAX_SILENCE."""
        routing.check_silence(ends_at, self.clock())
        return self.silence_store.add(routing.Silence(ends_at, rule, zone, subject, by, reason), self.clock())
