"""Alembic's migrations build the schema the models describe, on SQLite and on PostgreSQL: a model
column, table or index added without a migration fails here, not on a customer's database."""

from __future__ import annotations

import threading
import warnings
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from server.adapters.sql.database import MigrationBlocked, alembic_config, make_engine, migrate
from server.adapters.sql.models import Base
from tests.support.database import upgrade_to


def differences(engine: Engine) -> list[Any]:
    """What autogenerate would write into a new migration for this database (empty: none needed). It
    cannot compare the access log's expression key (uq_access_event): the test after this one checks it."""
    with engine.connect() as connection, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index .?uq_access_event")
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                "compare_server_default": False,
                                                                "render_as_batch": True})
        return list(compare_metadata(context, Base.metadata))


def test_a_fresh_database_migrated_to_head_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine)
        found = differences(engine)
    finally:
        engine.dispose()
    assert found == [], ("the models and the migrations differ; add a migration under "
                         f"server/adapters/sql/migrations/versions for: {found}")


def test_the_access_event_key_keeps_one_row_of_each_event_written_twice_before_it(database_url: str) -> None:
    """Migration 0011 puts a key on the access log: rows a redelivery wrote twice before it go first."""
    engine = make_engine(database_url)
    try:
        config = alembic_config(engine.url.render_as_string(hide_password=False))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0010_partition_leases")
            insert = text("INSERT INTO access_log (person, door, direction, kind, ts)"
                          " VALUES (:person, 'door-1', :direction, :kind, :ts)")
            at, later = "2026-11-29 03:00:00", "2026-11-29 03:05:00"
            for person, direction, kind, ts in [
                ("p1", "in", "access_granted", at), ("p1", "in", "access_granted", at),  # 2: a repeat
                ("p1", "in", "access_granted", later), ("p2", "in", "access_granted", at),
                ("p1", "out", "access_granted", at),  # 5: the same instant, the other way: an event
                ("p2", None, "request_to_exit", at), ("p2", None, "request_to_exit", at),  # 7: a repeat
            ]:
                connection.execute(insert, {"person": person, "direction": direction, "kind": kind, "ts": ts})
        migrate(engine)
        with engine.begin() as connection:
            left = connection.execute(text("SELECT id, person FROM access_log ORDER BY id")).all()
            # the key holds after the migration: a repeat without a direction is refused too
            repeat = connection.begin_nested()
            try:
                connection.execute(insert, {"person": "p2", "direction": None, "kind": "request_to_exit", "ts": at})
                refused = False
            except IntegrityError:
                refused = True
            repeat.rollback()
    finally:
        engine.dispose()
    assert [(r.id, r.person) for r in left] == [(1, "p1"), (3, "p1"), (4, "p2"), (5, "p1"), (6, "p2")], left
    assert refused, "a repeat of an event without a direction was stored again"


def test_migration_0012_behind_a_long_transaction_lets_renewals_through_then_says_to_retry(
        postgres_schema: str) -> None:
    """ALTER TABLE queues for an exclusive lock, and every statement on the table queues behind it: a
    running owner's renewals must still get through while 0012 waits, and a table that stays busy is a
    clear error, not a migration that hangs."""
    engine = make_engine(postgres_schema)
    upgrade_to(engine, "0011_access_event_key")
    blocker = engine.connect()
    renewer = engine.connect()
    failure: list[BaseException] = []

    def migrating() -> None:
        try:
            migrate(engine)
        except BaseException as exc:  # the test reads what it was
            failure.append(exc)

    try:
        blocker.begin()
        blocker.execute(text("SELECT count(*) FROM partition_leases"))  # an open transaction that read it
        thread = threading.Thread(target=migrating, daemon=True)
        thread.start()
        renewer.execute(text("SET statement_timeout = '20s'"))  # bounds the test if the renewal hangs
        renewer.commit()
        renewals = 0
        while thread.is_alive():
            with renewer.begin():  # as a renewal: an UPDATE of the lease table
                renewer.execute(text("UPDATE partition_leases SET epoch = epoch WHERE site = 'none'"))
            renewals += 1
            thread.join(0.5)
        blocker.rollback()
        migrate(engine)  # the table free again: the migration goes through
        columns = {c["name"] for c in inspect(engine).get_columns("partition_leases")}
    finally:
        blocker.close()
        renewer.close()
        engine.dispose()
    assert renewals > 1, renewals
    assert len(failure) == 1 and isinstance(failure[0], MigrationBlocked), failure
    assert "partition_leases stayed in use" in str(failure[0]) and "start this server again" in str(failure[0])
    assert {"http_url", "forward_key", "advert_epoch"} <= columns


def test_commands_are_looked_up_by_ref_through_an_index(database_url: str) -> None:
    """Every alarm view (the automatic cut's) and every evacuation reads its commands by `ref`
    (server/adapters/sql/commands.py): without an index each view scanned the whole command history."""
    engine = make_engine(database_url)
    try:
        migrate(engine)
        indexes = {tuple(i["column_names"]): i["name"] for i in inspect(engine).get_indexes("commands")}
    finally:
        engine.dispose()
    assert ("ref",) in indexes, f"no index on commands.ref: {indexes}"
