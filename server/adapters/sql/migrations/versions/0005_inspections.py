"""inspections: the pre-fill's suggestion and evidence stored with each item result

Revision ID: 0005_inspections
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_inspections"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inspection_results") as batch:
        batch.add_column(sa.Column("suggested", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("evidence", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inspection_results") as batch:
        batch.drop_column("evidence")
        batch.drop_column("suggested")
