"""Pure inspection domain: a simulated month, catch-up, overdue escalation, completion errors."""

from __future__ import annotations

import ast
from collections import Counter
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from server.domain import inspections as insp
from server.domain.inspections import (
    CATALOG,
    CompleterView,
    InspectionError,
    Outcome,
    Severity,
    TaskState,
    TaskStatus,
)
from server.domain.roster import Duty
from server.domain.site import Site
from tests.support.inspections import FakeClock, local

MONTH_COUNTS = {
    # Nov 2026: 30 days, 21 weekdays, Mondays 2, 9, 16, 23, 30.
    "lead_round": 30 * 2 + 21 * 2,  # p-li daily + p-chen on weekdays, at start and end of each shift
    "eos_self_check": 30 + 30,  # p-wang (day, s-001) and p-zhao (night, s-002); leads excluded
    "fire_patrol": 30,
    "mr_walkthrough": 30,  # one machine room
    "it_backup_check": 30,
    "supervisor_electrical": 5,
    "fire_check_monthly": 1,
    "extinguisher_monthly": 1,
    "sensor_tests_monthly": 1,
    "access_review_monthly": 1,
    # Unannounced spot checks: one per ISO week on a drawn weekday (Mon–Fri). ISO weeks 45–48 (Nov 2–29) lie
    # wholly in November: 4. Week 44 ends Sun Nov 1, whose Mon–Fri are in October: 0. Week 49 starts Mon Nov 30:
    # it counts only if its draw is that Monday, which for seed "hq" it is (asserted in the test): 4 + 1.
    "supervisor_spot_check": 4 + 1,
    # access_review_quarterly runs in Jan/Apr/Jul/Oct only: none in November (so no key).
}


def test_domain_package_is_pure() -> None:
    modules = sorted(Path(insp.__file__).parent.glob("*.py"))
    assert len(modules) > 1  # the package's modules, not only its __init__
    for module in modules:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        for banned in ("sqlalchemy", "fastapi", "apscheduler"):
            assert not any(m.startswith(banned) for m in imported), (module.name, banned)


def test_the_package_keeps_the_old_modules_public_names() -> None:
    # callers import from server.domain.inspections, as they did from the one module it was split from
    assert (timedelta(hours=1), timedelta(days=1)) == (insp.H, insp.D)
    assert insp.Duty is Duty
    assert {"D", "H", "Duty"} <= set(insp.__all__)
    assert [name for name in insp.__all__ if not hasattr(insp, name)] == []


def test_simulated_month_with_a_fake_clock(site: Site) -> None:
    clock = FakeClock(local(site, 2026, 11, 1))
    end = local(site, 2026, 12, 1)
    seen: list[insp.TaskSpec] = []
    last = clock.now
    while clock.now < end:
        now = clock.advance(timedelta(minutes=15))
        seen.extend(insp.plan(site, insp.SCHEDULES, last, now))
        last = now
    counts = Counter(t.schedule_id for t in seen)
    week49 = insp.spot_run(site.id, "supervisor_spot_check", 2026, 49, site.tz).astimezone(site.tz)
    assert week49.date().isoformat() == "2026-11-30"  # the "+ 1" of MONTH_COUNTS
    assert dict(counts) == MONTH_COUNTS
    assert len({t.key for t in seen}) == len(seen)  # every key unique
    # the whole month in one call gives exactly the same tasks
    assert [t.key for t in insp.plan(site, insp.SCHEDULES, local(site, 2026, 11, 1), end)] == [t.key for t in seen]


def test_quarterly_yearly_and_two_yearly_runs(site: Site) -> None:
    since, until = local(site, 2026, 1, 1), local(site, 2028, 1, 1)
    assert len(insp.due_runs(CATALOG["egress_release_quarterly"], since, until, site.tz)) == 8
    assert len(insp.due_runs(CATALOG["evacuation_drill"], since, until, site.tz)) == 4
    assert len(insp.due_runs(CATALOG["annual_fire_system_test"], since, until, site.tz)) == 2
    assert len(insp.due_runs(CATALOG["detector_cleaning"], since, until, site.tz)) == 1
    runs = insp.due_runs(CATALOG["fire_check_monthly"], since, until, site.tz)
    assert runs[0] == local(site, 2026, 2, 1)  # (since, until]: the run at `since` itself belongs before
    assert len(runs) == 24


