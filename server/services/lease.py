"""Holding a partition's lease: wait for it, renew it, and stop everything the moment it is lost.

A worker starts as a standby: `acquire` polls the lease row every 0.5 s until it is free or expired
(a clean stop releases it at once; a killed owner's expires after `ttl_s`). Once it owns the lease, the
runtime restores the partition's state from SQL and connects with the partition's persistent MQTT client
id; a thread renews the lease every `renew_s`.

The lease is lost when a renewal finds the row taken or expired, when a commit's fence check fails
(server/adapters/sql/leases.py), or when no renewal got through for `ttl_s - renew_s` (the database is
unreachable: by then another worker may take over, and it must find the MQTT session free, so this one
disconnects before the row can expire). `on_lost` is then called once, on a thread of its own (it may be
the ingest thread that noticed, and stopping ingest joins that thread).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from server.domain.leases import Advert, Lease, LeaseConflict, LeaseLost
from server.services.ports import LeaseStore

log = logging.getLogger(__name__)

PARTITION = 0
"""The one partition a site has (every edge); the lease table's key already has room for more."""
PARTITIONS = 1
STANDBY_POLL_S = 0.5
"""How often a standby looks at the lease row (one indexed SELECT): a takeover comes at most this late."""

Fence = Callable[[Session], None]
"""A held lease's check (`LeaseKeeper.fencer`): raises LeaseLost, rolling the transaction back, once this
worker no longer owns the partition."""


