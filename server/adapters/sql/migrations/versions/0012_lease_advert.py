"""lease advert: the owner's HTTP address and forwarding key, so that standbys forward requests to it (issue 15)

Revision ID: 0012_lease_advert
Revises: 0011_access_event_key


Nullable columns: a worker of an older version takes the lease without writing them (rolling upgrade),
and `advert_epoch` then differs from the row's epoch, so no standby trusts the previous owner's address.

On PostgreSQL, ALTER TABLE waits for an exclusive lock on partition_leases, and every renewal and commit
fence of the running owner would queue behind it (the owner could lose its lease): each try waits at most
LOCK_WAIT, and a table busy for all TRIES is a clear error to retry.
"""

import time

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import OperationalError

from server.adapters.sql.database import MigrationBlocked

revision = "0012_lease_advert"
down_revision = "0011_access_event_key"
branch_labels = None
depends_on = None

LOCK_WAIT = "2s"
TRIES = 5
PAUSE_S = 1.0
"""Between two tries: the owner's renewals that queued behind a try get through."""
LOCK_NOT_AVAILABLE = "55P03"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        op.add_column("partition_leases", sa.Column("http_url", sa.String(length=500), nullable=True))
        op.add_column("partition_leases", sa.Column("forward_key", sa.String(length=64), nullable=True))
        op.add_column("partition_leases", sa.Column("advert_epoch", sa.BigInteger(), nullable=True))
        return
    for attempt in range(TRIES):
        if attempt:
            time.sleep(PAUSE_S)
        savepoint = bind.begin_nested()
        try:
            bind.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            bind.exec_driver_sql("ALTER TABLE partition_leases ADD COLUMN http_url VARCHAR(500),"
                                 " ADD COLUMN forward_key VARCHAR(64), ADD COLUMN advert_epoch BIGINT")
            bind.exec_driver_sql("SET LOCAL lock_timeout = DEFAULT")
        except OperationalError as exc:
            savepoint.rollback()
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            continue
        savepoint.commit()
        return
    raise MigrationBlocked(
        f"migration 0012_lease_advert: the table partition_leases stayed in use by another transaction "
        f"through {TRIES} tries of {LOCK_WAIT} each (a long transaction on it, or a tool holding it open); "
        "nothing was changed: end that transaction, or start this server again")


def downgrade() -> None:
    with op.batch_alter_table("partition_leases") as batch:
        batch.drop_column("advert_epoch")
        batch.drop_column("forward_key")
        batch.drop_column("http_url")
