"""Partition leases in PostgreSQL: who owns a site's partition, under which epoch, until when (issue 15).

A worker owns a partition while its row names it and `expires_at` (the database's clock, so workers on
machines whose clocks disagree still agree on expiry) lies ahead. Taking a free or expired row is one
guarded `INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at < now`, and raises the epoch by one.

Fencing. `fence(session, lease)` runs inside every transaction that commits a partition's state (alarm
changes, the rule engine's checkpoint, the sequence state): an UPDATE of the lease row guarded by owner,
epoch and expiry. The row lock it takes orders it against a takeover: either the commit comes first (the
takeover waits for it, then finds the lease it takes still valid until then) or the takeover does, and
then the guarded UPDATE matches no row and the commit is rolled back with `LeaseLost`. So a worker that
lost its lease can never commit again, whatever its own clock or threads believe.

Only PostgreSQL: SQLite serves exactly one process (`floorwatch worker` refuses it), which owns it all.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from sqlalchemy import BigInteger, Engine, Integer, String, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from server.adapters.sql.base import Base
from server.domain.leases import Advert, Holder, Lease, LeaseConflict, LeaseLost

__all__ = ["Advert", "Holder", "Lease", "LeaseConflict", "LeaseLost", "LeaseRow", "LeaseStore", "fence",
           "site_hash"]


class LeaseRow(Base):
    __tablename__ = "partition_leases"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(String(200))
    epoch: Mapped[int] = mapped_column(BigInteger)
    """Raised by one at every takeover: a commit checks it, so an old owner's commit fails."""
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime]
    site_hash: Mapped[str] = mapped_column(String(64))
    """sha256 of the owner's site file: a worker started with another file is refused while it lives."""
    partitions: Mapped[int] = mapped_column(Integer)
    http_url: Mapped[str | None] = mapped_column(String(500))
    """Where the owner's HTTP API answers (FLOORWATCH_ADVERTISE_URL), for standbys to forward to; None: no
    HTTP (`floorwatch worker`). Written at acquire (migration 0012)."""
    forward_key: Mapped[str | None] = mapped_column(String(64))
    """A random secret of the owner's epoch: a forwarded client address counts only with it."""
    advert_epoch: Mapped[int | None] = mapped_column(BigInteger)
    """The epoch `http_url` and `forward_key` were written under: a worker of an older version takes the
    lease without them, and the previous owner's address must not be used then."""


def site_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


_ACQUIRE = text("""
INSERT INTO partition_leases (site, partition, owner, epoch, expires_at, acquired_at, site_hash, partitions,
                              http_url, forward_key, advert_epoch)
VALUES (:site, :partition, :owner, 1, clock_timestamp() + make_interval(secs => :ttl), clock_timestamp(),
        :site_hash, :partitions, :http_url, :forward_key, 1)
ON CONFLICT (site, partition) DO UPDATE
   SET owner = EXCLUDED.owner, epoch = partition_leases.epoch + 1, expires_at = EXCLUDED.expires_at,
       acquired_at = EXCLUDED.acquired_at, site_hash = EXCLUDED.site_hash, partitions = EXCLUDED.partitions,
       http_url = EXCLUDED.http_url, forward_key = EXCLUDED.forward_key, advert_epoch = partition_leases.epoch + 1
 WHERE partition_leases.expires_at < clock_timestamp()
RETURNING epoch
""")
_RENEW = text("""
UPDATE partition_leases SET expires_at = clock_timestamp() + make_interval(secs => :ttl)
 WHERE site = :site AND partition = :partition AND owner = :owner AND epoch = :epoch
   AND expires_at > clock_timestamp()
""")
_FENCE = text("""
UPDATE partition_leases SET epoch = epoch
 WHERE site = :site AND partition = :partition AND owner = :owner AND epoch = :epoch
   AND expires_at > clock_timestamp()
""")
_RELEASE = text("""
UPDATE partition_leases SET expires_at = clock_timestamp() - interval '1 second'
 WHERE site = :site AND partition = :partition AND owner = :owner AND epoch = :epoch
""")
_HOLDER = text("""
SELECT owner, epoch, EXTRACT(EPOCH FROM expires_at - clock_timestamp()) AS left_s, site_hash, partitions
  FROM partition_leases WHERE site = :site AND partition = :partition
""")
_ADVERT = text("""
SELECT owner, epoch, EXTRACT(EPOCH FROM expires_at - clock_timestamp()) AS left_s, http_url, forward_key,
       advert_epoch
  FROM partition_leases WHERE site = :site AND partition = :partition
""")


