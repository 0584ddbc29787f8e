"""Smoke in the machine room (mr.smoke, RULES.md §2.5 and §3): the machine room is evacuated at once, its gas
or mist suppression may discharge, and the floor is evacuated as for a confirmed fire (§5 level II). Each
person gets the instruction meant for where they are: the people in the machine room (rostered there, or
its duty, 机房值班) are told to leave the machine room now; everyone else on the floor gets the floor's
evacuation notice ("leave calmly by the nearest safe exit"), never "leave the machine room", which tells an
operator at a seat nothing. Real SQLite, the real rule engine, alarm, command, evacuation and notification
services, a real webhook receiver."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from gateway import contract
from gateway.contract import Severity
from gateway.mqtt import Incoming
from server.adapters.sql.access_log import AccessLogRepository
from server.api.routes.alarms import AlarmViews
from server.domain.evacuation import is_drill_text
from server.domain.site import Site
from server.services.access_log import AccessLog
from server.services.alarms import AlarmService
from server.services.notify import NotificationService
from tests.server.services.conftest import T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import Response, raise_alarm, response, wire

PROBE = "  - {id: probe-mr, kind: mr_probe, zone: mr, edge: e1}\n"
MR_PERSON = "  - {id: p-mrd, name: 机房值班员, badge: B21, roles: [mr_duty]}\n"
MR_ROSTER = "  - {person: p-mrd, shift: all, zone: mr}\n"


def test_machine_room_smoke_tells_the_machine_room_to_leave_it_and_the_floor_to_evacuate(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    _, sessions = db
    text = site_yaml(smtp.port, hook.port).replace("people:\n", PROBE + "people:\n", 1)
    text = text.replace("contacts:\n", MR_PERSON + "contacts:\n", 1)
    text = text.replace("contacts:\n", f"contacts:\n  p-mrd: ['json://127.0.0.1:{hook.port}/mrd']\n", 1)
    text += MR_ROSTER
    site = make_site(text, tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock, is_drill=lambda a: is_drill_text(a.message_zh, a.message))
    r = response(sessions, site, clock, alarms=alarms, notify=svc)

    r.call(lambda e, t: e.on_reading("probe-mr", t, {"smoke": True}, t))
    ev = r.evac.active("f1")
    assert ev is not None and ev["fire_zone"] == "mr", ev
    svc.tick(clock())
    while svc.deliver(clock()):
        pass

    def bodies(path: str) -> list[str]:
        return [f"{b.get('title', '')}\n{b.get('message', '')}" for b in hook.at(path)]

    # the operators at their seats: the floor's evacuation, not the machine room's
    for path in ("/op1", "/op2"):
        got = [b for b in bodies(path) if ev["id"] in b]
        assert len(got) == 1, (path, bodies(path))
        assert "leave the machine room" not in got[0], (path, got[0])
        assert "nearest safe exit" in got[0] and "安全出口" in got[0], (path, got[0])
    # the retained notice on the floor's displays and sirens: the floor's words too
    assert "leave the machine room" not in r.notices[-1].message.en, r.notices[-1]
    assert "nearest safe exit" in r.notices[-1].message.en, r.notices[-1]
    # the person in the machine room (its duty): told to leave the machine room now, in both languages
    mrd = bodies("/mrd")
    assert any("leave the machine room now" in b and "撤离机房" in b for b in mrd), mrd
    # the machine-room duty role's own channel too (机房值班, paged by mr.smoke)
    mr = bodies("/mr")
    assert any("leave the machine room now" in b and "撤离机房" in b for b in mr), mr


def test_the_all_clear_holds_while_the_machine_room_probe_keeps_reporting_the_same_smoke(db, tmp_path: Path) -> None:
    """The on-site command gives the all-clear while the machine-room probe still reads smoke (the smoke of
    the discharge lingers; the probe reports it again every few seconds): the next report of that same
    smoke is no new fire and starts no second evacuation. Smoke that clears and comes back is a new one."""
    from server.adapters.sql.alarms import AlarmWriter
    from server.services.alarms import AlarmService

    _, sessions = db
    site = make_site(site_yaml(2525, 8080).replace("people:\n", PROBE + "people:\n", 1), tmp_path)
    clock = FakeClock(T0)
    r = response(sessions, site, clock, alarms=AlarmService(AlarmWriter(sessions), []))

    def smoke(on: bool) -> None:
        r.call(lambda e, t: e.on_reading("probe-mr", t, {"smoke": on}, t))

    smoke(True)
    first = r.evac.active("f1")
    assert first is not None
    clock.advance(timedelta(minutes=20))
    smoke(True)
    r.evac.all_clear(first["id"], "p-ec", {"emergency_command"})
    for _ in range(3):
        clock.advance(timedelta(seconds=10))
        smoke(True)
        assert r.evac.active("f1") is None, "the probe's next report of the same smoke undid the all-clear"
    clock.advance(timedelta(seconds=10))
    smoke(False)
    clock.advance(timedelta(minutes=5))
    smoke(True)
    second = r.evac.active("f1")
    assert second is not None and second["id"] != first["id"], "smoke that came back evacuates again"


def _mr_site(smtp: Smtp, hook: Hook, tmp_path: Path) -> Site:
    text = site_yaml(smtp.port, hook.port).replace("people:\n", PROBE + "people:\n", 1)
    text = text.replace("contacts:\n", MR_PERSON + "contacts:\n", 1)
    text = text.replace("contacts:\n", f"contacts:\n  p-mrd: ['json://127.0.0.1:{hook.port}/mrd']\n", 1)
    return make_site(text + MR_ROSTER, tmp_path)


def _told_to_leave_the_machine_room(hook: Hook, path: str, ev_id: str) -> bool:
    return any(ev_id in f"{b.get('title', '')}{b.get('message', '')}" and "leave the machine room now"
               in b.get("message", "") and "撤离机房" in b.get("message", "") for b in hook.at(path))


def test_machine_room_smoke_while_the_floor_is_already_evacuating_tells_the_machine_room_to_leave_it(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """The floor was evacuated by hand (smoke seen elsewhere) when the machine-room probe reports smoke: the
    floor's evacuation goes on (one per floor), and the people in the machine room and its duty are told to
    leave it now (its gas may discharge)."""
    _, sessions = db
    site = _mr_site(smtp, hook, tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock, is_drill=lambda a: is_drill_text(a.message_zh, a.message))
    r = response(sessions, site, clock, alarms=alarms, notify=svc)
    ev = r.evac.start("f1", None, drill=False, trigger="manual", reason="smoke seen at the seats", who="p-safe")
    svc.tick(clock())
    while svc.deliver(clock()):
        pass

    r.call(lambda e, t: e.on_reading("probe-mr", t, {"smoke": True}, t))
    assert r.evac.active("f1") is not None and r.evac.active("f1")["id"] == ev["id"]  # type: ignore[index]
    svc.tick(clock())
    while svc.deliver(clock()):
        pass
    assert _told_to_leave_the_machine_room(hook, "/mrd", ev["id"]), hook.at("/mrd")
    assert _told_to_leave_the_machine_room(hook, "/mr", ev["id"]), hook.at("/mr")
    # the operators at their seats were not told about the machine room
    assert not any("leave the machine room" in b.get("message", "") for p in ("/op1", "/op2") for b in hook.at(p))


def test_machine_room_smoke_during_a_drill_ends_the_drill_and_evacuates_for_real(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """Real smoke in the machine room while the floor runs a drill is a real fire: the drill ends, a real
    evacuation starts (unmarked, with the 119 prompt), the machine room is told to leave, and the drill's
    all-clear cannot end it."""
    from server.services.evacuation import EvacuationError

    _, sessions = db
    site = _mr_site(smtp, hook, tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock, is_drill=lambda a: is_drill_text(a.message_zh, a.message))
    r = response(sessions, site, clock, alarms=alarms, notify=svc)
    drill = r.evac.start("f1", None, drill=True, trigger="drill", reason="half-yearly drill", who="p-ec")
    svc.tick(clock())
    while svc.deliver(clock()):
        pass

    r.call(lambda e, t: e.on_reading("probe-mr", t, {"smoke": True}, t))
    real = r.evac.active("f1")
    assert real is not None and real["id"] != drill["id"], real
    assert not real["drill"] and real["fire_zone"] == "mr", real
    assert r.evac.get(drill["id"])["state"] == "all_clear"
    assert "【演练】" not in r.notices[-1].message.zh and not r.notices[-1].drill, r.notices[-1]
    svc.tick(clock())
    while svc.deliver(clock()):
        pass
    assert _told_to_leave_the_machine_room(hook, "/mrd", real["id"]), hook.at("/mrd")
    sent = [f"{b.get('title', '')}\n{b.get('message', '')}" for _, b in hook.received if real["id"] in str(b)]
    assert any("119" in b for b in sent), sent
    assert not any("【演练】" in b or "[DRILL]" in b for b in sent), sent
    with contextlib.suppress(EvacuationError):  # refused: the drill is over
        r.evac.all_clear(drill["id"], "p-ec", {"emergency_command"})
    assert r.evac.active("f1") is not None, "the drill's all-clear ended the real evacuation"


MR_DOOR = "  - {id: door-mr, kind: door_controller, zone: mr, door_type: machine_room, edge: e1}\n"


def _mr_door_floor(db: tuple[str, sessionmaker[Session]], smtp: Smtp, hook: Hook, tmp_path: Path
                   ) -> tuple[FakeClock, AlarmService, NotificationService, Response, AccessLog]:
    """The machine-room floor with the machine room's door and a contact for p-op3 (a technician here): its
    services as the runtime wires them, the evacuation told the open alarms and the access log's events."""
    text = site_yaml(smtp.port, hook.port).replace("people:\n", PROBE + MR_DOOR + "people:\n", 1)
    text = text.replace("contacts:\n", MR_PERSON + "contacts:\n", 1)
    text = text.replace("contacts:\n", f"contacts:\n  p-mrd: ['json://127.0.0.1:{hook.port}/mrd']\n"
                                       f"  p-op3: ['json://127.0.0.1:{hook.port}/op3']\n", 1)
    _, sessions = db
    site = make_site(text + MR_ROSTER, tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock, is_drill=lambda a: is_drill_text(a.message_zh, a.message))
    r = response(sessions, site, clock, alarms=alarms, notify=svc)
    r.evac.open_alarms = alarms.open_alarms
    access = AccessLog(AccessLogRepository(sessions), site)
    access.on_recorded = r.evac.on_access
    return clock, alarms, svc, r, access


