"""A defect found on inspection reaches whoever fixes it (server/domain/inspections/defects.py): a failed
egress-release test, a dark exit sign on the fire patrol and a broken machine-room leak cable are paged
through the notification outbox to facilities (and the safety officer for the egress doors), once per task
and channel, with the inspector's note. An on-the-spot correction is not paged. Real SQLite and PostgreSQL,
real webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.inspections import InspectionRepository, InspectionTransaction
from server.domain.inspections import CATALOG, CompleterView
from server.services.inspections import InspectionService, TaskView
from server.services.notify import NotificationService
from tests.server.services.conftest import FakeClock, Hook, make_site, site_yaml
from tests.server.services.helpers import wire
from tests.support.inspections import local

SAFE = CompleterView("p-safe", frozenset({"safety_officer"}))
MR = CompleterView("p-mr", frozenset({"mr_duty", "facility_manager"}))


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


class Crash(Exception):
    """The process dying: nothing after the point it is raised at runs."""


class CrashAfterCommit(InspectionRepository):
    """Dies right after the next transaction committed, once armed."""

    armed = False

    @contextmanager
    def transaction(self) -> Iterator[InspectionTransaction]:
        with super().transaction() as tx:
            yield tx
        if self.armed:
            self.armed = False
            raise Crash("killed after the commit")


def answers(schedule: str, **failed: str) -> dict[str, tuple[str, str]]:
    return {i.id: ("fail", failed[i.id]) if i.id in failed else ("pass", "") for i in CATALOG[schedule].items}


@dataclass
class Floor:
    inspections: InspectionService
    notify: NotificationService
    clock: FakeClock
    store: CrashAfterCommit
    due: dict[str, TaskView]
    """Today's task of each schedule (2 October: the quarterly egress test is due too)."""

    def deliver(self) -> None:
        while self.notify.deliver(self.clock()):
            pass


@pytest.fixture
def floor(sessions: sessionmaker[Session], hook: Hook, tmp_path: Path) -> Floor:
    site = make_site(site_yaml(0, hook.port), tmp_path)
    clock = FakeClock(local(site, 2026, 10, 2, 11))
    _, svc = wire(sessions, site, clock)
    store = CrashAfterCommit(sessions)
    inspections = InspectionService(store, site, clock, pager=svc)
    inspections.create_due()
    return Floor(inspections, svc, clock, store, {t.schedule_id: t for t in inspections.tasks("due")})


def test_failed_items_are_paged_to_whoever_fixes_them(floor: Floor, hook: Hook) -> None:
    inspections, due = floor.inspections, floor.due

    inspections.complete(due["fire_patrol"].id, SAFE, answers(
        "fire_patrol", signs_lighting="exit sign over door-z1-exit dark", exits_clear="boxes moved away"))
    inspections.complete(due["egress_release_quarterly"].id, MR, answers(
        "egress_release_quarterly", release_all="door-z2-exit stayed locked"))
    inspections.complete(due["mr_walkthrough"].id, MR, answers("mr_walkthrough", leak_cable="cut under the rack"))
    floor.deliver()

    facilities = sorted(m["message"] for m in hook.at("/facilities"))
    assert len(facilities) == 3, facilities  # one per task: each lists that task's defects
    patrol, = [m for m in facilities if "exit sign over door-z1-exit dark" in m]
    assert "疏散指示标志、应急照明完好 / Exit signs and emergency lights working" in patrol
    assert "boxes moved away" not in patrol  # corrected on the spot: a hazard on record, nobody to page
    assert any("door-z2-exit stayed locked" in m for m in facilities)
    assert any("Leak cable intact — cut under the rack" in m for m in facilities)
    safety = [m["message"] for m in hook.at("/safety")]
    assert len(safety) == 1 and "door-z2-exit stayed locked" in safety[0], safety
    titles = {m["title"] for m in hook.at("/facilities")}
    assert "[隐患/defect] 防火巡查 Daily fire patrol: 1 项不合格 failed" in titles, titles
    assert {r["status"] for r in floor.notify.log_of(ref=f"inspection:{due['fire_patrol'].id}")} == {"sent"}


def test_a_passed_inspection_pages_nobody(floor: Floor, hook: Hook) -> None:
    floor.inspections.complete(floor.due["fire_patrol"].id, SAFE, answers("fire_patrol"))
    floor.deliver()
    assert hook.received == []


def test_a_crash_right_after_the_completion_still_pages_the_defect(floor: Floor, hook: Hook) -> None:
    task = floor.due["egress_release_quarterly"]
    floor.store.armed = True
    with pytest.raises(Crash):
        floor.inspections.complete(task.id, MR, answers("egress_release_quarterly",
                                                        release_all="door-z2-exit stayed locked"))
    assert floor.inspections.get(task.id).status == "done"  # the failed item is on record...
    floor.deliver()  # ...and its page was queued with it: the outbox of the restarted server sends it
    assert [m["message"] for m in hook.at("/facilities") if "door-z2-exit stayed locked" in m["message"]], \
        hook.received
