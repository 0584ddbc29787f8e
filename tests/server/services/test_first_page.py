"""First pages through real channels (an HTTP webhook receiver and an SMTP server on 127.0.0.1): a critical
alarm's page is never held for grouping, a major one waits at most GROUP_WAIT, and the machine-room
entrant gets the catalog's notice (or, without a contact, a visible no_channel row in the alarm's log)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from gateway.contract import Event, EventType, Severity
from server.domain import notify as routing
from server.domain.rules import RuleEngine
from server.services.notify import NO_CHANNEL
from tests.server.services.conftest import T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import raise_alarm, wire
from tests.support.wait import wait_for

MR_DOOR = "  - {id: door-mr, kind: door_controller, zone: mr, door_type: machine_room, edge: e1}\n"


def test_a_critical_overload_is_pushed_at_once_while_a_major_one_waits_for_its_group(
        db: tuple[str, sessionmaker[Session]], smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """Real time, the service's own worker thread: a major overload opens a group on the floor, then a
    critical overload on the same floor arrives at the supervisor's webhook first, due at once
    (RULES.md §4: 60 s to acknowledge a critical alarm; no part of it is spent waiting for a group)."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    alarms, svc = wire(sessions, site, lambda: datetime.now(UTC), poll_s=0.2)  # type: ignore[arg-type]
    svc.start()
    try:
        major = raise_alarm(alarms, "elec.strip_overload", "strip-z1-00", "z1", Severity.MAJOR, datetime.now(UTC),
                            "Strip overloaded", "插线板过载", 10.5)
        critical = raise_alarm(alarms, "elec.strip_overload", "strip-z2-01", "z2", Severity.CRITICAL,
                               datetime.now(UTC), "Strip overloaded at 130 %", "插线板严重过载", 13.0)

        def arrived(subject: str) -> datetime | None:
            return datetime.now(UTC) if any(subject in b["message"] for b in hook.at("/supervisor")) else None

        critical_at = wait_for(lambda: arrived("strip-z2-01"), timeout=10, what="the critical page")
        major_at = wait_for(lambda: arrived("strip-z1-00"), timeout=15, what="the major page")
    finally:
        svc.stop()
    critical_s = (critical_at - critical.raised_at).total_seconds()
    major_s = (major_at - major.raised_at).total_seconds()
    print(f"critical first push {critical_s:.2f} s after the raise; major {major_s:.2f} s")
    # The critical page is due at once and leaves before the major one, which waits out GROUP_WAIT (the
    # rows' schedules below); how many seconds each took is a figure for the bench, not an assertion.
    assert critical_at < major_at, (critical_s, major_s)
    rows = {r["alarm_id"]: r for r in svc.log_of() if r["recipient"] == "supervisor"}
    assert rows[critical.id]["next_attempt_at"] == rows[critical.id]["created_at"], "queued due at once"
    assert rows[major.id]["next_attempt_at"] - rows[major.id]["created_at"] == routing.GROUP_WAIT
    assert [b["message"].count("device strip-z") for b in hook.at("/supervisor")] == [1, 1], "no cross-folding"


