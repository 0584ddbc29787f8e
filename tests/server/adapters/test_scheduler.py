"""The APScheduler adapter: jobs persist in the SQL job store across a restart; job bodies work."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from server.adapters import scheduler as sched
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.inspections import InspectionRepository
from server.domain.inspections import OverdueFinding
from server.domain.site import Site
from server.services.inspections import InspectionService, PlanReport
from tests.support.inspections import FakeClock, local
from tests.support.wait import wait_until


def test_job_store_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fw.sqlite'}"
    first = sched.InspectionScheduler(url=url, name="t1", plan_every=timedelta(minutes=5))
    first.start(paused=True)  # paused: nothing runs on the wall clock during the test
    before = {job.id: job.next_run_time for job in first.jobs()}
    assert set(before) == set(first.job_ids)
    first.shutdown()

    second = sched.InspectionScheduler(url=url, name="t1", plan_every=timedelta(minutes=5))
    second.start(paused=True)
    after = {job.id: job.next_run_time for job in second.jobs()}
    job = next(j for j in second.jobs() if j.id.startswith("inspections.plan"))
    second.shutdown()
    assert after == before  # the same jobs, not re-added, with their schedule kept
    assert job.coalesce is True and job.misfire_grace_time == 2 * 3600
    assert sched.JOBS_TABLE in inspect(make_engine(url)).get_table_names()


def test_job_bodies_call_the_registered_service(tmp_path: Path, site: Site) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fw.sqlite'}")
    migrate(engine)
    clock = FakeClock(local(site, 2026, 11, 2, 20, 5))
    service = InspectionService(InspectionRepository(session_factory(engine)), site, clock)
    seen: list[int] = []
    sched.register("t2", service, lambda findings: seen.append(len(findings)))
    try:
        assert sched.run_plan("t2") > 0
        assert sched.run_plan("t2") == 0  # idempotent
        clock.advance(timedelta(hours=1))
        assert sched.run_sweep("t2") and seen
        assert sched.run_plan("nobody") == 0
    finally:
        sched.unregister("t2")
        engine.dispose()


def test_a_started_scheduler_plans_at_once(tmp_path: Path, site: Site) -> None:
    """A new server holds its due tasks from the start, not from the plan interval's first tick."""
    engine = make_engine(f"sqlite:///{tmp_path / 'fw.sqlite'}")
    migrate(engine)
    service = InspectionService(InspectionRepository(session_factory(engine)), site,
                                FakeClock(local(site, 2026, 11, 2, 14)))
    sched.register("t3", service)
    scheduler = sched.InspectionScheduler(engine=engine, name="t3", plan_every=timedelta(hours=1))
    try:
        scheduler.start()
        assert wait_until(lambda: bool(service.tasks("due")), timeout=10), "nothing planned at start"
        assert {job.id for job in scheduler.jobs()} == set(scheduler.job_ids)
    finally:
        scheduler.shutdown()
        sched.unregister("t3")
        engine.dispose()


class HeldPlan:
    """The real service, whose plan waits for the test's word before it writes (a plan on a slow database)."""

    def __init__(self, service: InspectionService) -> None:
        self.service = service
        self.entered = threading.Event()
        self.release = threading.Event()
        self.order: list[str] = []

    def create_due(self) -> PlanReport:
        self.entered.set()
        self.release.wait(60)
        return self.service.create_due()

    def record_counts(self) -> int:
        n = self.service.record_counts()
        self.order.append("plan finished")
        return n

    def overdue(self) -> list[OverdueFinding]:
        return self.service.overdue()


def held_scheduler(url: str, site: Site, name: str) -> tuple[sched.InspectionScheduler, HeldPlan, Engine]:
    engine = make_engine(url)
    migrate(engine)
    held = HeldPlan(InspectionService(InspectionRepository(session_factory(engine)), site,
                                      FakeClock(local(site, 2026, 11, 2, 14))))
    sched.register(name, held)
    return sched.InspectionScheduler(engine=engine, name=name, plan_every=timedelta(hours=1)), held, engine


def test_a_stop_returns_after_the_running_plan_finished(postgres_schema: str, site: Site) -> None:
    """Whoever stops the server may drop or close the database next: no plan of ours writes to it after."""
    scheduler, held, engine = held_scheduler(postgres_schema, site, "t4")
    try:
        scheduler.start()
        assert held.entered.wait(10), "the plan at start never ran"

        def stop() -> None:
            scheduler.shutdown()
            held.order.append("stopped")

        stopping = threading.Thread(target=stop)
        stopping.start()
        assert wait_until(lambda: not scheduler.scheduler.running), "the scheduler did not begin to stop"
        held.release.set()
        stopping.join(30)
        assert held.order == ["plan finished", "stopped"]
        assert held.service.tasks("due")  # the plan wrote its tasks, before the stop returned
    finally:
        held.release.set()
        scheduler.shutdown()
        sched.unregister("t4")
        engine.dispose()


def test_a_plan_stuck_on_the_database_does_not_hang_a_stop(postgres_schema: str, site: Site,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    scheduler, held, engine = held_scheduler(postgres_schema, site, "t5")
    try:
        scheduler.start()
        assert held.entered.wait(10), "the plan at start never ran"
        with caplog.at_level(logging.WARNING, logger=sched.__name__):
            scheduler.shutdown(wait=timedelta(milliseconds=200))  # the plan is still held: the stop goes on
        assert [r.getMessage() for r in caplog.records] == [
            "inspections: a t5 job still runs after 0.2 s; stopping without it"]
        assert held.order == []
    finally:
        held.release.set()
        sched.unregister("t5")
        wait_until(lambda: held.order)  # let the released plan end before the schema is dropped
        engine.dispose()
