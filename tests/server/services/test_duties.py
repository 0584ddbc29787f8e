"""The §6/§2.9 duties beyond the fixed calendar: unannounced spot checks, the quarterly access review,
the lead's forward of operator issues, the post-incident review and training. Each fires at the right
time on a fake clock and stays quiet once the duty is done."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from server.adapters.hr_file import load_hr
from server.adapters.sql.database import session_factory
from server.adapters.sql.inspections import InspectionRepository
from server.domain import inspections as insp
from server.domain.inspections import CATALOG, CompleterView, Course, InspectionError, Severity, Starter, Training
from server.domain.site import Site
from server.services.inspections import InspectionService
from tests.support.inspections import FakeClock, local

WANG = CompleterView("p-wang", frozenset({"operator"}))
LI = CompleterView("p-li", frozenset({"shift_lead"}))
ZHOU = CompleterView("p-zhou", frozenset({"safety_officer", "emergency_command"}))


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    return sqlite_engine


def _service(engine: Engine, site: Site, clock: FakeClock) -> InspectionService:
    return InspectionService(InspectionRepository(session_factory(engine)), site, clock)


def _rules(service: InspectionService, rule: str, now: object) -> list[insp.OverdueFinding]:
    return [f for f in service.overdue(now) if f.rule == rule]  # type: ignore[arg-type]


# ---- unannounced spot checks ---------------------------------------------------------------------


def test_spot_checks_one_per_week_on_a_drawn_working_day(site: Site) -> None:
    schedule = CATALOG["supervisor_spot_check"]
    since, until = local(site, 2025, 12, 28), local(site, 2027, 1, 3)  # Sun → Sun: ISO weeks 1–53 of 2026
    runs = insp.due_runs(schedule, since, until, site.tz, "hq")
    assert len(runs) == 53
    weeks = [r.astimezone(site.tz).isocalendar()[:2] for r in runs]
    assert len(set(weeks)) == 53
    for run in runs:
        lt = run.astimezone(site.tz)
        assert lt.weekday() < 5 and (9, 0) <= (lt.hour, lt.minute) <= (17, 0) and lt.minute % 15 == 0
    assert len({r.astimezone(site.tz).weekday() for r in runs}) == 5  # the day really varies
    assert insp.due_runs(schedule, since, until, site.tz, "hq") == runs  # a second computation: same draw
    other = insp.due_runs(schedule, since, until, site.tz, "another-seed")
    assert other != runs and len(other) == 53


def test_spot_check_appears_only_at_its_instant_and_a_restart_does_not_redraw(engine: Engine, site: Site) -> None:
    run = insp.spot_run("hq", "supervisor_spot_check", 2026, 46, site.tz)  # week of Mon 9 Nov 2026
    clock = FakeClock(local(site, 2026, 11, 9, 0, 5))
    service = _service(engine, site, clock)
    service.create_due()
    spot: list[object] = []
    while clock.now < local(site, 2026, 11, 16):
        clock.advance(timedelta(hours=2))  # the planner's grace is 2 h: every run is still created on time
        if clock.now == local(site, 2026, 11, 12, 0, 5):
            service = _service(engine, site, clock)  # restart mid-week
        service.create_due()
        spot = [t for t in service.tasks("open") if t.schedule_id == "supervisor_spot_check"]
        # unannounced: no task exists before the drawn instant
        assert bool(spot) == (clock.now >= run)
    assert [(t.run_at, t.assignee) for t in spot] == [(run, "p-chen")]  # type: ignore[attr-defined]


# ---- quarterly access review ---------------------------------------------------------------------


def test_quarterly_access_review_and_its_90_day_rule(engine: Engine, site: Site) -> None:
    runs = insp.due_runs(CATALOG["access_review_quarterly"], local(site, 2026, 1, 1), local(site, 2027, 1, 1),
                         site.tz)
    assert [r.astimezone(site.tz).month for r in runs] == [1, 4, 7, 10]
    clock = FakeClock(local(site, 2026, 10, 1, 10, 30))
    service = _service(engine, site, clock)
    service.create_due()  # monitoring starts: the never-done review is counted from here
    (task,) = [t for t in service.tasks("due") if t.schedule_id == "access_review_quarterly"]
    start = clock.now
    assert _rules(service, "it.access_review", start + timedelta(days=90) - timedelta(seconds=1)) == []
    (found,) = _rules(service, "it.access_review", start + timedelta(days=90))
    assert found.severity is Severity.MINOR and found.notify == ("supervisor", "it")
    chen = CompleterView("p-chen", frozenset({"supervisor"}))
    service.complete(task.id, chen, {i.id: ("pass", "") for i in CATALOG["access_review_quarterly"].items},
                     now=start + timedelta(days=3))
    assert _rules(service, "it.access_review", start + timedelta(days=92)) == []
    assert _rules(service, "it.access_review", start + timedelta(days=93)) != []  # 90 d after the review


# ---- esc.lead_not_forwarded -----------------------------------------------------------------------


def _eos(service: InspectionService, clock: FakeClock, site: Site) -> int:
    clock.now = local(site, 2026, 11, 2, 20, 5)
    service.create_due()
    (task,) = [t for t in service.tasks("due") if t.schedule_id == "eos_self_check" and t.assignee == "p-wang"]
    return task.id


def _answers(schedule: str, **changes: tuple[str, str]) -> dict[str, tuple[str, str]]:
    return {i.id: ("pass", "") for i in CATALOG[schedule].items} | changes


def test_unsolved_operator_issue_goes_to_the_supervisor_after_30_min(engine: Engine, site: Site) -> None:
    clock = FakeClock(local(site, 2026, 11, 2, 19))
    service = _service(engine, site, clock)
    eos = _eos(service, clock, site)
    service.complete(eos, WANG, _answers("eos_self_check", cords_intact=("fail", "cord frayed under desk")))
    (issue,) = [t for t in service.tasks("due") if t.schedule_id == "lead_forward"]
    assert (issue.assignee, issue.zone, issue.seat, issue.subject) == ("p-li", "ops-a", "s-001", f"issue:{eos}")
    assert issue.trigger == "eos_self_check:cords_intact" and issue.due_at == clock.now + timedelta(minutes=30)
    assert _rules(service, "esc.lead_not_forwarded", clock.now + timedelta(minutes=29, seconds=59)) == []
    (found,) = _rules(service, "esc.lead_not_forwarded", clock.now + timedelta(minutes=30))
    assert found.severity is Severity.MAJOR and found.notify == ("supervisor",) and found.task_id == issue.id

    with pytest.raises(InspectionError) as caught:  # neither resolved nor forwarded is no answer
        service.complete(issue.id, LI, _answers("lead_forward", resolved=("fail", ""), forwarded=("fail", "")))
    assert caught.value.code == "one_of_required"
    service.complete(issue.id, LI, _answers("lead_forward", resolved=("not_applicable", ""),
                                            forwarded=("pass", "told p-chen by phone")),
                     now=clock.now + timedelta(minutes=40))
    assert _rules(service, "esc.lead_not_forwarded", clock.now + timedelta(minutes=41)) == []


def test_on_the_spot_corrections_and_a_clean_check_owe_no_forward(engine: Engine, site: Site) -> None:
    clock = FakeClock(local(site, 2026, 11, 2, 19))
    service = _service(engine, site, clock)
    eos = _eos(service, clock, site)
    service.complete(eos, WANG, _answers("eos_self_check", seat_tidy=("fail", "boxes moved off the passage")))
    assert [t for t in service.tasks("open") if t.schedule_id == "lead_forward"] == []


# ---- incident.post_review_overdue -----------------------------------------------------------------


def test_review_owed_7_days_after_a_critical_incident_closes(engine: Engine, site: Site) -> None:
    closed = local(site, 2026, 11, 5, 15)
    clock = FakeClock(closed)
    service = _service(engine, site, clock)
    review = service.add_review("fire.confirmed", "ops-a", "ops-a", closed)
    assert review is not None
    # the zone's other critical alarm of the same fire closes an hour later: the same incident
    assert service.add_review("fire.smoke_alarm", "smoke-a1", "ops-a", closed + timedelta(hours=1)) == review
    assert service.get(review).assignee == "p-chen"  # emergency_command, first by id
    assert _rules(service, "incident.post_review_overdue", closed + timedelta(days=7, seconds=-1)) == []
    (found,) = _rules(service, "incident.post_review_overdue", closed + timedelta(days=7))
    assert found.severity is Severity.MINOR and found.notify == ("emergency_command",)
    assert _rules(service, "incident.post_review_overdue", closed + timedelta(days=20))  # still owed later
    service.complete(review, ZHOU, _answers("post_incident_review"), now=closed + timedelta(days=8))
    assert _rules(service, "incident.post_review_overdue", closed + timedelta(days=20)) == []


# ---- training ------------------------------------------------------------------------------------


def test_new_staff_without_induction_at_first_shift(site: Site) -> None:
    starter = [Starter("p-zhao", date(2026, 11, 2))]  # night shift: first duty Mon 2 Nov 20:00
    first = local(site, 2026, 11, 2, 20)
    origin = local(site, 2026, 11, 1)

    def found(records: list[Training], now: object) -> list[insp.OverdueFinding]:
        return [f for f in insp.evaluate_training(site, records, starter, origin, now)  # type: ignore[arg-type]
                if f.rule == "train.new_staff"]

    assert found([], first - timedelta(minutes=1)) == []
    (finding,) = found([], first)
    assert (finding.subject, finding.severity, finding.since, finding.zone) == ("p-zhao", Severity.MAJOR, first,
                                                                                "ops-a")
    assert "hr" in finding.notify
    induction = [Training("p-zhao", Course.INDUCTION, local(site, 2026, 11, 2, 10))]
    assert found(induction, first + timedelta(hours=1)) == []
    late = [Training("p-zhao", Course.INDUCTION, first + timedelta(hours=2))]
    assert found(late, first + timedelta(hours=1)) != [] and found(late, first + timedelta(hours=2)) == []


def test_annual_fire_training(site: Site) -> None:
    origin = local(site, 2026, 1, 1)
    records = [Training("p-wang", Course.FIRE_ANNUAL, local(site, 2025, 11, 10, 9)),
               Training("p-wang", Course.INDUCTION, local(site, 2024, 3, 1, 9))]
    for person in ("p-zhao", "p-li", "p-chen", "p-sun"):
        records.append(Training(person, Course.FIRE_ANNUAL, local(site, 2026, 6, 1)))

    def overdue(now: object) -> list[str]:
        return [f.subject for f in insp.evaluate_training(site, records, [], origin, now)  # type: ignore[arg-type]
                if f.rule == "train.fire_annual_overdue"]

    assert overdue(local(site, 2026, 11, 10, 8, 59)) == []
    assert overdue(local(site, 2026, 11, 10, 9)) == ["p-wang"]
    records.append(Training("p-wang", Course.FIRE_ANNUAL, local(site, 2026, 11, 12)))
    assert overdue(local(site, 2026, 11, 13)) == []


def test_hr_file_training_section(tmp_path: Path, site: Site) -> None:
    path = tmp_path / "hr.yaml"
    path.write_text("leavers: []\n", encoding="utf-8")
    assert load_hr(path).trainings(site.tz) is None  # no section: the train.* rules stay off
    path.write_text("training:\n  - {person: p-wang, course: fire_annual, passed_at: '2026-03-01T09:00:00'}\n"
                    "new_staff:\n  - {person: p-zhao, starts: '2026-11-02'}\n", encoding="utf-8")
    trainings = load_hr(path).trainings(site.tz)
    assert trainings == ([Training("p-wang", Course.FIRE_ANNUAL, local(site, 2026, 3, 1, 9))],
                         [Starter("p-zhao", date(2026, 11, 2))])
