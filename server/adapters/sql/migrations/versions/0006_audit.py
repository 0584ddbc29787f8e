"""audit: the state before and after each change (issue 9: audit rows with user, time, before, after)

Revision ID: 0006_audit
Revises: 0005_inspections
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_audit"
down_revision = "0005_inspections"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("before", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("after", sa.JSON(), nullable=True))
        batch.create_index("ix_audit_action", ["action"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.drop_index("ix_audit_action")
        batch.drop_column("after")
        batch.drop_column("before")
