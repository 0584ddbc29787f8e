"""Engine creation and migrations. Alembic owns the schema; `migrate` runs it to head at start-up."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x466C6F6F72  # any constant shared by every Floorwatch process: "Floor"


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names (any driver: `sqlite:///`, `sqlite+pysqlite:///`); None for an in-memory
    database or another backend. The one reading of a URL for the engine, the process lock and backups."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def make_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() == "sqlite":
        path = sqlite_file(url)
        if path is not None:  # None: in memory
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL lets the API read while ingest writes; synchronous=NORMAL is durable across a
            # process crash (not a power cut), the trade every SQLite-backed service makes.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class MigrationBlocked(Exception):
    """A migration could not take the lock it needs in time; the message says what to do."""


LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's SQLSTATE when `lock_timeout` ran out."""


def behind_lock_timeout(bind: Connection, revision: str, table: str, ddl: Callable[[], object], *,
                        wait: str = "2s", tries: int = 5, pause_s: float = 1.0) -> None:
    """Run a migration's `ddl` on PostgreSQL, which locks `table`, in tries that each wait at most `wait` for
    that lock: every statement of a running owner on the table queues behind a waiting DDL, so the owner's
    renewals and writes get through between tries (`pause_s`). A table busy for all `tries` is
    MigrationBlocked, saying what to do; each failed try is rolled back, so nothing was changed."""
    for attempt in range(tries):
        if attempt:
            time.sleep(pause_s)
        savepoint = bind.begin_nested()
        try:
            bind.exec_driver_sql(f"SET LOCAL lock_timeout = '{wait}'")
            ddl()
            bind.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")
        except OperationalError as exc:
            savepoint.rollback()
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            continue
        savepoint.commit()
        return
    raise MigrationBlocked(
        f"migration {revision}: the table {table} stayed in use by another transaction through {tries} tries "
        f"of {wait} each (a long transaction on it, or a tool holding it open); nothing was changed: end that "
        "transaction, or start this server again")


def migrate(engine: Engine) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":  # workers starting together: one migrates, the others wait
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")  # "heads": a branch being developed beside main still applies


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
