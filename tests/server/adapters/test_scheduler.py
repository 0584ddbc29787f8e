"""The APScheduler adapter: jobs persist in the SQL job store across a restart; job bodies work."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import inspect

from server.adapters import scheduler as sched
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.inspections import InspectionRepository
from server.domain.site import Site
from server.services.inspections import InspectionService
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
