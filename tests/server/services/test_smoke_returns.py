"""A latched smoke alarm that was acknowledged (and judged a false alarm) but not yet closed, whose detector
goes into alarm again later: that is a new fire alarm (RULES.md §0.5-3 never suppress a smoke alarm, §3).
It must page again from the first step, release the zone's egress doors again if a person secured them,
and restart the §3 60 s acknowledgement timer, not take the old acknowledgement. Real SQLite, the real
rule engine, alarm, notification, command, evacuation and fire-verification services, a webhook receiver."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from gateway import contract
from gateway.contract import Severity
from server.domain.alarms import AlarmState
from server.services.fire_verification import FireVerification
from tests.server.services.conftest import T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import response, wire


def test_smoke_returning_on_an_acknowledged_latched_alarm_is_a_new_fire_alarm(db, smtp: Smtp, hook: Hook,
                                                                               tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, notify = wire(sessions, site, clock)
    r = response(sessions, site, clock, alarms=alarms, notify=notify)
    engine, call, evac = r.engine, r.call, r.evac
    alarms.listeners.append(FireVerification(call, alarms.open_alarms).on_alarm)

    def smoke(on: bool) -> None:
        call(lambda e, t: e.on_reading("smoke-z1-01", t, {"smoke": on}, t))

    def releases() -> int:
        return sum(1 for c in r.sent if c.device == "door-z1-exit" and c.action is contract.Action.DOOR_RELEASE)

    smoke(True)
    first = next(a for a in alarms.open_alarms() if a.rule == "fire.smoke_alarm")
    assert first.id is not None
    pages = notify.tick(clock())
    assert pages > 0 and releases() == 1
    clock.advance(timedelta(seconds=20))
    alarms.acknowledge(first.id, "p-lead", "going to look", clock())
    clock.advance(timedelta(seconds=40))
    call(lambda e, t: e.fire_verdict("z1", False, "steam", t))
    smoke(False)
    assert not any(a.rule == "fire.confirmed" for a in alarms.open_alarms())
    evac.secure_door("door-z1-exit", "p-sup", "false alarm, door secured")
    notify.tick(clock())

    clock.advance(timedelta(minutes=30))  # the alarm is still open (acknowledged, latched): nobody closed it
    smoke(True)
    again = next(a for a in alarms.open_alarms() if a.rule == "fire.smoke_alarm")
    assert again.id == first.id
    assert (again.state, again.acknowledged_at) == (AlarmState.ACTIVE, None), "a new fire alarm, unacknowledged"
    assert again.raised_at == clock()
    clock.advance(timedelta(seconds=1))
    assert notify.tick(clock()) == pages, "the first step pages again"
    assert releases() == 2, "the zone's egress door, secured after the false alarm, is released again"
    assert not engine.zone_fire("z1").acknowledged, "the old acknowledgement does not stop the 60 s timer"
    clock.advance(timedelta(seconds=60))
    call(lambda e, t: e.tick(t))
    confirmed = next((a for a in alarms.open_alarms() if a.rule == "fire.confirmed"), None)
    assert confirmed is not None and confirmed.severity is Severity.CRITICAL
    assert "not acknowledged within 60 s" in confirmed.message


def test_smoke_returning_on_an_unacknowledged_latched_alarm_releases_a_door_secured_meanwhile(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """Nobody acknowledged the latched alarm, its detector reset and a person secured the zone's egress door
    (allowed: the zone is not in fire alarm then); the smoke comes back on the same, still-raised alarm: the
    door is released again, not left locked until the 10 s read-back raises a door alarm."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, notify = wire(sessions, site, clock)
    r = response(sessions, site, clock, alarms=alarms, notify=notify)
    call, evac = r.call, r.evac

    def smoke(on: bool) -> None:
        call(lambda e, t: e.on_reading("smoke-z1-01", t, {"smoke": on}, t))

    def door_actions() -> list[contract.Action]:
        return [c.action for c in r.sent if c.device == "door-z1-exit"]

    smoke(True)
    first = next(a for a in alarms.open_alarms() if a.rule == "fire.smoke_alarm")
    clock.advance(timedelta(seconds=20))
    smoke(False)
    assert evac.active("f1") is None
    clock.advance(timedelta(seconds=5))
    evac.secure_door("door-z1-exit", "p-sup", "detector reset, door secured")
    assert door_actions() == [contract.Action.DOOR_RELEASE, contract.Action.DOOR_SECURE]

    clock.advance(timedelta(seconds=10))
    smoke(True)
    again = next(a for a in alarms.open_alarms() if a.rule == "fire.smoke_alarm")
    assert (again.id, again.state) == (first.id, AlarmState.ACTIVE), "the same alarm, never acknowledged"
    assert door_actions()[-1] is contract.Action.DOOR_RELEASE, door_actions()
    assert door_actions().count(contract.Action.DOOR_RELEASE) == 2
    smoke(True)  # a plain re-trigger: the door is released already, no third release
    assert door_actions().count(contract.Action.DOOR_RELEASE) == 2
