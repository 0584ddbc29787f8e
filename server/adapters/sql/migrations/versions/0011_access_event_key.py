"""access log: one row per badge event, keyed by person, door, kind, time and direction (issue 15)

Revision ID: 0011_access_event_key
Revises: 0010_partition_leases
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_access_event_key"
down_revision = "0010_partition_leases"
branch_labels = None
depends_on = None


EVENT = "person, door, kind, ts, coalesce(direction, '')"
"""An event's identity. The direction is part of it (an `in` and an `out` of one person at one door in
the same instant are two events); a missing direction counts as one value, not as distinct NULLs."""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # no row of a still-running worker between the two steps
        op.execute(sa.text("LOCK TABLE access_log IN SHARE ROW EXCLUSIVE MODE"))
    # repeats written before the key existed (redeliveries) go first, the oldest row of each event stays
    op.execute(sa.text(f"DELETE FROM access_log WHERE id NOT IN (SELECT MIN(id) FROM access_log GROUP BY {EVENT})"))
    op.create_index("uq_access_event", "access_log",
                    ["person", "door", "kind", "ts", sa.text("coalesce(direction, '')")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_access_event", table_name="access_log")
