"""commands: an index on `ref`, which every alarm view (the automatic cut's) and every evacuation looks
commands up by

Revision ID: 0013_command_ref_index
Revises: 0012_lease_advert


On PostgreSQL, CREATE INDEX holds a SHARE lock on commands while it builds, and waits for it behind any
open transaction that wrote the table; every command write of the running owner would queue behind it.
As 0012: each try waits at most 2 s, and a table busy for all 5 tries is a clear error to retry
(`behind_lock_timeout`).
"""

from alembic import op

from server.adapters.sql.database import behind_lock_timeout

revision = "0013_command_ref_index"
down_revision = "0012_lease_advert"
branch_labels = None
depends_on = None

INDEX = "ix_commands_ref"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        op.create_index(INDEX, "commands", ["ref"], unique=False)
        return
    behind_lock_timeout(bind, revision, "commands", lambda: op.create_index(INDEX, "commands", ["ref"], unique=False))


def downgrade() -> None:
    op.drop_index(INDEX, table_name="commands")
