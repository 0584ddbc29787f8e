"""Alembic's migrations build the schema the models describe, on SQLite and on PostgreSQL: a model
column, table or index added without a migration fails here, not on a customer's database."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text

from server.adapters.sql.database import alembic_config, make_engine, migrate
from server.adapters.sql.models import Base


def differences(engine: Engine) -> list[Any]:
    """What autogenerate would write into a new migration for this database (empty: none needed)."""
    with engine.connect() as connection:
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
                          " VALUES (:person, 'door-1', 'in', 'access_granted', :ts)")
            for person, ts in [("p1", "2026-11-29 03:00:00"), ("p1", "2026-11-29 03:00:00"),
                               ("p1", "2026-11-29 03:05:00"), ("p2", "2026-11-29 03:00:00")]:
                connection.execute(insert, {"person": person, "ts": ts})
        migrate(engine)
        with engine.connect() as connection:
            left = connection.execute(text("SELECT id, person FROM access_log ORDER BY id")).all()
    finally:
        engine.dispose()
    assert [(r.id, r.person) for r in left] == [(1, "p1"), (3, "p1"), (4, "p2")], left
