"""The inspection service on real databases: SQLite and PostgreSQL, restarts, completion, CSV."""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from server.adapters.sql.database import session_factory
from server.adapters.sql.inspection_models import (
    InspectionHazardRow,
    InspectionPhotoRow,
    InspectionResultRow,
    InspectionTaskRow,
)
from server.adapters.sql.inspections import InspectionRepository
from server.domain import inspections as insp
from server.domain.inspections import CATALOG, CompleterView, InspectionError
from server.domain.site import Site
from server.services.inspections import CSV_HEADER, HistoryQuery, InspectionService
from tests.support.inspections import FakeClock, local

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


def _count(engine: Engine, table: type) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def _service(engine: Engine, site: Site, clock: FakeClock) -> InspectionService:
    return InspectionService(InspectionRepository(session_factory(engine)), site, clock, grace=timedelta(hours=2))


GRACE = timedelta(hours=2)


def first_plan(site: Site, schedules: list[insp.Schedule], now: datetime) -> list[insp.TaskSpec]:
    """What a new server's first plan creates: per schedule, the run whose deadline is still ahead."""
    return [t for s in schedules
            for t in insp.first_catch_up(insp.plan(site, [s], now - insp.first_look_back(s, GRACE), now), now,
                                         GRACE).create]


def test_a_week_with_a_restart_in_the_middle_creates_no_duplicates(engine: Engine, site: Site) -> None:
    start = local(site, 2026, 11, 2, 0, 30)
    clock = FakeClock(start)
    service = _service(engine, site, clock)
    service.create_due()
    for step in range(1, 7 * 8 + 1):
        clock.advance(timedelta(hours=3))  # every run is planned ≤ 1.5 h late (grace 2 h): none missed
        if step == 27:
            service = _service(engine, site, clock)  # restart: a new instance on the same database
            assert service.create_due().created >= 0
        service.create_due()
        assert service.create_due().created == 0  # a double run is harmless
    expected = first_plan(site, service.schedules, start) + insp.plan(site, service.schedules, start, clock.now)
    with session_factory(engine)() as session:
        rows = session.execute(select(InspectionTaskRow.schedule_id, InspectionTaskRow.subject,
                                      InspectionTaskRow.run_at, InspectionTaskRow.status)).all()
    assert len(rows) == len(expected)
    assert len({(r[0], r[1], r[2]) for r in rows}) == len(rows)
    assert Counter(r[0] for r in rows) == Counter(t.schedule_id for t in expected)
    assert {r[3] for r in rows} == {"open"}


def test_a_server_started_mid_day_holds_todays_checks(engine: Engine, site: Site) -> None:
    """Maintenance opening a new server at 14:00 sees today's daily checks, this week's and this month's;
    nothing is missed or overdue yet."""
    now = local(site, 2026, 11, 4, 14)  # a Wednesday
    service = _service(engine, site, FakeClock(now))
    report = service.create_due()
    due = {(t.schedule_id, t.subject): t.run_at for t in service.tasks("due")}
    assert due[("fire_patrol", "site")] == local(site, 2026, 11, 4)
    assert due[("mr_walkthrough", "mr")] == local(site, 2026, 11, 4, 9)
    assert due[("it_backup_check", "site")] == local(site, 2026, 11, 4, 9)
    assert due[("supervisor_electrical", "site")] == local(site, 2026, 11, 2, 9)  # Monday's, due until Monday
    assert due[("fire_check_monthly", "site")] == local(site, 2026, 11, 1)
    assert ("access_review_quarterly", "site") not in due  # 1 Oct's: its 31 days are over
    assert report.missed == 0 and service.tasks("missed") == [] and service.tasks("overdue") == []
    assert report.created == len(due)


