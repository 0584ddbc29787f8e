"""lease advert: the owner's HTTP address and forwarding key, so that standbys forward requests to it (issue 15)

Revision ID: 0012_lease_advert
Revises: 0011_access_event_key


Nullable columns: a worker of an older version takes the lease without writing them (rolling upgrade),
and `advert_epoch` then differs from the row's epoch, so no standby trusts the previous owner's address.

On PostgreSQL, ALTER TABLE waits for an exclusive lock on partition_leases, and every renewal and commit
fence of the running owner would queue behind it (the owner could lose its lease): each try waits at most
2 s, and a table busy for all 5 tries is a clear error to retry (`behind_lock_timeout`).
"""

import sqlalchemy as sa
from alembic import op

from server.adapters.sql.database import behind_lock_timeout

revision = "0012_lease_advert"
down_revision = "0011_access_event_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        op.add_column("partition_leases", sa.Column("http_url", sa.String(length=500), nullable=True))
        op.add_column("partition_leases", sa.Column("forward_key", sa.String(length=64), nullable=True))
        op.add_column("partition_leases", sa.Column("advert_epoch", sa.BigInteger(), nullable=True))
        return
    behind_lock_timeout(bind, revision, "partition_leases", lambda: bind.exec_driver_sql(
        "ALTER TABLE partition_leases ADD COLUMN http_url VARCHAR(500),"
        " ADD COLUMN forward_key VARCHAR(64), ADD COLUMN advert_epoch BIGINT"))


def downgrade() -> None:
    with op.batch_alter_table("partition_leases") as batch:
        batch.drop_column("advert_epoch")
        batch.drop_column("forward_key")
        batch.drop_column("http_url")