def _badge(seq: int, badge: str, door: str, direction: str, at: datetime) -> Incoming:
    body = {"v": 1, "edge": "e1", "seq": seq, "sent_at": at.isoformat(),
            "events": [{"device": door, "ts": at.isoformat(), "type": "access_granted", "badge": badge,
                        "direction": direction}]}
    return Incoming(topic=contract.edge_topic("r1", "e1", contract.Channel.EVENTS),
                    payload=json.dumps(body).encode(), qos=1, retain=False, dup=False, mid=seq)


def _deliver(svc: NotificationService, clock: FakeClock) -> None:
    svc.tick(clock())
    while svc.deliver(clock()):
        pass


def test_a_person_who_badges_in_to_the_machine_room_during_its_evacuation_is_told_to_leave_it(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """p-op3 badges in at the machine room's door after its evacuation notice went out: they get "leave the
    machine room now" once (a second badge-in sends nothing more), in both languages, through the outbox,
    and the roll call has them inside the machine room."""
    clock, _, svc, r, access = _mr_door_floor(db, smtp, hook, tmp_path)

    r.call(lambda e, t: e.on_reading("probe-mr", t, {"smoke": True}, t))
    ev = r.evac.active("f1")
    assert ev is not None and ev["fire_zone"] == "mr", ev
    _deliver(svc, clock)
    assert hook.at("/op3") == [], "p-op3 was not in the machine room at the notice"

    clock.advance(timedelta(minutes=2))
    assert access.record(_badge(1, "B13", "door-mr", "in", clock())) == 1
    _deliver(svc, clock)
    assert len(hook.at("/op3")) == 1, hook.at("/op3")
    assert _told_to_leave_the_machine_room(hook, "/op3", ev["id"]), hook.at("/op3")
    clock.advance(timedelta(seconds=30))
    access.record(_badge(2, "B13", "door-mr", "in", clock()))
    _deliver(svc, clock)
    assert len(hook.at("/op3")) == 1, "told twice"
    line = next(e for e in r.evac.roll_call(ev["id"]) if e.person == "p-op3")
    assert (line.status, line.zone) == ("inside", "mr"), line


def test_a_badge_in_to_the_machine_room_outside_its_evacuation_tells_nobody_to_leave(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """The guard: a badge-in at the machine room with no evacuation, or during one that smoke elsewhere
    started (the machine room is not evacuated), sends no machine-room instruction."""
    clock, _, svc, r, access = _mr_door_floor(db, smtp, hook, tmp_path)
    access.record(_badge(1, "B13", "door-mr", "in", clock()))
    r.evac.start("f1", "z1", drill=False, trigger="manual", reason="smoke seen at the seats", who="p-safe")
    clock.advance(timedelta(minutes=1))
    access.record(_badge(2, "B13", "door-mr", "in", clock()))
    _deliver(svc, clock)
    assert not any("leave the machine room" in b.get("message", "") for _, b in hook.received), hook.received


def test_the_machine_room_stays_not_clear_after_the_all_clear_while_its_probe_reads_smoke_or_nothing(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """The floor's all-clear is given while the machine-room probe still reads smoke: it stands for the floor,
    but the answer, the retained all-clear notice and the smoke alarm's card say the machine room is not
    clear, its duty keeps the instruction to stay out, and a person badging in is told to leave it. The probe
    reading clear ends that; offline after its smoke, it holds the room again (nobody can tell)."""
    clock, alarms, svc, r, access = _mr_door_floor(db, smtp, hook, tmp_path)
    views = AlarmViews(r.evac.site, None, r.commands, clock, alarms.open_alarms)  # type: ignore[arg-type]

    def smoke(on: bool) -> None:
        r.call(lambda e, t: e.on_reading("probe-mr", t, {"smoke": on}, t))

    def card() -> str:
        alarm = next(a for a in alarms.open_alarms() if a.rule == "mr.smoke")
        shown = views.public(alarm)
        return f"{shown.message}\n{shown.message_zh}"

    smoke(True)
    ev = r.evac.active("f1")
    assert ev is not None
    _deliver(svc, clock)
    clock.advance(timedelta(minutes=20))
    smoke(True)
    done = r.evac.all_clear(ev["id"], "p-ec", {"emergency_command"})
    assert done["state"] == "all_clear" and r.evac.active("f1") is None, "the floor's all-clear stands"
    assert [(h["zone"], h["reading"]) for h in done["machine_rooms_not_clear"]] == [("mr", "smoke")], done
    assert r.notices[-1].state is contract.EvacuationState.ALL_CLEAR, r.notices[-1]
    assert "not clear" in r.notices[-1].message.en and "未解除" in r.notices[-1].message.zh, r.notices[-1]
    assert "is not clear" in card() and "未解除" in card(), card()
    _deliver(svc, clock)
    assert any("is not clear" in b.get("message", "") and "leave the machine room now" in b.get("message", "")
               for b in hook.at("/mrd")), hook.at("/mrd")

    clock.advance(timedelta(minutes=1))
    access.record(_badge(1, "B13", "door-mr", "in", clock()))
    _deliver(svc, clock)
    told = hook.at("/op3")
    assert len(told) == 1 and "leave the machine room now" in told[0]["message"], told
    assert "is not clear" in told[0]["message"] and "撤离机房" in told[0]["message"], told

    clock.advance(timedelta(seconds=10))
    smoke(False)  # the probe reads clear: the machine room is clear
    assert "not clear" not in card(), card()
    assert r.evac.machine_rooms_not_clear("f1") == []
    raise_alarm(alarms, "sup.probe_offline", "probe-mr", "mr", Severity.MAJOR, clock())
    assert [h.reading for h in r.evac.machine_rooms_not_clear("f1")] == ["offline"], "blind since its smoke"
    assert "offline" in card(), card()


def test_a_person_told_during_the_evacuation_who_badges_in_again_after_the_all_clear_is_told_to_stay_out(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """p-op3 is in the machine room at its smoke and told to leave it; they badge out; the all-clear is given
    while the probe still reads smoke; they badge in again: told the machine room is not clear (the
    evacuation's own "leave the machine room" message to them is another one, not a repeat of this)."""
    clock, _, svc, r, access = _mr_door_floor(db, smtp, hook, tmp_path)
    access.record(_badge(1, "B13", "door-mr", "in", clock()))
    clock.advance(timedelta(minutes=1))
    r.call(lambda e, t: e.on_reading("probe-mr", t, {"smoke": True}, t))
    ev = r.evac.active("f1")
    assert ev is not None
    _deliver(svc, clock)
    assert _told_to_leave_the_machine_room(hook, "/op3", ev["id"]), hook.at("/op3")
    clock.advance(timedelta(minutes=1))
    access.record(_badge(2, "B13", "door-mr", "out", clock()))
    clock.advance(timedelta(minutes=20))
    r.call(lambda e, t: e.on_reading("probe-mr", t, {"smoke": True}, t))
    r.evac.all_clear(ev["id"], "p-ec", {"emergency_command"})
    _deliver(svc, clock)
    before = len(hook.at("/op3"))

    clock.advance(timedelta(minutes=1))
    access.record(_badge(3, "B13", "door-mr", "in", clock()))
    _deliver(svc, clock)
    told = hook.at("/op3")[before:]
    assert len(told) == 1 and "is not clear" in told[0]["message"], hook.at("/op3")
    assert "leave the machine room now" in told[0]["message"] and "未解除" in told[0]["message"], told


def test_someone_with_no_channel_who_badges_in_to_the_evacuated_machine_room_is_paged_to_its_duty_and_command(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """A visitor (no channel of their own, nobody can tell them to leave) badges in at the machine room's door
    during its evacuation: the machine-room duty and the on-site command are told who went in, once per
    person and evacuation (a second badge-in, or one after the all-clear while the room is not clear, sends
    nothing more), in both languages, through the outbox."""
    clock, _, svc, r, access = _mr_door_floor(db, smtp, hook, tmp_path)
    r.call(lambda e, t: e.on_reading("probe-mr", t, {"smoke": True}, t))
    ev = r.evac.active("f1")
    assert ev is not None
    _deliver(svc, clock)

    def paged(path: str) -> list[str]:  # the alarm's own repeats go there too
        return [b.get("message", "") for b in hook.at(path) if "访客" in b.get("message", "")]

    clock.advance(timedelta(minutes=2))
    access.record(_badge(1, "V1", "door-mr", "in", clock()))
    _deliver(svc, clock)
    for path in ("/mr", "/osc"):
        got = paged(path)
        assert len(got) == 1, (path, got)
        assert "访客" in got[0] and "badged in to the evacuated machine room" in got[0], (path, got)
        assert "刷卡进入" in got[0] and ev["id"] in got[0], (path, got)

    clock.advance(timedelta(minutes=1))
    access.record(_badge(2, "V1", "door-mr", "in", clock()))
    clock.advance(timedelta(minutes=20))
    r.call(lambda e, t: e.on_reading("probe-mr", t, {"smoke": True}, t))
    r.evac.all_clear(ev["id"], "p-ec", {"emergency_command"})
    assert r.evac.machine_rooms_not_clear("f1"), "the room is still not clear"
    clock.advance(timedelta(minutes=1))
    access.record(_badge(3, "V1", "door-mr", "in", clock()))
    _deliver(svc, clock)
    assert len(paged("/mr")) == 1 and len(paged("/osc")) == 1, "paged twice for one person in one evacuation"
