"""delayed cuts: elec.high_power_appliance's pending relay cuts and the holds people give (issue 5)

Revision ID: 0008_delayed_cuts
Revises: 0007_effects
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_delayed_cuts"
down_revision = "0007_effects"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delayed_cuts",
        sa.Column("alarm_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("device", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("why", sa.String(length=500), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("command_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("alarm_id"),
    )
    with op.batch_alter_table("delayed_cuts") as batch:
        batch.create_index("ix_delayed_cut_due", ["status", "due_at"], unique=False)
        batch.create_index("ix_delayed_cuts_device", ["device"], unique=False)
    op.create_table(
        "cut_holds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device", sa.String(length=128), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cut_holds") as batch:
        batch.create_index("ix_cut_holds_device", ["device"], unique=False)


def downgrade() -> None:
    op.drop_table("cut_holds")
    op.drop_table("delayed_cuts")