def test_due_runs_rejects_a_reversed_range(site: Site) -> None:
    with pytest.raises(InspectionError) as caught:
        insp.due_runs(CATALOG["fire_patrol"], local(site, 2026, 11, 2), local(site, 2026, 11, 1))
    assert caught.value.code == "bad_range"


def test_missed_runs_are_caught_up_once(site: Site) -> None:
    # The server was down for three days; at restart only the latest fire patrol is created.
    down, up = local(site, 2026, 11, 1, 12), local(site, 2026, 11, 4, 3)
    specs = [t for t in insp.plan(site, insp.SCHEDULES, down, up) if t.schedule_id == "fire_patrol"]
    assert len(specs) == 3
    result = insp.catch_up(specs, up, grace=timedelta(hours=6))
    assert [t.run_at for t in result.create] == [local(site, 2026, 11, 4)]
    assert len(result.missed) == 2
    # Outside the grace and past its deadline: nothing is created, everything is missed.
    late = insp.catch_up(specs, local(site, 2026, 11, 6), grace=timedelta(hours=6))
    assert late.create == [] and len(late.missed) == 3


def test_a_first_plan_finds_the_runs_whose_deadline_is_still_ahead(site: Site) -> None:
    # A new server on Tue 3 Mar 14:00: the monthly check of 1 Mar (due in 31 d) is owed; that of 1 Feb,
    # also within one window of now, ran before monitoring started: nobody missed it.
    now = local(site, 2026, 3, 3, 14)
    schedule = CATALOG["fire_check_monthly"]
    assert insp.first_look_back(schedule, timedelta(hours=2)) == timedelta(days=31)
    assert insp.first_look_back(CATALOG["eos_self_check"], timedelta(hours=2)) == timedelta(hours=2)
    specs = insp.plan(site, [schedule], now - insp.first_look_back(schedule, timedelta(hours=2)), now)
    assert [t.run_at for t in specs] == [local(site, 2026, 2, 1), local(site, 2026, 3, 1)]
    first = insp.first_catch_up(specs, now, timedelta(hours=2))
    assert [t.run_at for t in first.create] == [local(site, 2026, 3, 1)] and first.missed == []
    assert len(insp.catch_up(specs, now, timedelta(hours=2)).missed) == 1  # a restart's catch-up would


def test_shift_lead_and_assignees_resolved_from_roster(site: Site) -> None:
    specs = insp.plan(site, [CATALOG["eos_self_check"], CATALOG["lead_round"], CATALOG["mr_walkthrough"]],
                      local(site, 2026, 11, 2, 7), local(site, 2026, 11, 2, 21))
    eos = [t for t in specs if t.schedule_id == "eos_self_check"]
    assert [(t.assignee, t.seat, t.run_at) for t in eos] == [
        ("p-zhao", "s-002", local(site, 2026, 11, 2, 8)), ("p-wang", "s-001", local(site, 2026, 11, 2, 20))]
    leads = {(t.assignee, t.zone) for t in specs if t.schedule_id == "lead_round"}
    assert leads == {("p-li", "ops-a"), ("p-chen", "ops-b")}
    mr = [t for t in specs if t.schedule_id == "mr_walkthrough"]
    assert [(t.zone, t.assignee) for t in mr] == [("mr", "p-sun")]


def _state(spec: insp.TaskSpec, task_id: int = 1, **changes: object) -> TaskState:
    values: dict[str, object] = dict(id=task_id, schedule_id=spec.schedule_id, subject=spec.subject,
                                     run_at=spec.run_at, due_at=spec.due_at, zone=spec.zone,
                                     assignee=spec.assignee, status=TaskStatus.OPEN)
    values.update(changes)
    return TaskState(**values)  # type: ignore[arg-type]