def worker_name() -> str:
    """Unique per process, readable by people: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class LeaseKeeper:
    def __init__(self, store: LeaseStore, site: str, owner: str, *, ttl_s: float, renew_s: float,
                 site_hash: str, partition: int = PARTITION, partitions: int = PARTITIONS,
                 http_url: str | None = None) -> None:
        self.store = store
        self.site = site
        self.owner = owner
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.site_hash = site_hash
        self.partition = partition
        self.partitions = partitions
        self.poll_s = min(renew_s, STANDBY_POLL_S)
        self.http_url = http_url
        """Where this worker's HTTP API answers once it owns the site (None: no HTTP), for standbys."""
        self.forward_key: str | None = None
        """The secret of the epoch this worker owns (written with the lease): a request that carries it
        comes from a standby of this site, and its forwarded client address is trusted."""
        self.lease: Lease | None = None
        self.state = "standby"
        """standby (waiting for the lease), owner, lost (fenced: commits nothing), released (stopped)."""
        self.lost_reason: str | None = None
        self.on_lost: Callable[[str], None] = lambda _reason: None
        self.renewals = 0
        self._last_ok = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, stop: threading.Event | None = None) -> Lease | None:
        """Block until this worker owns the partition (None if `stop` was set first). Raises
        LeaseConflict when a live owner runs another site file."""
        with self._lock:
            self.state, self.lost_reason, self.lease, self.forward_key = "standby", None, None, None
        key = secrets.token_hex(32) if self.http_url else None  # 64 characters, the column's width
        said = False
        while stop is None or not stop.is_set():
            began = time.monotonic()
            try:
                lease = self.store.acquire(self.site, self.partition, self.owner, self.ttl_s, self.site_hash,
                                           self.partitions, self.http_url, key)
            except LeaseConflict:
                raise
            except Exception as exc:  # the database may come back: a standby keeps waiting
                log.warning("lease of site %s unreachable (%s); retrying", self.site, type(exc).__name__)
                lease = None
            if lease is not None:
                with self._lock:
                    self.lease, self.state, self._last_ok, self.forward_key = lease, "owner", began, key
                log.warning("worker %s owns partition %d of site %s (epoch %d)%s", self.owner, self.partition,
                            self.site, lease.epoch, f"; standbys forward to {self.http_url}" if self.http_url else "")
                return lease
            if not said and lease is None:
                try:
                    holder = self.store.holder(self.site, self.partition)
                except Exception:  # unreachable: said above, and the loop keeps waiting
                    holder = None
                log.warning("standby: partition %d of site %s is held by %s for %.1f s more; waiting",
                            self.partition, self.site, holder.owner if holder else "?",
                            holder.expires_in_s if holder else 0.0)
                said = True
            if stop is not None:
                stop.wait(self.poll_s)
            else:
                time.sleep(self.poll_s)
        return None

    def start(self) -> None:
        """Renew in the background until `release` or the loss; a watchdog apart from the renewals notices
        when none got through in time, also while a renewal hangs on an unreachable database."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self._thread.start()
        threading.Thread(target=self._watch, name="lease-watchdog", daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(self.renew_s):
            lease = self.lease
            if lease is None or self.state != "owner":
                return
            began = time.monotonic()
            try:
                ok = self.store.renew(lease, self.ttl_s)
            except Exception as exc:  # the watchdog decides when it is too late
                log.warning("lease renewal failed (%s); retrying", type(exc).__name__)
                continue
            if not ok:
                self.lose("the lease expired or another worker took it (its epoch is newer)")
                return
            self._last_ok = began
            self.renewals += 1

    def _watch(self) -> None:
        # By `ttl - renew` after the last renewal began, this worker must be off the broker: the row may
        # expire at `ttl` and the next owner connect with the same client id.
        limit = self.ttl_s - self.renew_s
        while not self._stop.wait(min(0.5, self.renew_s / 2)):
            silent = time.monotonic() - self._last_ok
            if self.state == "owner" and silent > limit:
                self.lose(f"no renewal got through for {silent:.1f} s (database unreachable?): the lease may "
                          "expire and another worker take over")
                return

    def fencer(self) -> Fence:
        """The fence of the lease held now: a runtime started under this epoch commits under it only, even
        if this keeper owns the partition again later under a newer one (a thread of the old runtime that
        outlived its stop must not commit the old state)."""
        held = self.lease
        if held is None:
            raise LeaseLost(f"partition {self.partition} of site {self.site}: not owned by {self.owner}")

        def check(session: Session) -> None:
            self.fence(session, held)

        return check

    def fence(self, session: Session, held: Lease | None = None) -> None:
        """In a commit's transaction: raise LeaseLost unless this worker still owns the partition (under
        the epoch of `held`, when given)."""
        lease = self.lease
        if held is not None and (lease is None or lease.epoch != held.epoch):
            raise LeaseLost(f"partition {self.partition} of site {self.site}: epoch {held.epoch} is over")
        if lease is None or self.state != "owner":
            raise LeaseLost(f"partition {self.partition} of site {self.site}: not owned by {self.owner} "
                            f"({self.state})")
        try:
            self.store.fence(session, lease)
        except LeaseLost as exc:
            self.lose(f"a commit found the lease taken: {exc}")
            raise

    def lose(self, reason: str) -> None:
        with self._lock:
            if self.state != "owner":
                return
            self.state, self.lost_reason = "lost", reason
        log.error("LEASE LOST: worker %s stops processing partition %d of site %s and commits nothing more: %s",
                  self.owner, self.partition, self.site, reason)
        self._stop.set()
        threading.Thread(target=self.on_lost, args=(reason,), name="lease-lost", daemon=True).start()

    def release(self) -> None:
        """Stop renewing; hand the lease back at once when this worker still owns it (a clean stop)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        with self._lock:
            owned, self.state = self.state == "owner", ("released" if self.state == "owner" else self.state)
        if owned and self.lease is not None:
            try:
                self.store.release(self.lease)
            except Exception as exc:  # it expires after the TTL anyway
                log.warning("could not release the lease (%s); it expires in %.0f s", type(exc).__name__,
                            self.ttl_s)

    def advert(self) -> Advert | None:
        """Who owns the partition now and where its HTTP API answers (read from the lease row)."""
        return self.store.advert(self.site, self.partition)

    def status(self) -> dict[str, Any]:
        lease = self.lease
        return {"up": self.state == "owner", "state": self.state, "owner": self.owner,
                "site": self.site, "partition": self.partition, "epoch": lease.epoch if lease else None,
                "renewals": self.renewals, "lost_reason": self.lost_reason}
