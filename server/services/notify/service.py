"""The notification service: escalation, digest, silences and the outbox, run by one worker thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from gateway.contract import Severity
from server.domain import alarms as domain
from server.domain import notify as routing
from server.domain.leases import LeaseLost
from server.domain.site import Site
from server.services import delivery
from server.services.notify.digest import Digest
from server.services.notify.escalation import Escalation
from server.services.notify.outbox import ATTEMPT_TIMEOUT_S, DELIVERY_THREADS, RENEW_AFTER
from server.services.notify.push import Commit, NotifyResult
from server.services.ports import NotifyStore, Sender, SilenceStore

log = logging.getLogger(__name__)


class NotificationService(Escalation, Digest):
    def __init__(self, store: NotifyStore, site: Site, clock: Callable[[], datetime], sender: Sender,
                 *, silences: SilenceStore, base_url: str = "http://localhost:8000", worker_id: str = "worker",
                 open_alarms: Callable[[], Sequence[domain.Alarm]] = list,
                 alarm_by_id: Callable[[int], domain.Alarm | None] = lambda _id: None,
                 on_result: NotifyResult | None = None,
                 is_drill: Callable[[domain.Alarm], bool] = lambda _a: False,
                 poll_s: float = 1.0, before_send: Callable[[int], None] | None = None,
                 notes: Callable[[int], tuple[str, str] | None] = lambda _id: None,
                 commit: Commit | None = None, attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
                 threads: int = DELIVERY_THREADS, renew_after: timedelta = RENEW_AFTER,
                 sole_sender: bool = False) -> None:
        self.store = store
        self.sole_sender = sole_sender
        """This worker holds the site's lease: no other live worker sends its pushes, so at the start every
        row still `sending` (claimed by a worker that died or lost the lease) is re-queued at once."""
        self.site = site
        self.clock = clock
        self.sender = sender
        self.silence_store = silences
        self.base_url = base_url
        self.worker_id = worker_id
        self.open_alarms = open_alarms
        self.alarm_by_id = alarm_by_id
        self.on_result = on_result
        self.is_drill = is_drill
        self.poll_s = poll_s
        self.before_send = before_send
        """Test hook: called with a row id after its claim and before its send."""
        self.notes = notes
        """A line for every page of an alarm (the delayed cut's time), by alarm id."""
        self.commit = commit
        """Commits findings as the AlarmService does (the warning -> minor escalation); None: no promotion."""
        self._promote: list[domain.Alarm] = []
        self._digest_done: date | None = None
        self._urls: dict[str, str] = {}
        for key in site.config.contacts:
            for url in site.contacts_of(key):
                self._urls[routing.url_hash(url)] = url
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.attempt_timeout_s = attempt_timeout_s
        self.renew_after = renew_after
        self.lanes = delivery.Lanes(threads, f"deliver-{worker_id}")
        self._inflight: set[int] = set()
        """Rows handed to a lane and not yet done: never claimed again by this worker meanwhile."""
        self._inflight_lock = threading.Lock()
        self._result_lock = threading.Lock()
        """Held while an attempt's result is written and while rows are withdrawn: SQLite reads a row
        outside the write's transaction, so without it a failed send could put a withdrawn row back in the
        queue (PostgreSQL: the row lock of that read does the same between processes)."""

    def start(self) -> None:
        self._stop.clear()
        self.release_own_leases()
        self._thread = threading.Thread(target=self._run, name=f"notify-{self.worker_id}", daemon=True)
        self._thread.start()
        warm = getattr(self.sender, "warm", None)
        if callable(warm):  # off the worker, so the timers start at once; a send meanwhile waits for it
            threading.Thread(target=warm, name=f"notify-warm-{self.worker_id}", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
        # a row still in a lane stays `sending`: release_own_leases re-queues it at the next start
        self.lanes.stop(5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = self.clock()
                self.tick(now)
                self.dispatch(now)
            except LeaseLost:
                log.warning("notification worker stops: another worker owns the site and sends its pushes")
                return
            except Exception:
                log.exception("notification worker pass failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def tick(self, now: datetime) -> int:
        """Run every due escalation step and repeat; returns how many pushes were queued."""
        queued = 0
        with self._lock, self.store.transaction() as tx:
            self._promote = []
            for row in tx.due_escalations(now, 200):
                queued += self._advance(tx, row, now)
            promote, self._promote = self._promote, []
        # outside the lock and the transaction: the commit calls back into on_alarm
        for alarm in promote:
            self._escalate(alarm, Severity.MINOR, now)
        queued += self.send_digest(now)
        if queued:
            self.wake()
        return queued
