"""What the services need from the outside world, as Protocols the adapters implement (server/adapters).

The services own these; an adapter satisfies one by its shape, so neither side imports the other.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Protocol

from server.domain.rules.access import Approval
from server.domain.site import Site


class Sender(Protocol):
    """Sends one message through one channel URL (server/adapters/notify.py); raises when it was not taken."""

    def send(self, url: str, title: str, body: str, key: str | None = None) -> None: ...


class HrSource(Protocol):
    """Leavers and visitor approvals from the HR system (server/adapters/hr_file.py)."""

    def approvals(self, tz: tzinfo) -> list[Approval]: ...

    def leave_times(self, tz: tzinfo) -> dict[str, datetime]: ...

    def active_badges(self, site: Site) -> set[str]: ...
