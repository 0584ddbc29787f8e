"""Alembic's migrations build the schema the models describe, on SQLite and on PostgreSQL: a model
column, table or index added without a migration fails here, not on a customer's database."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from server.adapters.sql.database import make_engine, migrate
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