class LeaseStore:
    """The `partition_leases` table (migration 0010). Every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError(f"partition leases need PostgreSQL, not {engine.dialect.name}")
        self.engine = engine

    def holder(self, site: str, partition: int) -> Holder | None:
        with self.engine.connect() as connection:
            row = connection.execute(_HOLDER, {"site": site, "partition": partition}).first()
        if row is None:
            return None
        return Holder(row.owner, int(row.epoch), float(row.left_s), row.site_hash, int(row.partitions))

    def advert(self, site: str, partition: int) -> Advert | None:
        """Who owns the partition and where its HTTP API answers (None: nobody ever took it)."""
        with self.engine.connect() as connection:
            row = connection.execute(_ADVERT, {"site": site, "partition": partition}).first()
        if row is None:
            return None
        advertised = row.advert_epoch is not None and int(row.advert_epoch) == int(row.epoch)
        return Advert(row.owner, int(row.epoch), float(row.left_s), row.http_url if advertised else None,
                      row.forward_key if advertised else None, advertised)

    def acquire(self, site: str, partition: int, owner: str, ttl_s: float, hash_: str,
                partitions: int, http_url: str | None = None, forward_key: str | None = None) -> Lease | None:
        """Take the partition if nobody holds it (epoch + 1); None while a live owner does. A live owner
        with another site file or partition count is a `LeaseConflict`. `http_url` and `forward_key` are
        this worker's advert for standbys (see LeaseRow)."""
        holder = self.holder(site, partition)
        if holder is not None and holder.expires_in_s > 0:
            if holder.site_hash != hash_:
                raise LeaseConflict(
                    f"worker {holder.owner} runs site {site!r} with another site file (sha256 "
                    f"{holder.site_hash[:12]}…, this one {hash_[:12]}…); give every worker of a site the same "
                    "FLOORWATCH_SITE_FILE, or stop the others first")
            if holder.partitions != partitions:
                raise LeaseConflict(
                    f"worker {holder.owner} runs site {site!r} with {holder.partitions} partition(s), this one "
                    f"with {partitions}; the partition count comes with the Floorwatch version: run the same version "
                    "on every worker of a site, or stop the others first")
            return None
        with self.engine.begin() as connection:
            epoch = connection.execute(_ACQUIRE, {"site": site, "partition": partition, "owner": owner,
                                                  "ttl": ttl_s, "site_hash": hash_,
                                                  "partitions": partitions, "http_url": http_url,
                                                  "forward_key": forward_key}).scalar()
        return None if epoch is None else Lease(site, partition, owner, int(epoch))

    def renew(self, lease: Lease, ttl_s: float) -> bool:
        """Push the expiry ahead; False when the lease expired or was taken (never renew a lost lease)."""
        with self.engine.begin() as connection:
            result = connection.execute(_RENEW, {**_key(lease), "ttl": ttl_s})
        return bool(result.rowcount)

    def fence(self, session: Session, lease: Lease) -> None:
        fence(session, lease)

    def release(self, lease: Lease) -> None:
        """Let a standby take the partition now instead of after the TTL (a clean stop)."""
        with self.engine.begin() as connection:
            connection.execute(_RELEASE, _key(lease))


def fence(session: Session, lease: Lease) -> None:
    """In the caller's transaction: raise LeaseLost unless `lease` is still this worker's (see above)."""
    if not session.execute(_FENCE, _key(lease)).rowcount:  # type: ignore[attr-defined]
        raise LeaseLost(f"partition {lease.partition} of site {lease.site}: lease epoch {lease.epoch} "
                        f"of {lease.owner} is no longer valid")


def _key(lease: Lease) -> dict[str, object]:
    return {"site": lease.site, "partition": lease.partition, "owner": lease.owner, "epoch": lease.epoch}
