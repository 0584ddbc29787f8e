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
