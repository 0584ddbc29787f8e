"""A push about a change of an alarm says when that change happened, not when the alarm was first raised."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.contract import Severity
from server.domain import notify as routing
from server.services.notify import info_of
from tests.server.services.conftest import T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import raise_alarm, wire
from tests.support.wait import wait_for


def test_a_major_overload_that_turns_critical_40_minutes_later_is_paged_with_the_time_it_turned(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """A supervisor woken at 03:40 by "critical" must not read "at 03:00" and think the page is 40 minutes
    old: the escalation's push says 11:40:00 (Asia/Shanghai), and the first push said 11:00:00."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)  # 03:00 UTC, 11:00 at the site
    alarms, svc = wire(sessions, site, clock)
    raise_alarm(alarms, "elec.strip_overload", "strip-z1-00", "z1", Severity.MAJOR, clock(), value=12.4)
    deliver(svc, clock)
    first = wait_for(lambda: smtp.texts() or None, what="the first push (mail to the shift lead)")
    assert "时间 11:00:00" in first[0][2]
    before = len(hook.at("/supervisor"))

    clock.advance(T0 + timedelta(minutes=40) - clock())
    turned = clock()
    alarm = raise_alarm(alarms, "elec.strip_overload", "strip-z1-00", "z1", Severity.CRITICAL, turned, value=13.1)
    assert alarm.raised_at == T0 and alarm.last_raised_at == turned
    deliver(svc, clock)
    pushed = wait_for(lambda: hook.at("/supervisor")[before:] or None, what="the escalation's push to the supervisor")
    text = pushed[-1]["message"]
    assert "|时间 11:40:00|" in text and "| at 11:40:00 |" in text, text
    assert "11:00:00" not in text
    assert routing.item(info_of(alarm), site).at == "11:40:00"


def deliver(svc: Any, clock: FakeClock) -> None:
    """Queue what is due and send it, past the group wait an overload's first page may be held for."""
    svc.tick(clock())
    for _ in range(int(routing.GROUP_WAIT / timedelta(milliseconds=500)) + 1):
        svc.deliver(clock())
        clock.advance(timedelta(milliseconds=500))
