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


def test_a_delayed_cut_follow_up_gives_the_time_the_alarm_was_last_raised(db, tmp_path: Path) -> None:
    """The shift lead holds the cut of an appliance alarm that turned critical 40 s after its first raise:
    the "cut held" push names the alarm at 11:00:40 (its last raise, docs/alarms.md), not 11:00:00."""
    from server.adapters.sql.commands import CommandRepository
    from server.adapters.sql.delayed_cuts import DelayedCutRepository
    from server.services.commands import CommandService
    from server.services.delayed_cuts import DelayedCutService
    from tests.server.services.helpers import by_id
    from tests.server.services.test_delayed_cut import cut_site

    _, sessions = db
    site = make_site(cut_site(9, delay_s=60), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    commands = CommandService(CommandRepository(sessions), site, clock, lambda _t, _c: None)
    cuts = DelayedCutService(DelayedCutRepository(sessions), site, clock, commands, lambda _d: None,
                             by_id(alarms), notify=svc)
    alarms.listeners.append(cuts.on_alarm)
    raise_alarm(alarms, "elec.high_power_appliance", "plug-s1-kettle", "z1", Severity.MAJOR, clock())
    svc.tick(clock())
    clock.advance(timedelta(seconds=40))
    alarm = raise_alarm(alarms, "elec.high_power_appliance", "plug-s1-kettle", "z1", Severity.CRITICAL, clock())
    assert alarm.id is not None and alarm.raised_at == T0 and alarm.last_raised_at == clock()
    assert cuts.hold("plug-s1-kettle", "p-lead", "kettle in use for the night shift", None), "the cut is held"
    held = [row for row in svc.log_of(alarm_id=alarm.id) if row["title"].startswith("[断电/cut held]")]
    assert held, svc.log_of(alarm_id=alarm.id)
    for row in held:
        assert "| at 11:00:40 |" in row["body"] and "11:00:00" not in row["body"], row["body"]
