"""RULES.md §4 beyond paging, with a fake clock, a real database and a real webhook receiver on 127.0.0.1:
a warning still raised after 24 h becomes minor (an audited automatic escalation), and minor alarms
unacknowledged for 24 h go into ONE daily digest to the supervisor on duty instead of a page each."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from gateway.contract import Severity
from server.adapters.sql.models import AlarmAuditRow
from server.domain import notify as routing
from server.domain.findings import Finding, Transition
from server.domain.site import Site
from tests.server.services.conftest import T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import raise_alarm, wire
from tests.support.wait import wait_for


def digest_site(smtp: Smtp, hook: Hook, tmp_path: Path) -> Site:
    """The response floor with the supervisor p-sup rostered on it (zone z2), with a contact of their own."""
    text = site_yaml(smtp.port, hook.port)
    text = text.replace("contacts:\n", f"contacts:\n  p-sup: ['json://127.0.0.1:{hook.port}/sup-on-duty']\n", 1)
    text += "  - {person: p-sup, shift: all, zone: z2}\n"
    return make_site(text, tmp_path)


def test_a_warning_still_raised_after_24h_becomes_minor_not_before_and_is_audited(db, smtp: Smtp, hook: Hook,
                                                                                  tmp_path: Path) -> None:
    _, sessions = db
    site = digest_site(smtp, hook, tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    kept = raise_alarm(alarms, "elec.voltage_out_of_range", "plug-z1-kettle", "z1", Severity.WARNING, clock(),
                       "Voltage out of range", "电压超出范围", 240.0)
    gone = raise_alarm(alarms, "elec.voltage_out_of_range", "plug-z2-heater", "z2", Severity.WARNING, clock())
    # a warning pages the owner its catalog row names (elec.voltage_out_of_range: facilities), once
    assert svc.tick(clock()) == 2 and {r["recipient"] for r in svc.log_of()} == {"facilities"}

    clock.advance(timedelta(hours=12))
    alarms.commit([Finding("elec.voltage_out_of_range", Transition.CLEAR, Severity.WARNING, "plug-z2-heater", "z2",
                           "r1", 220.0, "back in range", clock())], clock())
    clock.advance(timedelta(hours=11, minutes=59, seconds=59))  # 23 h 59 min 59 s after the raise
    svc.tick(clock())
    assert {a.id: a.severity for a in alarms.open_alarms()}[kept.id] is Severity.WARNING

    # a restart one second before: the step is a row, the new service takes it
    alarms2, svc2 = wire(sessions, site, clock, worker="w2")
    alarms2._open = dict(alarms._open)
    clock.advance(timedelta(seconds=1))  # exactly 24 h
    svc2.tick(clock())
    now_open = {a.id: a for a in alarms2.open_alarms()}
    assert now_open[kept.id].severity is Severity.MINOR
    assert now_open[gone.id].severity is Severity.WARNING, "cleared before 24 h: it did not persist"
    with sessions() as session:
        audit = session.scalars(select(AlarmAuditRow).where(AlarmAuditRow.alarm_id == kept.id)
                                .order_by(AlarmAuditRow.id)).all()
    assert [(r.action, r.who) for r in audit] == [("raise", "system"), ("escalate", "system")]
    assert "warning → minor" in audit[-1].why and "24 h" in audit[-1].why
    occurrences = now_open[kept.id].occurrences
    for _ in range(3):  # the escalation happened once: later ticks do not raise it again
        clock.advance(timedelta(seconds=1))
        svc2.tick(clock())
    assert {a.id: a for a in alarms2.open_alarms()}[kept.id].occurrences == occurrences
    svc2.deliver(clock())
    # the only push is the warning's first page at the raise; minor is not paged: it waits for the digest
    assert [(r["recipient"], r["created_at"]) for r in svc2.log_of(alarm_id=kept.id)] == [("facilities", T0)]


def test_minor_alarms_unacknowledged_24h_are_one_daily_digest_to_the_supervisor_on_duty(db, smtp: Smtp, hook: Hook,
                                                                                       tmp_path: Path) -> None:
    _, sessions = db
    site = digest_site(smtp, hook, tmp_path)
    clock = FakeClock(T0)  # 11:00 in Shanghai: today's digest time (09:00) has passed
    alarms, svc = wire(sessions, site, clock)
    assert svc.tick(clock()) == 0
    subjects = [("elec.unmetered_load", "strip-z1-00", "z1"), ("elec.unmetered_load", "strip-z2-01", "z2"),
                ("sensor.battery_low", "smoke-z1-01", "z1"), ("sensor.battery_low", "smoke-z2-01", "z2")]
    minor = [raise_alarm(alarms, rule, subject, zone, Severity.MINOR, clock(), f"{rule} on {subject}")
             for rule, subject, zone in subjects]
    acked = raise_alarm(alarms, "sensor.battery_low", "smoke-z1-02", "z1", Severity.MINOR, clock())
    svc.tick(clock())
    clock.advance(timedelta(hours=1))
    alarms.acknowledge(acked.id, "p-lead", "battery ordered", clock())  # type: ignore[arg-type]

    # 09:00 the next day: the alarms are 22 h old, not in that day's digest; at 24 h: no page of their own
    clock.advance(timedelta(hours=21))
    svc.tick(clock())
    clock.advance(timedelta(hours=2, seconds=1))
    svc.tick(clock())
    svc.deliver(clock())
    assert hook.received == [], "nothing before the digest: no page per minor alarm"

    # down over 09:00 the day after, back at 14:00: the digest is sent late, not skipped
    clock.advance(timedelta(days=1, hours=3))
    alarms2, svc2 = wire(sessions, site, clock, worker="w2")
    alarms2._open = dict(alarms._open)
    assert svc2.tick(clock()) == 1, "one message"
    svc2.deliver(clock())
    [message] = wait_for(lambda: hook.at("/sup-on-duty"), what="the digest")
    assert not hook.at("/supervisor"), "the supervisor on duty (roster), not the role's channel"
    day = routing.digest_day(clock(), site.tz).isoformat()
    assert day in message["title"] and "4 条" in message["title"]
    for alarm in minor:
        assert f"#alarm={alarm.id}" in message["message"]
    assert f"#alarm={acked.id}" not in message["message"], "acknowledged: not in the digest"
    assert "strip-z1-00" in message["message"] and "区域 坐席区一" in message["message"]

    # another restart the same day: not twice
    alarms3, svc3 = wire(sessions, site, clock, worker="w3")
    alarms3._open = dict(alarms2._open)
    assert svc3.tick(clock()) == 0
    clock.advance(timedelta(hours=5))
    assert svc3.tick(clock()) == 0

    # all acknowledged: no digest the next day
    for alarm in minor:
        alarms3.acknowledge(alarm.id, "p-sup", "on it", clock())  # type: ignore[arg-type]
    clock.advance(timedelta(days=1))
    assert svc3.tick(clock()) == 0
    svc3.deliver(clock())
    assert len(hook.received) == 1, hook.received
    print(f"\ndigest: 1 message, {len(message['message'].splitlines())} lines, {len(minor)} alarms; "
          f"{len(message['message'].encode())} bytes")
