"""Periodic inspection jobs on APScheduler 3.11, with jobs kept in the SQL database.

Two jobs, both idempotent, so the scheduler only has to call them "often enough":

* ``inspections.plan`` (at start, then every `plan_every`): `InspectionService.create_due`, which itself catches up
  runs missed while the server was down (once, within its grace period; see the domain's `catch_up`),
  then `record_counts`, the month's counts for the boards.
* ``inspections.sweep`` (every `sweep_every`): `InspectionService.overdue`, handed to `on_findings`.

Jobs live in ``apscheduler_jobs`` on the same database (SQLAlchemyJobStore), so they survive a restart.
`misfire_grace_time` and ``coalesce=True`` make ticks missed while the process was stopped run once,
not once per missed tick. Job callables must be importable by reference, so they look their service
up in a registry by name (`register`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Protocol

from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from server.domain.inspections import OverdueFinding

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"
ONCE = "once"
"""The in-memory job store of the plan run at start (nothing to keep across a restart)."""


class PlanReport(Protocol):
    @property
    def created(self) -> int: ...

    @property
    def missed(self) -> int: ...


class InspectionJobs(Protocol):
    """What the jobs call (server/services/inspections.py InspectionService)."""

    def create_due(self) -> PlanReport: ...

    def record_counts(self) -> int: ...

    def overdue(self) -> list[OverdueFinding]: ...


STOP_WAIT = timedelta(seconds=5)
"""How long a stop waits for a job that is running (a plan stuck on a dead database must not hang it)."""

_SERVICES: dict[str, InspectionJobs] = {}
_LISTENERS: dict[str, Callable[[Sequence[OverdueFinding]], None]] = {}


class _Gate:
    """The jobs of one scheduler name: a stop waits for those running and turns away those not yet begun
    (APScheduler's pool still runs what was queued before its shutdown)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._closed = False

    @contextmanager
    def enter(self) -> Iterator[bool]:
        """True: run the job; False: the scheduler is stopping."""
        with self._changed:
            if self._closed:
                yield False
                return
            self._running += 1
        try:
            yield True
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    def close(self, timeout: float) -> bool:
        """Let no job begin, and wait up to `timeout` s for the running ones; False if one still runs."""
        with self._changed:
            self._closed = True
            return self._changed.wait_for(lambda: self._running == 0, timeout)


_GATES: dict[str, _Gate] = {}


@contextmanager
def _job(name: str) -> Iterator[bool]:
    gate = _GATES.get(name)
    if gate is None:  # called outside a scheduler (a test, a manual run)
        yield True
        return
    with gate.enter() as go:
        yield go


def register(name: str, service: InspectionJobs,
             on_findings: Callable[[Sequence[OverdueFinding]], None] | None = None) -> None:
    """Make `service` reachable from persisted jobs under `name`."""
    _SERVICES[name] = service
    if on_findings is not None:
        _LISTENERS[name] = on_findings


def unregister(name: str) -> None:
    _SERVICES.pop(name, None)
    _LISTENERS.pop(name, None)


def run_plan(name: str) -> int:
    """Job body: create due tasks. Returns how many were created (0 when nothing is registered)."""
    service = _SERVICES.get(name)
    if service is None:
        log.warning("inspections.plan: no service registered as %r", name)
        return 0
    with _job(name) as go:
        if not go:
            return 0
        report = service.create_due()
        if report.created or report.missed:
            log.info("inspections: %d task(s) created, %d run(s) recorded as missed", report.created, report.missed)
        service.record_counts()
        return report.created


def run_sweep(name: str) -> list[OverdueFinding]:
    """Job body: evaluate §2.9 overdue rules and pass the findings on."""
    service = _SERVICES.get(name)
    if service is None:
        return []
    with _job(name) as go:
        if not go:
            return []
        findings = service.overdue()
        listener = _LISTENERS.get(name)
        if listener is not None and findings:
            listener(findings)
        return findings


class InspectionScheduler:
    def __init__(self, *, url: str | None = None, engine: Engine | None = None, name: str = "default",
                 plan_every: timedelta = timedelta(minutes=5), sweep_every: timedelta = timedelta(minutes=1),
                 misfire_grace: timedelta = timedelta(hours=2)) -> None:
        if (url is None) == (engine is None):
            raise ValueError("give exactly one of url or engine")
        self.name = name
        self.plan_every = plan_every
        self.sweep_every = sweep_every
        store = SQLAlchemyJobStore(url=url, engine=engine, tablename=JOBS_TABLE)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": store, ONCE: MemoryJobStore()},
            job_defaults={"coalesce": True, "misfire_grace_time": int(misfire_grace.total_seconds()),
                          "max_instances": 1},
            timezone="UTC",
        )

    @property
    def job_ids(self) -> tuple[str, str]:
        return (f"inspections.plan.{self.name}", f"inspections.sweep.{self.name}")

    def start(self, paused: bool = False) -> None:
        """Start, plan once at once (unless paused), and make sure both jobs exist (kept as they are if the
        store already has them). Without the first plan, a new server would hold no task until the
        interval's first tick, and its boards no inspection counts."""
        _GATES[self.name] = _Gate()
        self.scheduler.start(paused=paused)
        plan_id, sweep_id = self.job_ids
        if not paused:
            self.scheduler.add_job(run_plan, args=[self.name], id=f"{plan_id}.start", jobstore=ONCE)
        if self.scheduler.get_job(plan_id) is None:
            self.scheduler.add_job(run_plan, "interval", args=[self.name], id=plan_id,
                                   seconds=int(self.plan_every.total_seconds()))
        if self.scheduler.get_job(sweep_id) is None:
            self.scheduler.add_job(run_sweep, "interval", args=[self.name], id=sweep_id,
                                   seconds=int(self.sweep_every.total_seconds()))

    def jobs(self) -> list[Job]:
        """The persisted jobs."""
        jobs: list[Job] = self.scheduler.get_jobs(jobstore="default")
        return jobs

    def shutdown(self, wait: timedelta = STOP_WAIT) -> None:
        """Stop scheduling, then wait up to `wait` for a job that is running, so that nothing of ours writes
        to the database once this returns (a caller may close or drop it next)."""
        if not self.scheduler.running:
            return
        self.scheduler.shutdown(wait=False)
        gate = _GATES.get(self.name)
        if gate is not None and not gate.close(wait.total_seconds()):
            log.warning("inspections: a %s job still runs after %g s; stopping without it",
                        self.name, wait.total_seconds())
