"""A test database at an older schema: what a rolling upgrade or a migration test starts from."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine

from server.adapters.sql.database import alembic_config


def upgrade_to(engine: Engine, revision: str) -> None:
    """Migrate `engine`'s database up to `revision` only (a later `migrate` applies the rest)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
