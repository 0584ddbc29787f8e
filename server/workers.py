"""Workers that share a site: the lease a process waits for before it runs, and `floorwatch worker`.

On PostgreSQL every `floorwatch server` and `floorwatch worker` process of a site competes for the
site's partition lease (server/adapters/sql/leases.py): one owns it and runs ingest, rules, alarms,
notifications, the scheduler and evacuations; the others wait as standbys and take over within the
lease's TTL when the owner dies (at once when it stops cleanly). `floorwatch worker` is the same
runtime without HTTP, and after losing its lease it goes back to waiting; `floorwatch server` stays up
after a loss so that /api/health can say so (restart it, or let its supervisor do that).

SQLite serves one process, which owns everything without a lease (`make demo`); a worker on SQLite is
refused, as is one without an external broker (each worker would otherwise start a broker of its own).
A worker has no HTTP: it rewrites `<data dir>/worker-status.json` (its lease state) every 5 s instead.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO

from sqlalchemy.exc import OperationalError

from server.adapters.sql.database import make_engine, migrate, sqlite_file
from server.adapters.sql.leases import LeaseStore, site_hash
from server.runtime import Runtime
from server.services.lease import LeaseKeeper, worker_name
from server.settings import Settings
from server.site_check import load_site

log = logging.getLogger(__name__)


class WorkerRefused(Exception):
    """This process may not run as a worker of the site; the message says why and what to do."""


def uses_leases(settings: Settings) -> bool:
    """Whether this server competes for the site's lease (FLOORWATCH_FAILOVER on PostgreSQL)."""
    return settings.failover and settings.sql_url().startswith("postgresql")


def refuse_worker(settings: Settings) -> None:
    """The settings under which several processes cannot share a site."""
    if not settings.sql_url().startswith("postgresql"):
        what = "not PostgreSQL" if settings.database_url else "unset (SQLite in the data folder)"
        raise WorkerRefused(
            f"FLOORWATCH_DATABASE_URL is {what}:"
            " workers share a site through PostgreSQL (postgresql+psycopg://user@host/db); on SQLite run"
            " exactly one `floorwatch server`")
    if settings.mqtt is None:
        raise WorkerRefused("FLOORWATCH_MQTT__HOST is unset: workers share one broker (each would start an"
                            " embedded broker of its own); set FLOORWATCH_MQTT__HOST and its port")


def hold_sqlite(settings: Settings) -> IO[str] | None:
    """On SQLite, the one process of the site: an exclusive lock beside the database file, held while the
    returned file is open (the kernel drops it when the process dies, however it dies)."""
    path = sqlite_file(settings.sql_url())
    if path is None:
        return None
    lock_path = Path(f"{path.resolve()}.lock")  # one lock whether the URL names the file relatively or not
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise WorkerRefused(
            f"another Floorwatch server uses the SQLite database {path} (FLOORWATCH_DATA_DIR / "
            "FLOORWATCH_DATABASE_URL); SQLite serves one process: stop that one, give this one another data "
            "folder, or use PostgreSQL to run several workers of a site") from None
    return handle


class DatabaseUnreachable(Exception):
    """The database did not answer at start-up; the message names it (without its password) and what to do."""


def migrate_database(settings: Settings) -> None:
    """Bring the database to the latest schema (one process at a time, see `migrate`); MigrationBlocked when
    a migration could not take its lock, DatabaseUnreachable when the database does not answer."""
    engine = make_engine(settings.sql_url())
    try:
        migrate(engine)
    except OperationalError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise DatabaseUnreachable(
            f"cannot reach the database {engine.url.render_as_string(hide_password=True)} ({first}); start it, or "
            "fix FLOORWATCH_DATABASE_URL") from None
    finally:
        engine.dispose()


def keeper_for(settings: Settings, http_url: str | None = None) -> LeaseKeeper:
    """The lease of the site's partition, on a database `migrate_database` has brought up to date.
    `http_url`: where this worker's API answers once it owns the site (None: no HTTP), for standbys."""
    engine = make_engine(settings.sql_url())
    site = load_site(settings.site_file)
    return LeaseKeeper(LeaseStore(engine), site.id, settings.worker_name or worker_name(),
                       ttl_s=settings.lease_ttl_s, renew_s=settings.lease_renew_s,
                       site_hash=site_hash(settings.site_file), http_url=http_url)


