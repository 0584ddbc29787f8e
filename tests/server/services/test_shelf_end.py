"""A shelf hides an alarm from pages until `shelved_until`; when it runs out the alarm comes back and
its escalation starts again (RULES.md §4), also after a restart. Real SQLite, SMTP and webhook."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from gateway.contract import Severity
from server.adapters.notify import AppriseSender
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.notifications import NotifyRepository
from server.adapters.sql.repository import AlarmRepository
from server.adapters.sql.silences import SilenceRepository
from server.domain.alarms import AlarmState
from server.services.alarms import AlarmService
from server.services.notify import NotificationService
from tests.server.services.conftest import BASE_URL, T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import by_id, raise_alarm, wire
from tests.support.wait import wait_for


def detector_fault(db, smtp: Smtp, hook: Hook, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A major fire.detector_fault just raised on the response test floor, with its alarm and paging services."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    alarm = raise_alarm(alarms, "fire.detector_fault", "smoke-z1-01", "z1", Severity.MAJOR, clock())
    assert alarm.id is not None
    return sessions, site, clock, alarms, svc, alarm



def test_a_shelf_stops_the_pages_and_its_end_pages_again_across_a_restart(db, smtp: Smtp, hook: Hook,
                                                                          tmp_path: Path) -> None:
    sessions, site, clock, alarms, svc, alarm = detector_fault(db, smtp, hook, tmp_path)
    svc.tick(clock())
    svc.deliver(clock())
    first = ["person:p-lead", "facilities"]  # fire.detector_fault: 领班 + facilities (RULES.md §2.2)
    assert sorted(r["recipient"] for r in svc.log_of(alarm_id=alarm.id)) == sorted(first)

    until = T0 + timedelta(minutes=30)
    alarms.shelve(alarm.id, "p-sup", until, "detector being replaced", clock())
    clock.advance(timedelta(minutes=6))
    assert svc.tick(clock()) == 0, "shelved: the 5-min step to the supervisor does not run"
    assert alarms.end_shelves(clock()) == [], "the shelf has not ended yet"

    # restart: the shelf is in the database, not in a thread
    alarms2 = AlarmService(AlarmWriter(sessions), AlarmRepository(sessions).open_alarms())
    svc2 = NotificationService(NotifyRepository(sessions), site, clock, AppriseSender(),
                               silences=SilenceRepository(sessions), base_url=BASE_URL, worker_id="w2",
                               open_alarms=alarms2.open_alarms, alarm_by_id=by_id(alarms2))
    alarms2.listeners.append(svc2.on_alarm)
    assert [a.state for a in alarms2.open_alarms()] == [AlarmState.SHELVED]
    clock.advance(until - clock())
    back = alarms2.end_shelves(clock())
    assert [(a.id, a.state, a.shelved_until) for a in back] == [(alarm.id, AlarmState.ACTIVE, None)]
    assert alarms2.end_shelves(clock()) == [], "a shelf ends once"
    assert svc2.tick(clock()) == len(first), "the first step again: the lead and facilities"
    svc2.deliver(clock())
    assert sorted(r["recipient"] for r in svc2.log_of(alarm_id=alarm.id)) == sorted(first * 2)
    wait_for(lambda: len(smtp.texts()) == 2, what="the lead's second mail")
    clock.advance(timedelta(minutes=5))
    assert svc2.tick(clock()) == 1, "unacknowledged again: the supervisor step runs 5 min after the shelf"
    svc2.deliver(clock())
    assert len(hook.at("/supervisor")) == 1
    audit = AlarmRepository(sessions).audit(alarm.id)
    assert [a.action for a in audit][-2:] == ["shelve", "unshelve"]


def test_an_acknowledged_alarm_off_its_shelf_keeps_its_unresolved_steps(db, smtp: Smtp, hook: Hook,
                                                                        tmp_path: Path) -> None:
    """fire.detector_fault (major): acknowledged at 1 min, shelved 2-20 min; back acknowledged, the
    30 min unresolved step to the supervisor still runs (RULES.md §4), and no repeat of the first page."""
    _, _, clock, alarms, svc, alarm = detector_fault(db, smtp, hook, tmp_path)
    assert svc.tick(clock()) == 2, "the first page: the lead and facilities"
    clock.advance(timedelta(minutes=1))
    alarms.acknowledge(alarm.id, "p-lead", "replacing it", clock())
    clock.advance(timedelta(minutes=1))
    alarms.shelve(alarm.id, "p-sup", T0 + timedelta(minutes=20), "detector being replaced", clock())
    clock.advance(timedelta(minutes=18))
    back = alarms.end_shelves(clock())
    assert [(a.id, a.state) for a in back] == [(alarm.id, AlarmState.ACKNOWLEDGED)]
    assert svc.tick(clock()) == 0, "acknowledged: no 5-min unacknowledged step, no repeat"
    clock.advance(timedelta(minutes=10))
    assert svc.tick(clock()) == 1, "30 min unresolved: the supervisor, as without the shelf"
    svc.deliver(clock())
    assert len(hook.at("/supervisor")) == 1
    assert sorted(r["recipient"] for r in svc.log_of(alarm_id=alarm.id)) == ["facilities", "person:p-lead",
                                                                              "supervisor"]


def test_an_alarm_acknowledged_on_its_shelf_keeps_its_unresolved_steps(db, smtp: Smtp, hook: Hook,
                                                                       tmp_path: Path) -> None:
    """Shelved while unacknowledged, acknowledged on the shelf (which ends it): the 30 min step runs."""
    _, _, clock, alarms, svc, alarm = detector_fault(db, smtp, hook, tmp_path)
    assert svc.tick(clock()) == 2
    clock.advance(timedelta(minutes=1))
    alarms.shelve(alarm.id, "p-sup", T0 + timedelta(hours=2), "detector being replaced", clock())
    clock.advance(timedelta(minutes=10))
    alarms.acknowledge(alarm.id, "p-lead", "replacing it", clock())
    assert svc.tick(clock()) == 0, "acknowledged: the 5-min unacknowledged step is not sent late"
    clock.advance(timedelta(minutes=20))
    assert svc.tick(clock()) == 1, "30 min unresolved: the supervisor"
