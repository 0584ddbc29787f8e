"""access log: one row per badge event, keyed by person, door, kind and time (issue 15)

Revision ID: 0011_access_event_key
Revises: 0010_partition_leases
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_access_event_key"
down_revision = "0010_partition_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # repeats written before the key existed (redeliveries) go first, the oldest row of each event stays
    op.execute(sa.text("DELETE FROM access_log WHERE id NOT IN"
                       " (SELECT MIN(id) FROM access_log GROUP BY person, door, kind, ts)"))
    with op.batch_alter_table("access_log") as batch:
        batch.create_unique_constraint("uq_access_event", ["person", "door", "kind", "ts"])


def downgrade() -> None:
    with op.batch_alter_table("access_log") as batch:
        batch.drop_constraint("uq_access_event", type_="unique")
