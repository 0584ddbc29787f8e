"""A second fire after an evacuation's all-clear evacuates again. The evac.notice alarm of the first one is
cleared by the all-clear but stays open until someone acknowledges it (nobody is paged for it): the next
raise of the same notice is a new evacuation. mr.smoke evacuates the machine room at once (RULES.md §2.5)
with a notice keyed by the machine-room zone, which the all-clear must end too. Real SQLite, the real rule
engine, alarm, command and evacuation services."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from gateway import contract
from server.adapters.sql.alarms import AlarmWriter
from server.services.alarms import AlarmService
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml
from tests.server.services.helpers import Response, response

PROBE = "  - {id: probe-mr, kind: mr_probe, zone: mr, edge: e1}\n"


def setup(db, tmp_path: Path) -> tuple[FakeClock, Response]:  # type: ignore[no-untyped-def]
    _, sessions = db
    site = make_site(site_yaml(2525, 8080).replace("people:\n", PROBE + "people:\n", 1), tmp_path)
    clock = FakeClock(T0)
    return clock, response(sessions, site, clock, alarms=AlarmService(AlarmWriter(sessions), []))


def test_a_second_fire_on_the_floor_after_the_all_clear_evacuates_again(db, tmp_path: Path) -> None:
    clock, r = setup(db, tmp_path)
    call, evac, sent = r.call, r.evac, r.sent
    call(lambda e, t: e.report_fire("z1", t))
    first = evac.active("f1")
    assert first is not None and first["trigger"] == "evac.notice"
    clock.advance(timedelta(minutes=20))
    evac.all_clear(first["id"], "p-ec", {"emergency_command"})
    call(lambda e, t: e.reset_zone("z1", t))  # the latched alarms closed by a person
    assert evac.active("f1") is None

    clock.advance(timedelta(hours=3))
    before = len(sent)
    call(lambda e, t: e.report_fire("z2", t))
    second = evac.active("f1")
    assert second is not None and second["id"] != first["id"] and second["fire_zone"] == "z2"
    # t=0 of the second sequence is the second fire, not the first one 3 h 20 min earlier
    assert second["triggered_at"] >= clock.now - timedelta(minutes=1), (second["triggered_at"], clock.now)
    assert second["triggered_at"] <= second["issued_at"]
    assert "坐席区二" in second["message"]["zh"] and "坐席区一" not in second["message"]["zh"], second["message"]
    cut = {c.device for c in sent[before:] if c.action is contract.Action.RELAY_OFF}
    assert cut == {"plug-z2-heater"}, "the second fire's zone is cut, not the first one's"
    released = {c.device for c in sent[before:] if c.action is contract.Action.DOOR_RELEASE}
    assert released == {"door-z1-exit", "door-z2-exit"}


def test_the_all_clear_of_a_machine_room_evacuation_lets_the_next_smoke_evacuate_again(db, tmp_path: Path) -> None:
    clock, r = setup(db, tmp_path)
    call, evac, engine = r.call, r.evac, r.engine

    def smoke(on: bool) -> None:
        call(lambda e, t: e.on_reading("probe-mr", t, {"smoke": on}, t))

    smoke(True)
    first = evac.active("f1")
    assert first is not None and first["fire_zone"] == "mr"
    clock.advance(timedelta(minutes=2))
    smoke(False)
    clock.advance(timedelta(minutes=20))
    evac.all_clear(first["id"], "p-ec", {"emergency_command"})
    assert evac.active("f1") is None
    assert ("evac.notice", "mr") not in engine.open_conditions(), "the machine room's notice is over"

    clock.advance(timedelta(hours=2))
    smoke(True)
    second = evac.active("f1")
    assert second is not None and second["id"] != first["id"], "the next machine-room smoke evacuates again"
    assert second["triggered_at"] >= clock.now - timedelta(minutes=1), "t=0 is the second smoke"
