"""lease advert: the owner's HTTP address and forwarding key, so that standbys forward requests to it (issue 15)

Revision ID: 0012_lease_advert
Revises: 0011_access_event_key

Nullable columns: a worker of an older version takes the lease without writing them (rolling upgrade),
and `advert_epoch` then differs from the row's epoch, so no standby trusts the previous owner's address.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_lease_advert"
down_revision = "0011_access_event_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("partition_leases", sa.Column("http_url", sa.String(length=500), nullable=True))
    op.add_column("partition_leases", sa.Column("forward_key", sa.String(length=64), nullable=True))
    op.add_column("partition_leases", sa.Column("advert_epoch", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("partition_leases") as batch:
        batch.drop_column("advert_epoch")
        batch.drop_column("forward_key")
        batch.drop_column("http_url")
