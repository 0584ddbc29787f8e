"""A person starting a real evacuation while a drill runs on the floor (they saw a real fire) must get a real
one: a real fire during a drill is never treated as the drill (RULES.md §3). The drill ends ("system: real
evacuation"), a real evacuation starts with its unmarked notice and the fire zone's plug cut, and the floor
leaves drill mode in the rule engine, so a call point pressed next is real. Real SQLite, the real rule
engine, command and evacuation services."""

from __future__ import annotations

from pathlib import Path

from gateway import contract
from server.adapters.sql.alarms import AlarmWriter
from server.domain.evacuation import is_drill_text
from server.domain.rules import fire
from server.services.alarms import AlarmService
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml
from tests.server.services.helpers import response


def test_a_real_evacuation_started_during_a_drill_is_real(db, tmp_path: Path) -> None:
    _, sessions = db
    r = response(sessions, make_site(site_yaml(2525, 8080), tmp_path), FakeClock(T0))
    drill = r.evac.start("f1", None, drill=True, trigger="drill", reason="half-yearly drill", who="p-ec")
    assert r.engine.ctx.shared.get(fire.DRILL_KEY, {}).get("f1")
    made = len(r.findings)

    real = r.evac.start("f1", "z1", drill=False, trigger="manual", reason="real smoke seen in z1", who="p-safe")
    assert real["id"] != drill["id"] and not real["drill"], real
    assert r.evac.get(drill["id"])["state"] == "all_clear"
    assert not is_drill_text(real["message"]["zh"], real["message"]["en"])
    assert r.notices[-1].id == real["id"] and not r.notices[-1].drill
    assert {c.device for c in r.sent if c.action is contract.Action.RELAY_OFF} == {"plug-z1-kettle"}
    assert "f1" not in r.engine.ctx.shared.get(fire.DRILL_KEY, {}), "the floor is out of drill mode"
    notice = [f for f in r.findings[made:] if f.rule == "evac.notice" and f.is_raise]
    assert notice and not is_drill_text(notice[-1].message_zh, notice[-1].message), "the notice raised real"
    confirmed = [f for f in r.call(lambda e, t: e.report_fire("z2", t)) if f.rule == "fire.confirmed"]
    assert confirmed and not is_drill_text(confirmed[0].message_zh, confirmed[0].message), "a report next is real"


def test_the_drills_own_notice_joins_the_drill(db, tmp_path: Path) -> None:
    """With the alarm service wired, the drill's marked evac.notice comes back through the evacuation
    listener: it joins the drill and ends nothing."""
    _, sessions = db
    r = response(sessions, make_site(site_yaml(2525, 8080), tmp_path), FakeClock(T0),
                 alarms=AlarmService(AlarmWriter(sessions), []))
    drill = r.evac.start("f1", None, drill=True, trigger="drill", reason="half-yearly drill", who="p-ec")
    assert r.evac.get(drill["id"])["state"] == "active" and r.evac.active("f1") == r.evac.get(drill["id"])
    assert not [c for c in r.sent if c.action is contract.Action.RELAY_OFF], "a drill cuts no plug"
    assert all(n.drill for n in r.notices)
