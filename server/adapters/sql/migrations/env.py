"""Alembic environment: runs on the connection `database.migrate` passes in, or on the URL."""

from alembic import context
from sqlalchemy import create_engine

from server.adapters.sql import models  # noqa: F401  (every table module, into Base.metadata)
from server.adapters.sql.base import Base

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
