"""partition leases: which worker owns a site's partition, under which epoch, until when (issue 15)

Revision ID: 0010_partition_leases
Revises: 0009_rule_state_rows
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_partition_leases"
down_revision = "0009_rule_state_rows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partition_leases",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("site_hash", sa.String(length=64), nullable=False),
        sa.Column("partitions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("site", "partition"),
    )


def downgrade() -> None:
    op.drop_table("partition_leases")