def run_worker(settings: Settings, stop: threading.Event | None = None) -> int:
    """Wait for the lease, run the site while it is held, wait again after a loss; until SIGTERM/SIGINT."""
    refuse_worker(settings)
    settings = settings.model_copy(update={"failover": True})
    if settings.advertise_url:
        log.warning("FLOORWATCH_ADVERTISE_URL=%s is ignored: `floorwatch worker` serves no HTTP, so it advertises "
                    "nothing and standbys answer 503 while it owns the site (use `floorwatch server` for the API)",
                    settings.advertise_url)
    stop = stop or _stop_on_signals()
    migrate_database(settings)
    keeper = keeper_for(settings)
    threading.Thread(target=_report, args=(keeper, settings.data_dir / STATUS_FILE, stop), name="worker-status",
                     daemon=True).start()
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
    if isinstance(keeper.store, LeaseStore):  # the SQL engine keeper_for made for it
        keeper.store.engine.dispose()
    return 0


STATUS_FILE = "worker-status.json"
"""What a worker without HTTP says about itself (its lease state), rewritten every STATUS_EVERY_S: a
container's healthcheck reads how old it is (a hung worker stops rewriting it)."""
STATUS_EVERY_S = 5.0


def _report(keeper: LeaseKeeper, path: Path, stop: threading.Event) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        status = {**keeper.status(), "at": datetime.now(UTC).isoformat()}
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(status) + "\n", encoding="utf-8")
        temporary.replace(path)
        if stop.wait(STATUS_EVERY_S):
            return


RESTART_AFTER_S = 1.0
"""`--workers N`: how long a slot whose server exited waits before it is started again."""


def run_servers(settings: Settings, count: int) -> int:
    """`floorwatch server --workers N`: N server processes on this machine, worker i on port PORT+i (each
    its own explicit port), supervised: one that exits is started again, as a standby if another took the
    site over meanwhile; one that refuses to start (exit 2) stops them all. Until SIGTERM/SIGINT."""
    try:
        refuse_worker(settings)
    except WorkerRefused as exc:
        raise WorkerRefused(f"--workers {count}: {exc}") from None
    if settings.advertise_url:
        raise WorkerRefused(f"--workers {count}: FLOORWATCH_ADVERTISE_URL names one address, and each of the "
                            f"{count} servers advertises its own (http://<host>:<its port>); unset it")
    if settings.http_port == 0 or settings.http_port + count - 1 > 65535:
        raise WorkerRefused(f"--workers {count}: the workers listen on FLOORWATCH_HTTP_PORT..+{count - 1}; give a "
                            f"fixed port with room above it (now {settings.http_port})")
    stop = _stop_on_signals()
    children: dict[int, subprocess.Popen[bytes]] = {}

    restarted: set[int] = set()

    def spawn(slot: int) -> None:
        env = {**os.environ, "FLOORWATCH_HTTP_PORT": str(settings.http_port + slot), "FLOORWATCH_FAILOVER": "1"}
        if settings.worker_name:
            env["FLOORWATCH_WORKER_NAME"] = f"{settings.worker_name}-{slot}"
        children[slot] = subprocess.Popen([sys.executable, "-m", "server.cli", "server"], env=env)

    for slot in range(count):
        spawn(slot)
    code = 0
    while not stop.wait(RESTART_AFTER_S):
        for slot, child in list(children.items()):
            returned = child.poll()
            if returned is None:
                continue
            if returned == 2 and slot not in restarted:
                log.error("worker %d (port %d) refused to start (see above); stopping the others", slot,
                          settings.http_port + slot)
                code = 2
                stop.set()
                break
            # a refusal after a restart (the site file changed on disk while another worker owns the
            # site with the old one) must not stop the worker that runs the site: try again later
            log.warning("worker %d (port %d) exited with %d; starting it again", slot,
                        settings.http_port + slot, returned)
            restarted.add(slot)
            spawn(slot)
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    for child in children.values():
        try:
            child.wait(30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
    return code


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)
    return stop