def test_the_scheduler_and_the_api_planning_at_once_create_each_task_once(engine: Engine, site: Site) -> None:
    """create_due runs from the scheduler's job and from GET /api/inspections; two at once, in this
    process and in a second server on the same database, raise nothing and duplicate nothing."""
    start = local(site, 2026, 11, 2, 8, 0)
    clock = FakeClock(start)
    here, other = _service(engine, site, clock), _service(engine, site, clock)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def plan(service: InspectionService) -> None:
        barrier.wait()
        try:
            service.create_due()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=plan, args=(s,)) for s in (here, here, other, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    expected = first_plan(site, here.schedules, start)
    with session_factory(engine)() as session:
        rows = session.execute(select(InspectionTaskRow.schedule_id, InspectionTaskRow.subject,
                                      InspectionTaskRow.run_at)).all()
    assert len(rows) == len(set(rows)) == len(expected)


def test_downtime_is_caught_up_once(sqlite_engine: Engine, site: Site) -> None:
    clock = FakeClock(local(site, 2026, 11, 2, 0, 30))
    _service(sqlite_engine, site, clock).create_due()
    clock.advance(timedelta(days=3))  # the server was down for three days
    service = _service(sqlite_engine, site, clock)
    report = service.create_due()
    with session_factory(sqlite_engine)() as session:
        patrols = session.execute(select(InspectionTaskRow.status).where(
            InspectionTaskRow.schedule_id == "fire_patrol").order_by(InspectionTaskRow.run_at)).scalars().all()
    # the Nov 2 patrol was created before the outage; Nov 3 and 4 were missed; Nov 5 is created once
    assert patrols == ["open", "missed", "missed", "open"]
    assert report.missed > 0
    assert service.create_due().created == 0
    # maintenance reviewing misses reads the latest first: a limit cuts the oldest, never last night's
    missed = service.tasks("missed", limit=5000)
    assert len(missed) > 1
    latest = max(t.due_at for t in missed)
    assert [t.due_at for t in service.tasks("missed", limit=1)] == [latest]
    assert [t.due_at for t in missed] == sorted((t.due_at for t in missed), reverse=True)


def _eos_task(service: InspectionService, site: Site, clock: FakeClock) -> int:
    clock.now = local(site, 2026, 11, 2, 20, 5)
    service.create_due()
    (task,) = [t for t in service.tasks("due") if t.schedule_id == "eos_self_check" and t.assignee == "p-wang"]
    return task.id


WANG = CompleterView("p-wang", frozenset({"operator"}))


def _all_pass() -> dict[str, tuple[str, str]]:
    return {i.id: ("pass", "") for i in CATALOG["eos_self_check"].items}


def test_complete_then_history_csv_and_compliance(engine: Engine, site: Site) -> None:
    clock = FakeClock(local(site, 2026, 11, 2, 19))
    service = _service(engine, site, clock)
    task_id = _eos_task(service, site, clock)
    photo = service.add_photo(task_id, WANG, PNG, item_id="no_smoking_flame")
    assert service.photo(task_id, photo) == ("image/png", PNG)
    results = _all_pass() | {"no_smoking_flame": ("fail", ""), "cords_intact": ("fail", "线破损,已报修")}
    done = service.complete(task_id, WANG, results, note="交班")
    assert done.on_time and done.hazards == ("no_smoking_flame",)
    view = service.get(task_id)
    assert view.status == "done" and view.completed_by == "p-wang" and view.photos == (photo,)
    assert {i.id: i.outcome for i in view.items}["cords_intact"] == "fail"
    assert _count(engine, InspectionHazardRow) == 1

    data = service.history_csv(HistoryQuery(zone="ops-a", since=local(site, 2026, 11, 2),
                                            until=local(site, 2026, 11, 3)))
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(rows[0]) == CSV_HEADER
    mine = [dict(zip(CSV_HEADER, r, strict=True)) for r in rows[1:] if r[0] == str(task_id)]
    assert len(mine) == len(CATALOG["eos_self_check"].items)
    assert {r["item"]: r["item_note"] for r in mine}["cords_intact"] == "线破损,已报修"
    assert all(r["on_time"] == "yes" and r["completed_by"] == "p-wang" for r in mine)
    failed = service.history(HistoryQuery(result="fail", person="p-wang"))
    assert sorted(r.item for r in failed) == ["cords_intact", "no_smoking_flame"]
    assert service.history(HistoryQuery(item="cords_intact", zone="ops-b")) == []

    (ops_a,) = [c for c in service.compliance("2026-11", now=local(site, 2026, 11, 2, 21)) if c.zone == "ops-a"]
    assert ops_a.on_time == 1 and ops_a.failed_items == 2


def test_history_marks_the_overdue_tasks(sqlite_engine: Engine, site: Site) -> None:
    """Maintenance reviewing history sees which open tasks are past their deadline: JSON, CSV and report."""
    clock = FakeClock(local(site, 2026, 11, 2, 19))
    service = _service(sqlite_engine, site, clock)
    task_id = _eos_task(service, site, clock)  # due 30 min after p-wang's 20:00 shift end
    query = HistoryQuery(schedule="eos_self_check", zone="ops-a")

    def mine(now: datetime) -> list[dict[str, str]]:
        rows = list(csv.reader(io.StringIO(service.history_csv(query, now=now).decode("utf-8-sig"))))
        return [dict(zip(CSV_HEADER, r, strict=True)) for r in rows[1:] if r[0] == str(task_id)]

    before, after = local(site, 2026, 11, 2, 20, 29), local(site, 2026, 11, 2, 20, 31)
    assert [r.overdue for r in service.history(query, now=before) if r.task_id == task_id] == [False]
    assert [r.overdue for r in service.history(query, now=after) if r.task_id == task_id] == [True]
    assert [(r["status"], r["overdue"]) for r in mine(before)] == [("open", "")]
    assert [(r["status"], r["overdue"]) for r in mine(after)] == [("open", "yes")]
    report = service.report_html(query, now=after)
    section = report[report.index(f"<h3>#{task_id} "):]
    assert "overdue · 逾期未完成" in section[:section.index("</section>")]
    service.complete(task_id, WANG, _all_pass(), now=after)  # done late: no longer overdue, marked late
    assert {(r["status"], r["overdue"], r["on_time"]) for r in mine(after)} == {("done", "", "no")}


def test_a_task_signed_or_due_in_the_range_is_in_its_history(engine: Engine, site: Site) -> None:
    """Maintenance reading "the last 30 days" finds what was signed in them, also a task run before them (a
    yearly test signed today), and an open task whose deadline falls in them; a task run, due and signed
    before the range is not in it."""
    clock = FakeClock(local(site, 2026, 11, 2, 19))
    service = _service(engine, site, clock)
    task_id = _eos_task(service, site, clock)  # run at p-wang's 20:00 shift end, due 20:30
    task = service.get(task_id)
    assert task.run_at < local(site, 2026, 11, 2, 20, 15) < task.due_at

    def listed(since: datetime, until: datetime | None = None) -> set[int]:
        return {r.task_id for r in service.history(HistoryQuery(schedule="eos_self_check", since=since,
                                                                until=until))}

    assert task_id in listed(local(site, 2026, 11, 2, 20, 15)), "open, its deadline in the range"
    service.complete(task_id, WANG, _all_pass(), now=local(site, 2026, 11, 5, 9))  # signed three days late
    assert task_id in listed(local(site, 2026, 11, 4)), "signed in the range"
    assert task_id not in listed(local(site, 2026, 11, 4), until=local(site, 2026, 11, 5)), "signed after it"
    assert task_id not in listed(local(site, 2026, 11, 6)), "run, due and signed before the range"
    assert task_id in listed(local(site, 2026, 11, 2), until=local(site, 2026, 11, 3)), "run in the range"


def test_a_history_longer_than_its_limit_keeps_the_newest_rows(sqlite_engine: Engine, site: Site) -> None:
    clock = FakeClock(local(site, 2026, 11, 2, 0, 30))
    service = _service(sqlite_engine, site, clock)
    for _ in range(3):  # three days of tasks
        service.create_due()
        clock.advance(timedelta(days=1))
    rows = service.history(HistoryQuery())
    assert len(rows) > 3
    newest = service.history(HistoryQuery(), limit=3)
    assert newest == rows[-3:], "the limit drops the oldest rows; the order stays oldest first"


def test_history_range_the_wrong_way_round_is_an_error(site: Site) -> None:
    with pytest.raises(InspectionError) as caught:
        HistoryQuery(since=local(site, 2026, 11, 3), until=local(site, 2026, 11, 2))
    assert caught.value.code == "bad_range"


@pytest.mark.parametrize(("case", "code"), [
    ("unknown_item", "unknown_item"),
    ("someone_else", "not_allowed"),
    ("spot_without_note", "note_required"),
    ("twice", "already_completed"),
    ("no_task", "not_found"),
])
def test_bad_completions_change_nothing(sqlite_engine: Engine, site: Site, case: str, code: str) -> None:
    clock = FakeClock(local(site, 2026, 11, 2, 19))
    service = _service(sqlite_engine, site, clock)
    task_id = _eos_task(service, site, clock)
    who, results = WANG, _all_pass()
    if case == "unknown_item":
        results["nope"] = ("pass", "")
    elif case == "someone_else":
        who = CompleterView("p-zhao", frozenset({"operator"}))
    elif case == "spot_without_note":
        results["seat_tidy"] = ("fail", "")
    elif case == "twice":
        service.complete(task_id, WANG, results)
    elif case == "no_task":
        task_id = 99_999
    before = (_count(sqlite_engine, InspectionResultRow), _count(sqlite_engine, InspectionHazardRow),
              [t.status for t in service.tasks("open") + service.tasks("done")])
    with pytest.raises(InspectionError) as caught:
        service.complete(task_id, who, results)
    assert caught.value.code == code
    after = (_count(sqlite_engine, InspectionResultRow), _count(sqlite_engine, InspectionHazardRow),
             [t.status for t in service.tasks("open") + service.tasks("done")])
    assert after == before


@pytest.mark.parametrize(("data", "code"), [
    (b"", "bad_photo"),
    (b"GIF89a" + b"\x00" * 10, "bad_photo"),
    (JPEG[:3] + b"\x00" * (5 * 1024 * 1024), "photo_too_large"),
])
def test_photos_are_checked(sqlite_engine: Engine, site: Site, data: bytes, code: str) -> None:
    clock = FakeClock(local(site, 2026, 11, 2, 19))
    service = _service(sqlite_engine, site, clock)
    task_id = _eos_task(service, site, clock)
    with pytest.raises(InspectionError) as caught:
        service.add_photo(task_id, WANG, data)
    assert caught.value.code == code
    assert _count(sqlite_engine, InspectionPhotoRow) == 0
    assert service.add_photo(task_id, WANG, JPEG) > 0


def test_overdue_sweep_and_triggered_task(sqlite_engine: Engine, site: Site) -> None:
    clock = FakeClock(local(site, 2026, 11, 2, 19))
    service = _service(sqlite_engine, site, clock)
    _eos_task(service, site, clock)
    assert not [f for f in service.overdue(local(site, 2026, 11, 2, 20, 29)) if f.subject == "seat:s-001:p-wang"]
    found = [f for f in service.overdue(local(site, 2026, 11, 2, 20, 30)) if f.subject == "seat:s-001:p-wang"]
    assert [(f.rule, f.notify) for f in found] == [("insp.end_of_shift_missing", ("p-li",))]
    assert [t.id for t in service.tasks("overdue", now=local(site, 2026, 11, 2, 20, 31))
            if t.subject == "seat:s-001:p-wang"]
    task_id = service.add_triggered("door.forced_open", "door-main", "ops-a", local(site, 2026, 11, 2, 10))
    assert task_id is not None
    assert service.add_triggered("door.forced_open", "door-main", "ops-a", local(site, 2026, 11, 2, 10)) == task_id
    assert service.get(task_id).device == "door-main"


def test_a_never_done_duty_is_counted_from_monitoring_start_however_often_the_planner_runs(
        engine: Engine, site: Site) -> None:
    """The scheduler plans every few minutes and every task list plans too: a weekly, monthly or
    quarterly duty nobody ever does still falls overdue its period after monitoring started."""
    start = local(site, 2026, 10, 1, 10, 30)
    clock = FakeClock(start)
    service = _service(engine, site, clock)
    due_after = {"insp.supervisor_electrical_overdue": 7, "insp.fire_check_monthly_overdue": 31,
                 "insp.extinguisher_monthly_overdue": 31, "it.access_review": 90}
    service.create_due()
    for day in range(1, 92):
        for _ in range(4):  # as the scheduler would, many times a day (every 6 h here, for speed)
            clock.advance(timedelta(hours=6))
            service.create_due()
        found = {f.rule for f in service.overdue()}
        assert {r for r, days in due_after.items() if day >= days} == found & set(due_after), day


def test_last_months_counts_are_sent_only_while_its_tasks_can_still_change(engine: Engine, site: Site) -> None:
    """A bucket keeps points for its retention only (30 d in docker-compose.yml): last month's point, at the
    month's start, is refused once it is older. It is re-sent until its last open deadline + the grace."""
    sent: list[datetime] = []
    clock = FakeClock(local(site, 2026, 11, 30, 12, 0))
    service = InspectionService(InspectionRepository(session_factory(engine)), site, clock, grace=GRACE,
                                schedules=[CATALOG["fire_patrol"]],
                                counts=lambda start, figures: sent.append(start))
    service.create_due()  # today's patrol: run 30 Nov 00:00, due 1 Dec 00:00
    november, december = local(site, 2026, 11, 1), local(site, 2026, 12, 1)

    clock.now = december + timedelta(minutes=30)
    service.create_due()
    service.record_counts()
    assert sent == [november, december], "the 30 Nov patrol just turned missed: November is sent once more"

    sent.clear()
    clock.now = december + GRACE + timedelta(minutes=1)
    service.record_counts()
    assert sent == [december], "November's last deadline + grace is past: its counts are final"
