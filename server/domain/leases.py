"""A partition lease as a value, and what losing or contesting one means (server/adapters/sql/leases.py
keeps them in PostgreSQL, server/services/lease.py holds and renews them)."""

from __future__ import annotations

from dataclasses import dataclass


class LeaseLost(Exception):
    """This worker no longer owns the partition: nothing may be committed for it (roll back, stop)."""


class LeaseConflict(Exception):
    """A live owner of the site runs another configuration; the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class Lease:
    site: str
    partition: int
    owner: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Holder:
    owner: str
    epoch: int
    expires_in_s: float
    site_hash: str
    partitions: int


@dataclass(frozen=True, slots=True)
class Advert:
    """Who owns a partition and where its HTTP API answers, as a standby reads it to forward requests."""

    owner: str
    epoch: int
    expires_in_s: float
    http_url: str | None
    """None: the owner runs without HTTP (`floorwatch worker`), or is a version that advertises nothing."""
    forward_key: str | None
    """The owner's secret of this epoch: a standby sends it with the client's address, which the owner
    trusts only with this key."""
    advertised: bool
    """Whether the owner wrote the address under its epoch (False: an older version took the lease, and
    the address in the row, if any, is a previous owner's)."""