def test_end_of_shift_missing_escalates_at_the_right_times(site: Site) -> None:
    start = local(site, 2026, 11, 2, 19)
    spec = next(t for t in insp.plan(site, [CATALOG["eos_self_check"]], start, start + timedelta(hours=2))
                if t.assignee == "p-wang")
    task = _state(spec)
    shift_end = local(site, 2026, 11, 2, 20)

    def at(delta: timedelta) -> list[insp.OverdueFinding]:
        return [f for f in insp.evaluate_overdue(site, [task], {}, shift_end, shift_end + delta)
                if f.rule == "insp.end_of_shift_missing"]

    assert at(timedelta(minutes=29, seconds=59)) == []
    found = at(timedelta(minutes=30))
    assert len(found) == 1 and found[0].severity is Severity.MINOR
    assert found[0].notify == ("p-li",)  # the lead on duty in ops-a at shift end (当日领班)
    later = at(timedelta(hours=24, minutes=30))
    assert later[0].notify == ("supervisor",) and len(later[0].steps) == 2
    # completed in time: no finding
    done = _state(spec, status=TaskStatus.DONE, completed_at=shift_end + timedelta(minutes=10))
    after = insp.evaluate_overdue(site, [done], {}, shift_end, shift_end + timedelta(hours=1))
    assert all(f.rule != "insp.end_of_shift_missing" for f in after)


def test_fire_patrol_two_days_missing_becomes_major(site: Site) -> None:
    since = local(site, 2026, 11, 1, 12)
    specs = insp.plan(site, [CATALOG["fire_patrol"]], since, local(site, 2026, 11, 3, 1))
    tasks = [_state(s, i) for i, s in enumerate(specs, 1)]
    now = local(site, 2026, 11, 3, 0)  # end of Nov 2: the Nov 2 patrol is now overdue
    found = [f for f in insp.evaluate_overdue(site, tasks, {}, since, now) if f.rule == "insp.fire_patrol_overdue"]
    assert len(found) == 1 and found[0].severity is Severity.MINOR and found[0].notify == ("supervisor",)
    now = local(site, 2026, 11, 4, 0)
    found = [f for f in insp.evaluate_overdue(site, tasks, {}, since, now) if f.rule == "insp.fire_patrol_overdue"]
    assert [f.severity for f in found] == [Severity.MINOR, Severity.MAJOR]


def test_since_last_rules(site: Site) -> None:
    last = local(site, 2026, 1, 1)
    done = {"fire_check_monthly": last, "supervisor_electrical": last}

    def rules(now_days: float) -> dict[str, Severity]:
        now = last + timedelta(days=now_days)
        found = insp.evaluate_overdue(site, [], done, last, now)
        return {f.rule: f.severity for f in found if f.rule in ("insp.fire_check_monthly_overdue",
                                                                "insp.supervisor_electrical_overdue")}

    assert rules(6.9) == {}
    assert rules(7) == {"insp.supervisor_electrical_overdue": Severity.MINOR}
    assert rules(14) == {"insp.supervisor_electrical_overdue": Severity.MAJOR}
    assert rules(31)["insp.fire_check_monthly_overdue"] is Severity.MAJOR
    assert "insp.fire_check_monthly_overdue" not in rules(30.9)


def test_sensor_triggered_inspection(site: Site) -> None:
    cleared = local(site, 2026, 11, 2, 10)
    task = insp.triggered_task(site, "elec.strip_overload", "strip-a1", "ops-a", cleared)
    assert task is not None
    assert (task.device, task.zone, task.assignee, task.due_at) == ("strip-a1", "ops-a", "p-li",
                                                                     cleared + timedelta(hours=4))
    smoke = insp.triggered_task(site, "fire.smoke_alarm", "smoke-a1", "ops-a", cleared)
    assert smoke is not None and smoke.due_at == cleared + timedelta(hours=1)
    assert insp.triggered_task(site, "env.office_temp", "temp-a1", "ops-a", cleared) is None


# ---- completion -----------------------------------------------------------------------------------

WANG = CompleterView("p-wang", frozenset({"operator"}))


