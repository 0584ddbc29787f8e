"""A defect found on inspection reaches whoever fixes it (server/domain/inspections/defects.py): a failed
egress-release test, a dark exit sign on the fire patrol and a broken machine-room leak cable are paged
through the notification outbox to facilities (and the safety officer for the egress doors), once per task
and channel, with the inspector's note; so is a failed item of every other check that guards people, each to
its role, while administrative items page nobody. An on-the-spot correction is not paged. The page is queued
with the completion: a crash right after its commit does not lose it. Real SQLite and PostgreSQL, real
webhook receiver."""

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
ADMIN = CompleterView("p-admin", frozenset({"admin"}))


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


def make_floor(sessions: sessionmaker[Session], hook: Hook, tmp_path: Path, *when: int,
               safety: str = "/safety") -> Floor:
    """The test floor at local time `when`; `safety`: the safety officer's channel (path on the receiver)."""
    j = f"json://127.0.0.1:{hook.port}"
    text = site_yaml(0, hook.port).replace("  fallback:", f"  it: ['{j}/it']\n  manager: ['{j}/manager']\n"
                                                          "  fallback:")
    site = make_site(text.replace(f"safety_officer: ['{j}/safety']", f"safety_officer: ['{j}{safety}']"), tmp_path)
    clock = FakeClock(local(site, *when))
    _, svc = wire(sessions, site, clock)
    store = CrashAfterCommit(sessions)
    inspections = InspectionService(store, site, clock, pager=svc)
    inspections.create_due()
    return Floor(inspections, svc, clock, store, {t.schedule_id: t for t in inspections.tasks("due")})


@pytest.fixture
def floor(sessions: sessionmaker[Session], hook: Hook, tmp_path: Path) -> Floor:
    return make_floor(sessions, hook, tmp_path, 2026, 10, 2, 11)


@pytest.fixture
def january(sessions: sessionmaker[Session], hook: Hook, tmp_path: Path) -> Floor:
    """2 January: the yearly, half-yearly, quarterly and monthly checks and drills are all due."""
    return make_floor(sessions, hook, tmp_path, 2026, 1, 2, 11)


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


def test_two_roles_on_one_channel_get_one_page(sessions: sessionmaker[Session], hook: Hook,
                                               tmp_path: Path) -> None:
    """Facilities and the safety officer on the same phone: the egress test's failure (owned by both) and the
    monthly fire check's hazard (manager and safety officer) reach that phone once per task, not once per
    role; the manager still gets the hazard."""
    floor = make_floor(sessions, hook, tmp_path, 2026, 1, 2, 11, safety="/facilities")
    egress, monthly = floor.due["egress_release_quarterly"], floor.due["fire_check_monthly"]
    floor.inspections.complete(egress.id, ADMIN, answers("egress_release_quarterly",
                                                         release_all="door-z2-exit stayed locked"))
    floor.inspections.complete(monthly.id, ADMIN, answers("fire_check_monthly", art26_1="hazard not rectified",
                                                          art26_4="extinguisher empty"))
    floor.deliver()
    pages = [m["message"] for m in hook.at("/facilities")]
    assert len(pages) == 2, pages  # one per task
    assert len([m for m in pages if "door-z2-exit stayed locked" in m]) == 1, pages
    both, = [m for m in pages if "hazard not rectified" in m]
    assert "extinguisher empty" in both, "facilities' item and the safety officer's in the one page"
    assert [m["message"] for m in hook.at("/manager") if "hazard not rectified" in m["message"]], hook.received
    assert hook.at("/safety") == []


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



@pytest.mark.parametrize(("schedule", "item", "paths"), [
    ("fire_check_monthly", "art26_3", {"/facilities", "/safety"}),  # fire-engine access, water sources
    ("fire_check_monthly", "art26_4", {"/facilities"}),  # extinguishers
    ("fire_check_monthly", "art26_1", {"/manager", "/safety"}),  # hazards not rectified
    ("fire_check_monthly", "art26_6", {"/supervisor"}),  # staff fire knowledge
    ("supervisor_electrical", "cord_section", {"/facilities"}),
    ("sensor_tests_monthly", "leak_test", {"/facilities", "/safety"}),
    ("sensor_tests_monthly", "relay_toggle", {"/facilities", "/safety"}),
    ("detector_cleaning", "cleaned", {"/facilities", "/safety"}),
    ("annual_fire_system_test", "certified_test", {"/facilities", "/safety"}),
    ("evacuation_drill", "egress_released", {"/facilities", "/safety"}),
    ("evacuation_drill", "headcount", {"/supervisor", "/safety"}),
    ("evacuation_drill", "prompt_119", {"/it", "/safety"}),
    ("comprehensive_drill", "drill_done", {"/manager"}),
    ("access_review_monthly", "leaver_badges", {"/it"}),
    ("access_review_monthly", "visitor_records", {"/supervisor"}),
    ("access_review_quarterly", "badge_privileges", {"/it"}),
    ("mr_walkthrough", "leak_cable", {"/facilities"}),
])
def test_every_check_that_guards_people_pages_its_failures(january: Floor, hook: Hook, schedule: str, item: str,
                                                          paths: set[str]) -> None:
    task = january.due[schedule]
    january.inspections.complete(task.id, ADMIN, answers(schedule, **{item: f"{item} found failing"}))
    january.deliver()
    reached = {path for path, body in hook.received if f"{item} found failing" in body["message"]}
    assert reached == paths, hook.received
    assert len(hook.received) == len(paths)  # one message per recipient


@pytest.mark.parametrize(("schedule", "item"), [
    ("evacuation_drill", "lessons"), ("evacuation_drill", "evacuation_time"), ("comprehensive_drill", "lessons"),
    ("annual_fire_system_test", "plan_review"), ("it_backup_check", "backup_ok"),
])
def test_administrative_failures_are_stored_and_page_nobody(january: Floor, hook: Hook, schedule: str,
                                                            item: str) -> None:
    task = january.due[schedule]
    january.inspections.complete(task.id, ADMIN, answers(schedule, **{item: "not written up"}))
    january.deliver()
    assert hook.received == []
    assert [i.outcome for i in january.inspections.get(task.id).items if i.id == item] == ["fail"]
