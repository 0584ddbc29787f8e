"""Inhibition (server/domain/notify.py): an open fire.confirmed holds back its zone's smoke pushes only while
its condition holds. A latched fire.confirmed whose fire is over (condition cleared, nobody closed it yet)
must not silence the zone's next smoke alarm: that is a new fire, paged at once. Real SQLite, webhook
receiver and SMTP server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from gateway.contract import Severity
from server.domain.findings import Finding, Transition
from tests.server.services.conftest import T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import raise_alarm, wire


def test_a_fire_confirmed_that_is_over_does_not_hold_back_the_next_smoke_page(db, smtp: Smtp, hook: Hook,
                                                                               tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    confirmed = raise_alarm(alarms, "fire.confirmed", "z1", "z1", Severity.CRITICAL, clock())
    assert confirmed.id is not None
    svc.tick(clock())
    clock.advance(timedelta(minutes=1))
    alarms.acknowledge(confirmed.id, "p-lead", "on it", clock())
    clock.advance(timedelta(minutes=30))
    alarms.commit([Finding("fire.confirmed", Transition.CLEAR, Severity.CRITICAL, "z1", "z1", "r1", None,
                           "Fire inputs in the zone are clear", clock())], clock())
    assert next(a for a in alarms.open_alarms() if a.id == confirmed.id).condition_active is False

    clock.advance(timedelta(hours=2))
    smoke = raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-02", "z1", Severity.CRITICAL, clock())
    assert svc.tick(clock()) > 0
    statuses = {r["recipient"]: r["status"] for r in svc.log_of(alarm_id=smoke.id)}
    assert statuses and "suppressed" not in statuses.values(), statuses
