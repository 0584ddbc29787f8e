"""The unit of work the leased stores share: one transaction, with the site lease's check in it. The
notification outbox keeps its own (`NotifyRepository.transaction`): its check runs last, so the lease row
is never locked while one of its rows waits for a lock of its own.

Under a lease (several workers, server/services/lease.py) a transaction that acts for the site runs the
lease's fence (`server.adapters.sql.leases.fence`) before it commits: a worker that lost the lease commits
nothing. Without one (SQLite, or one process without failover) `fence` is None and nothing is checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.repository import record_audit

Fence = Callable[[Session], None]


@contextmanager
def fenced_session(sessions: sessionmaker[Session], fence: Fence | None) -> Iterator[Session]:
    """`sessions.begin()` with the lease's check first: LeaseLost rolls the transaction back. For a
    transaction whose commit acts for the site (an alarm change, a command, an evacuation, a cut): publish
    what it wrote only after this block."""
    with sessions.begin() as session:
        if fence is not None:
            fence(session)
        yield session


class AuditedTransaction:
    """A unit of work's session, and the audit row every action on the site records in it."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def audit(self, who: str, action: str, target: str, detail: dict[str, Any], at: datetime) -> None:
        record_audit(self.session, who, action, target, detail, at)


TxT = TypeVar("TxT", bound=AuditedTransaction)


class FencedStore(Generic[TxT]):
    """A store whose writes go through `transaction()`: one fenced transaction, handed out as `TxT`."""

    def __init__(self, sessions: sessionmaker[Session], fence: Fence | None,
                 unit: Callable[[Session], TxT]) -> None:
        self.sessions = sessions
        self.fence = fence
        """The partition lease's check (None: one process owns it all)."""
        self._unit = unit

    @contextmanager
    def transaction(self) -> Iterator[TxT]:
        with fenced_session(self.sessions, self.fence) as session:
            yield self._unit(session)
