"""A badge event batch may be acknowledged to the broker only once its events are in the access log that
the roll call reads, and a write the database refuses for a while is retried, not dropped (issue 15).

Real PostgreSQL: another session holds an exclusive lock on `access_log` (as a long migration or a
stuck transaction would); the access log's connections have a 200 ms lock_timeout, so each write fails
with an OperationalError (lock not available) until the lock goes.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError

from server.adapters.sql.access_log import AccessLogRepository
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.response_models import AccessLogRow
from server.domain.evacuation import Access
from server.services.access_log import AccessLog
from tests.server.services.conftest import T0, make_site, site_yaml
from tests.server.services.test_access_log_repeats import badges
from tests.support.wait import wait_until


def test_an_event_batch_is_acked_only_once_written_and_a_refused_write_is_retried(
    postgres_schema: str, tmp_path: Path,
) -> None:
    # migrated without the short lock_timeout: the migration lock is one for the database, and another test
    # worker migrating its own schema may hold it for longer than 200 ms
    plain = make_engine(postgres_schema)
    migrate(plain)
    plain.dispose()
    engine = make_engine(postgres_schema + "%20-clock_timeout%3D200")
    sessions = session_factory(engine)
    log = AccessLog(AccessLogRepository(sessions), make_site(site_yaml(2525, 8080), tmp_path))
    log.start()
    blocker = engine.connect()
    try:
        tx = blocker.begin()
        blocker.execute(text("LOCK TABLE access_log IN EXCLUSIVE MODE"))
        message = badges(1, ("B11", "door-z1-exit", "in", T0 - timedelta(hours=1)))
        log.submit(message)
        assert wait_until(lambda: log.refused >= 3, 15), "the locked table never refused a write"
        assert not log.recorded(message), "the batch may be acknowledged while its events could not be written"
        assert log.retrying and log.pending() == 1  # health: access_log down, one batch pending
        tx.commit()
        assert wait_until(lambda: log.recorded(message), 10), "the write was not retried once the lock went"
        assert not log.retrying and log.pending() == 0
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(AccessLogRow)) == 1

        # Stopping while a write is refused: the batch stays unacknowledged (the broker hands it over again).
        tx = blocker.begin()
        blocker.execute(text("LOCK TABLE access_log IN EXCLUSIVE MODE"))
        second = badges(2, ("B11", "door-z1-exit", "out", T0))
        log.submit(second)
        log.stop()
        assert not log.recorded(second)
        tx.commit()
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(AccessLogRow)) == 1
    finally:
        log.stop()
        blocker.close()
        engine.dispose()


def test_a_batch_whose_evacuation_hook_fails_is_retried_until_the_hook_is_told(
    engine: Engine, tmp_path: Path,
) -> None:
    """The evacuation's badge-in check (`on_recorded`) fails once as a database that is down fails (the
    outbox it queues to): the batch stays unacknowledged and is tried again, write and hook (the table's key
    and the pushes' dedupe keys make the repeat safe), so the machine-room instruction is not lost."""
    log = AccessLog(AccessLogRepository(session_factory(engine)), make_site(site_yaml(2525, 8080), tmp_path))
    told: list[list[str]] = []

    def hook(events: list[Access]) -> None:
        told.append([e.person for e in events])
        if len(told) == 1:
            raise OperationalError("INSERT INTO notify_outbox ...", {}, Exception("database is down"))

    log.on_recorded = hook
    log.start()
    try:
        message = badges(1, ("B11", "door-z1-exit", "in", T0))
        log.submit(message)
        assert wait_until(lambda: log.recorded(message), 10), "the batch was never acknowledged"
        assert told == [["p-op1"], ["p-op1"]], "the failed hook was not tried again"
        assert log.refused == 1 and not log.retrying
    finally:
        log.stop()
