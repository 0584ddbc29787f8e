"""Workers that share a site: the lease a process waits for before it runs, and `floorwatch worker`.

On PostgreSQL every `floorwatch server` and `floorwatch worker` process of a site competes for the
site's partition lease (server/adapters/sql/leases.py): one owns it and runs ingest, rules, alarms,
notifications, the scheduler and evacuations; the others wait as standbys and take over within the
lease's TTL when the owner dies (at once when it stops cleanly). `floorwatch worker` is the same
runtime without HTTP, and after losing its lease it goes back to waiting; `floorwatch server` stays up
after a loss so that /api/health can say so (restart it, or let its supervisor do that).

SQLite serves one process, which owns everything without a lease (`make demo`); a worker on SQLite is
refused, as is one without an external broker (each worker would otherwise start a broker of its own).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from server.adapters.sql.database import make_engine, migrate
from server.adapters.sql.leases import LeaseStore, site_hash
from server.runtime import Runtime
from server.services.lease import LeaseKeeper, worker_name
from server.settings import Settings
from server.site_check import load_site

log = logging.getLogger(__name__)


class WorkerRefused(Exception):
    """This process may not run as a worker of the site; the message says why and what to do."""


def uses_leases(settings: Settings) -> bool:
    return settings.sql_url().startswith("postgresql")


def refuse_worker(settings: Settings) -> None:
    """The settings under which several processes cannot share a site."""
    if not uses_leases(settings):
        what = "not PostgreSQL" if settings.database_url else "unset (SQLite in the data folder)"
        raise WorkerRefused(
            f"FLOORWATCH_DATABASE_URL is {what}:"
            " workers share a site through PostgreSQL (postgresql+psycopg://user@host/db); on SQLite run"
            " exactly one `floorwatch server`")
    if settings.mqtt is None:
        raise WorkerRefused("FLOORWATCH_MQTT__HOST is unset: workers share one broker (each would start an"
                            " embedded broker of its own); set FLOORWATCH_MQTT__HOST and its port")


def keeper_for(settings: Settings) -> LeaseKeeper:
    """The lease of the site's partition, its table migrated (one process at a time, see `migrate`)."""
    engine = make_engine(settings.sql_url())
    migrate(engine)
    site = load_site(settings.site_file)
    return LeaseKeeper(LeaseStore(engine), site.id, settings.worker_name or worker_name(),
                       ttl_s=settings.lease_ttl_s, renew_s=settings.lease_renew_s,
                       site_hash=site_hash(settings.site_file))


def run_worker(settings: Settings, stop: threading.Event | None = None) -> int:
    """Wait for the lease, run the site while it is held, wait again after a loss; until SIGTERM/SIGINT."""
    refuse_worker(settings)
    stop = stop or _stop_on_signals()
    keeper = keeper_for(settings)
    while not stop.is_set():
        if keeper.acquire(stop) is None:
            break
        keeper.start()
        runtime = Runtime(settings, lease=keeper)
        try:
            runtime.start()
            while not stop.is_set() and not runtime.lease_lost.wait(0.5):
                pass
        finally:
            runtime.stop()
        if runtime.lease_lost.is_set():
            log.warning("worker %s lost the lease (%s); waiting to own it again", keeper.owner, keeper.lost_reason)
    keeper.store.engine.dispose()
    return 0


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)
    return stop