def test_the_machine_room_entrant_is_pushed_the_notice_on_each_entry_and_a_missing_contact_shows(
        db: tuple[str, sessionmaker[Session]], smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """RULES.md §2.4 access.mr_entry_notice: raised and cleared at once by the real rule engine, pushed to
    the entrant; a second entry is pushed again; an entrant with no contact gets nothing, and the
    alarm's log says why and what to do. access.mr_unlisted pages 机房值班 + 主管 (§2.4)."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port).replace("devices:\n", "devices:\n" + MR_DOOR, 1), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    engine = RuleEngine(site)
    engine.tick(clock())

    def enter(badge: str) -> None:
        event = Event(device="door-mr", ts=clock(), type=EventType.ACCESS_GRANTED, badge=badge, direction="in")
        alarms.commit(engine.on_event(event, clock()), clock())
        svc.tick(clock())
        assert svc.deliver(clock()) == 0, "a warning's and a major's page wait for their group"
        clock.advance(routing.GROUP_WAIT)
        svc.deliver(clock())

    enter("B11")  # p-op1: has a webhook of their own, not on the machine-room list
    notice = wait_for(lambda: hook.at("/op1"), what="the entrant's notice")
    assert len(notice) == 1 and "机房禁止携带食品、饮品及易燃易爆物品" in notice[0]["message"]
    assert "access.mr_entry_notice" in notice[0]["title"]
    unlisted = {p: [b for b in hook.at(p) if "access.mr_unlisted" in b["title"]] for p in ("/mr", "/supervisor")}
    assert all(len(v) == 1 for v in unlisted.values()), unlisted

    clock.advance(timedelta(minutes=10))
    enter("B11")  # the same person again: the notice is for each entry
    assert len(wait_for(lambda: hook.at("/op1") if len(hook.at("/op1")) == 2 else None, what="the 2nd notice")) == 2

    enter("B13")  # p-op3: no contact, nor has the operator role
    [entry] = [a for a in alarms.open_alarms() if a.rule == "access.mr_entry_notice" and a.subject == "p-op3"]
    [row] = svc.log_of(alarm_id=entry.id)
    assert (row["recipient"], row["status"], row["attempts"]) == ("person:p-op3", NO_CHANNEL, 0)
    assert "p-op3" in row["last_error"] and "contacts" in row["last_error"]
    enter("B99")  # a card that is not in the site file: nobody to push to, and the log says so
    [stranger] = [a for a in alarms.open_alarms()
                  if a.rule == "access.mr_entry_notice" and a.subject.startswith("card-")]
    [row] = svc.log_of(alarm_id=stranger.id)
    assert row["status"] == NO_CHANNEL and "not in the site file" in row["last_error"]
    assert len(hook.received) == len([r for r in svc.log_of() if r["status"] == "sent"]), "nothing else sent"


def test_an_overload_that_becomes_critical_pages_its_people_again_at_once(
        db: tuple[str, sessionmaker[Session]], smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """The same alarm escalated from major to critical restarts its plan: the critical first page reaches
    the people the major one already reached (its own keys, not the major page's), without a group wait."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    major = raise_alarm(alarms, "elec.strip_overload", "strip-z1-00", "z1", Severity.MAJOR, clock(),
                        "Strip overloaded", "插线板过载", 10.5)
    svc.tick(clock())
    clock.advance(routing.GROUP_WAIT)
    svc.deliver(clock())
    assert [b["title"].split("]")[0] for b in hook.at("/supervisor")] == ["[重要/major"]
    clock.advance(timedelta(seconds=30))
    critical = raise_alarm(alarms, "elec.strip_overload", "strip-z1-00", "z1", Severity.CRITICAL, clock(),
                           "Strip overloaded for 5 min", "插线板持续过载", 10.5)
    assert critical.id == major.id
    svc.tick(clock())
    assert svc.deliver(clock()) >= 3, "lead, supervisor and safety officer at once"
    assert [b["title"].split("]")[0] for b in hook.at("/supervisor")] == ["[重要/major", "[紧急/critical"]
    assert len(wait_for(lambda: smtp.texts() if len(smtp.texts()) == 2 else None, what="the lead's 2nd mail")) == 2


def test_a_role_without_a_channel_shows_once_in_the_log_not_on_every_repeat(
        db: tuple[str, sessionmaker[Session]], smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """RULES.md §2.1 elec.plug_overcurrent critical: ticket to 设备管理 (facilities). A site without a
    facilities contact gets one no_channel row on the first page; the 60 s repeats do not add more."""
    _, sessions = db
    text = site_yaml(smtp.port, hook.port).replace(f"  facilities: ['json://127.0.0.1:{hook.port}/facilities']\n", "")
    site = make_site(text, tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    alarm = raise_alarm(alarms, "elec.plug_overcurrent", "plug-z1-pc", "z1", Severity.CRITICAL, clock())
    for _ in range(3):
        svc.tick(clock())
        svc.deliver(clock())
        clock.advance(timedelta(seconds=60))
    rows = svc.log_of(alarm_id=alarm.id)
    gaps = [r for r in rows if r["status"] == NO_CHANNEL]
    assert [(r["recipient"], r["attempts"]) for r in gaps] == [("facilities", 0)]
    assert "'facilities'" in gaps[0]["last_error"] and not hook.at("/facilities")
    assert len([b for b in hook.at("/supervisor")]) == 3, "first page and two repeats"
