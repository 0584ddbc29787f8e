"""effects: the alarm effects outbox, one row per committed transition until its listeners ran

Revision ID: 0007_effects
Revises: 0006_audit
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_effects"
down_revision = "0006_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alarm_effects",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("recovered", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_alarm_effects_alarm_id", "alarm_effects", ["alarm_id"])
    op.create_index("ix_alarm_effects_pending", "alarm_effects", ["done_at"])


def downgrade() -> None:
    op.drop_index("ix_alarm_effects_pending", table_name="alarm_effects")
    op.drop_index("ix_alarm_effects_alarm_id", table_name="alarm_effects")
    op.drop_table("alarm_effects")
