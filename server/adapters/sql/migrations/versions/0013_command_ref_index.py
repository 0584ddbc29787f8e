"""commands: an index on `ref`, which every alarm view (the automatic cut's) and every evacuation looks
commands up by

Revision ID: 0013_command_ref_index
Revises: 0012_lease_advert


On PostgreSQL, CREATE INDEX holds a SHARE lock on commands while it builds, and waits for it behind any
open transaction that wrote the table; every command write of the running owner would queue behind it.
As 0012: each try waits at most LOCK_WAIT, and a table busy for all TRIES is a clear error to retry.
"""

import time

from alembic import op
from sqlalchemy.exc import OperationalError

from server.adapters.sql.database import MigrationBlocked

revision = "0013_command_ref_index"
down_revision = "0012_lease_advert"
branch_labels = None
depends_on = None

INDEX = "ix_commands_ref"
LOCK_WAIT = "2s"
TRIES = 5
PAUSE_S = 1.0
"""Between two tries: the owner's command writes that queued behind a try get through."""
LOCK_NOT_AVAILABLE = "55P03"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        op.create_index(INDEX, "commands", ["ref"], unique=False)
        return
    for attempt in range(TRIES):
        if attempt:
            time.sleep(PAUSE_S)
        savepoint = bind.begin_nested()
        try:
            bind.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            op.create_index(INDEX, "commands", ["ref"], unique=False)
            bind.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")
        except OperationalError as exc:
            savepoint.rollback()
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            continue
        savepoint.commit()
        return
    raise MigrationBlocked(
        f"migration 0013_command_ref_index: the table commands stayed in use by another transaction "
        f"through {TRIES} tries of {LOCK_WAIT} each (a long transaction on it, or a tool holding it open); "
        "nothing was changed: end that transaction, or start this server again")


def downgrade() -> None:
    op.drop_index(INDEX, table_name="commands")
