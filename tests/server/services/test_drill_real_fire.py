"""A drill's fire.confirmed that a real fire takes over (the engine raises it again unmarked, RULES.md §3)
pages again from the first step, without the drill mark, even when the drill's pages were acknowledged
and the clock did not move between the acknowledgement and the real raise. Real SQLite and webhook receiver."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from gateway.contract import Severity
from server.domain.alarms import AlarmState
from server.domain.evacuation import is_drill_text
from tests.server.services.conftest import T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import raise_alarm, wire


def test_a_drills_fire_confirmed_taken_over_by_a_real_fire_pages_again_unmarked(db, smtp: Smtp, hook: Hook,
                                                                                tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock, is_drill=lambda a: is_drill_text(a.message_zh, a.message))
    drill = raise_alarm(alarms, "fire.confirmed", "z1", "z1", Severity.CRITICAL, clock(),
                        "[DRILL] Fire confirmed in z1 (manual report): evacuate the floor",
                        "【演练】z1区域火警确认,按演练疏散")
    assert drill.id is not None
    first = svc.tick(clock())
    assert first > 0
    svc.deliver(clock())
    drill_log = svc.log_of(alarm_id=drill.id)
    assert len(drill_log) == first and all(r["title"].startswith("【演练】") for r in drill_log), drill_log
    clock.advance(timedelta(seconds=20))
    alarms.acknowledge(drill.id, "p-lead", "演练", clock())

    real = raise_alarm(alarms, "fire.confirmed", "z1", "z1", Severity.CRITICAL, clock(),
                       "Fire confirmed in z1 (two detectors in the zone): evacuate the floor, call 119", "立即拨打119")
    assert (real.id, real.state, real.acknowledged_at) == (drill.id, AlarmState.ACTIVE, None)
    clock.advance(timedelta(seconds=1))  # the worker's next pass
    assert svc.tick(clock()) == first, "the first step again, with keys of its own (not the drill's)"
    svc.deliver(clock())
    again = [
        r for r in svc.log_of(alarm_id=drill.id) if r["id"] not in {d["id"] for d in drill_log}]
    assert len(again) == first and not [r["title"] for r in again if "【演练】" in r["title"] + r["body"]], again
    assert all("119" in r["body"] for r in again), again
    clock.advance(timedelta(seconds=61))
    assert svc.tick(clock()) > 0, "not acknowledged since the real raise: the 60 s step runs"
