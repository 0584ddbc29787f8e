"""A critical overload cuts its plug (RULES.md §2.1 power-cut policy) also when the shift lead acknowledged the
alarm while it was still major: the escalation to critical keeps the alarm acknowledged, and the cut must
not wait for an unacknowledged state. Real SQLite, the real alarm, command and overload-cut services."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from gateway import contract
from gateway.contract import Severity
from server.domain.alarms import AlarmState
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml
from tests.server.services.helpers import overload_cuts, raise_alarm


def test_an_overload_that_becomes_critical_after_its_major_alarm_was_acknowledged_is_cut(db, tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(site_yaml(2525, 8080), tmp_path)
    clock = FakeClock(T0)
    alarms, live, sent = overload_cuts(sessions, site, clock)

    live.reading("plug-z1-kettle", clock(), {"current_a": 8.5}, clock())
    major = raise_alarm(alarms, "elec.plug_overcurrent", "plug-z1-kettle", "z1", Severity.MAJOR, clock(), value=8.5)
    assert major.id is not None
    clock.advance(timedelta(seconds=30))
    alarms.acknowledge(major.id, "p-lead", "looking at it", clock())
    clock.advance(timedelta(seconds=60))
    live.reading("plug-z1-kettle", clock(), {"current_a": 10.6}, clock())
    critical = raise_alarm(alarms, "elec.plug_overcurrent", "plug-z1-kettle", "z1", Severity.CRITICAL, clock(),
                           value=10.6)
    assert (critical.id, critical.severity, critical.state) == (major.id, Severity.CRITICAL, AlarmState.ACKNOWLEDGED)
    assert [(c.device, c.action) for c in sent] == [("plug-z1-kettle", contract.Action.RELAY_OFF)]
