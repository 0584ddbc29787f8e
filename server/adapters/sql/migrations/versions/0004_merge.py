"""Merge the two branches that grew side by side from 0002 (accounts; response) into one history.

Revision ID: 0004
Revises: 0003, 0003_response
"""

revision = "0004"
down_revision = ("0003", "0003_response")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