def _eos(site: Site, **changes: object) -> TaskState:
    start = local(site, 2026, 11, 2, 19)
    spec = next(t for t in insp.plan(site, [CATALOG["eos_self_check"]], start, start + timedelta(hours=2))
                if t.assignee == "p-wang")
    return _state(spec, 7, **changes)


def _all(outcome: str = "pass") -> dict[str, tuple[str, str]]:
    return {i.id: (outcome, "") for i in CATALOG["eos_self_check"].items}


def test_completion_ok(site: Site) -> None:
    task = _eos(site)
    results = _all() | {"cords_intact": ("fail", "cord frayed, reported"), "devices_off": ("not_applicable", "")}
    done = insp.validate_completion(task, WANG, results, task.run_at + timedelta(minutes=5))
    assert done.on_time and done.failed == ("cords_intact",) and done.hazards == ()
    assert {r.item_id: r.outcome for r in done.results}["devices_off"] is Outcome.NOT_APPLICABLE


@pytest.mark.parametrize(("case", "code"), [
    ("unknown_item", "unknown_item"),
    ("missing_item", "missing_item"),
    ("bad_outcome", "bad_outcome"),
    ("twice", "already_completed"),
    ("someone_else", "not_allowed"),
    ("spot_without_note", "note_required"),
])
def test_completion_errors(site: Site, case: str, code: str) -> None:
    task = _eos(site)
    who = WANG
    results = _all()
    if case == "unknown_item":
        results["no_such_item"] = ("pass", "")
    elif case == "missing_item":
        del results["cords_intact"]
    elif case == "bad_outcome":
        results["cords_intact"] = ("ok", "")
    elif case == "twice":
        task = _eos(site, status=TaskStatus.DONE, completed_at=task.run_at)
    elif case == "someone_else":
        who = CompleterView("p-zhao", frozenset({"operator"}))
    elif case == "spot_without_note":
        results["no_smoking_flame"] = ("fail", "  ")
    with pytest.raises(InspectionError) as caught:
        insp.validate_completion(task, who, results, task.run_at + timedelta(minutes=5))
    assert caught.value.code == code
    assert caught.value.message


def test_a_refusal_says_who_may_complete_the_task(site: Site) -> None:
    task = _eos(site)
    with pytest.raises(InspectionError) as caught:
        insp.validate_completion(task, CompleterView("p-zhao", frozenset({"operator"})), _all(),
                                 task.run_at + timedelta(minutes=5))
    assert caught.value.message == (f"task {task.id} is assigned to p-wang: only they, a shift_lead or supervisor, "
                                    "or an admin may complete it")


def test_lead_may_complete_an_operator_task_and_photo_replaces_note(site: Site) -> None:
    task = _eos(site, photos=1)
    lead = CompleterView("p-li", frozenset({"shift_lead"}))
    results = _all() | {"no_smoking_flame": ("fail", "")}
    done = insp.validate_completion(task, lead, results, task.due_at + timedelta(minutes=1))
    assert not done.on_time and done.hazards == ("no_smoking_flame",)


def test_compliance_and_month_bounds(site: Site) -> None:
    start, end = insp.month_bounds("2026-11", site.tz)
    assert start == local(site, 2026, 11, 1) and end == local(site, 2026, 12, 1)
    with pytest.raises(InspectionError):
        insp.month_bounds("2026-13", site.tz)
    spec = insp.plan(site, [CATALOG["fire_patrol"]], start, start + timedelta(days=3))
    rows = [(_state(spec[0], 1, status=TaskStatus.DONE, completed_at=spec[0].run_at), 1),
            (_state(spec[1], 2, status=TaskStatus.DONE, completed_at=spec[1].due_at + timedelta(1)), 0),
            (_state(spec[2], 3, status=TaskStatus.MISSED), 0)]
    (figures,) = insp.compliance(rows, "2026-11", end)
    assert (figures.zone, figures.on_time, figures.late, figures.missed, figures.failed_items) == ("site", 1, 1, 1, 1)
    assert start.tzinfo is UTC or start.utcoffset() == timedelta(0)
