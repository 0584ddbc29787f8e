"""RULES.md §3 drill mode in the engine: a manual call point pressed on a floor in a drill raises
fire.manual_report and fire.confirmed marked as the drill's, without the 119 prompt; a detector that
sees smoke during the drill is a real fire, with its prompt; after the drill, a call point is real.
A drill's fire.confirmed that real smoke or heat then backs is raised again unmarked, with 119, and the
alarm takes the new words (server/domain/alarms.py), so it pages as a real fire."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.contract import Event, EventType, Severity
from server.domain import alarms
from server.domain.evacuation import is_drill_text
from server.domain.findings import Transition
from server.domain.rules import RuleEngine, fire
from tests.server.domain.harness import Floor


def texts(f: Floor, rule: str, subject: str) -> tuple[str, str]:
    raised = f.raised(rule, subject)
    assert raised, f"{rule} {subject} was not raised"
    return raised[-1].message_zh, raised[-1].message


def test_a_call_point_during_a_drill_is_the_drills_and_prompts_no_119() -> None:
    f = Floor()
    fire.set_drill(f.engine.ctx, "f1", True)
    f.event("mcp-a1", EventType.MANUAL_CALL_POINT)
    for rule, subject in (("fire.manual_report", "mcp-a1"), ("fire.confirmed", "ops-a")):
        zh, en = texts(f, rule, subject)
        assert is_drill_text(zh, en) and zh.startswith("【演练】") and en.startswith("[DRILL] "), (rule, zh, en)
        assert "119" not in zh + en


def test_smoke_seen_during_a_drill_is_a_real_fire_with_its_119_prompt() -> None:
    f = Floor()
    fire.set_drill(f.engine.ctx, "f1", True)
    f.read("smoke-a1", smoke=True)
    f.event("mcp-a1", EventType.MANUAL_CALL_POINT)
    zh, en = texts(f, "fire.confirmed", "ops-a")
    assert not is_drill_text(zh, en) and "119" in zh and "call 119" in en


def test_after_the_drill_a_call_point_is_a_real_fire() -> None:
    f = Floor()
    fire.set_drill(f.engine.ctx, "f1", True)
    fire.set_drill(f.engine.ctx, "f1", False)
    f.event("mcp-a1", EventType.MANUAL_CALL_POINT)
    zh, en = texts(f, "fire.confirmed", "ops-a")
    assert not is_drill_text(zh, en) and "119" in zh


def test_the_drill_survives_a_restart_of_the_engine() -> None:
    f = Floor()
    fire.set_drill(f.engine.ctx, "f1", True)
    restarted = RuleEngine(f.site)
    restarted.restore(f.engine.snapshot())
    found = restarted.on_event(Event(device="mcp-a1", ts=f.now, type=EventType.MANUAL_CALL_POINT), f.now)
    confirmed = [x for x in found if x.rule == "fire.confirmed"]
    assert confirmed and is_drill_text(confirmed[0].message_zh, confirmed[0].message)


def drill_call_point() -> Floor:
    """A drill on f1 as the evacuation service starts it (its marked evac.notice), then a call point."""
    f = Floor()
    fire.set_drill(f.engine.ctx, "f1", True)
    f.engine.ctx.set("evac.notice", "f1", Severity.CRITICAL, None, None, f.now, "[DRILL] evacuate", "【演练】疏散")
    f.findings += f.engine.ctx.take()
    f.event("mcp-a1", EventType.MANUAL_CALL_POINT)
    assert is_drill_text(*texts(f, "fire.confirmed", "ops-a"))
    return f


def test_two_detectors_after_a_drills_call_point_raise_fire_confirmed_again_real_with_119() -> None:
    f = drill_call_point()
    f.read("smoke-a1", smoke=True)
    f.read("smoke-a2", smoke=True)
    confirmed = f.raised("fire.confirmed", "ops-a")
    assert len(confirmed) == 2, "raised again while open: ctx.set alone stays silent"
    zh, en = confirmed[-1].message_zh, confirmed[-1].message
    assert not is_drill_text(zh, en) and "119" in zh and "call 119" in en, (zh, en)
    assert confirmed[-1].severity is Severity.CRITICAL and confirmed[-1].transition is Transition.RAISE
    notices = f.raised("evac.notice", "f1")
    assert len(notices) == 2 and not is_drill_text(notices[-1].message_zh, notices[-1].message), notices
    assert "f1" not in f.engine.ctx.shared.get(fire.DRILL_KEY, {}), "a real fire ends the floor's drill"


def test_one_detector_after_a_drills_call_point_is_already_a_real_fire() -> None:
    """fire.confirmed open holds back the smoke alarm's pages (notify.inhibited): one detector is enough."""
    f = drill_call_point()
    f.read("smoke-a1", smoke=True)
    zh, en = texts(f, "fire.confirmed", "ops-a")
    assert not is_drill_text(zh, en) and "119" in zh, (zh, en)


def test_heat_after_a_drills_call_point_is_a_real_fire() -> None:
    f = drill_call_point()
    f.read("temp-a1", temperature_c=60.0)
    assert f.raised("fire.heat_alarm", "temp-a1")
    zh, en = texts(f, "fire.confirmed", "ops-a")
    assert not is_drill_text(zh, en) and "119" in zh, (zh, en)


def test_the_drills_confirmation_is_raised_only_once_more() -> None:
    f = drill_call_point()
    f.read("smoke-a1", smoke=True)
    f.read("smoke-a2", smoke=True)
    f.advance(200)
    assert len(f.raised("fire.confirmed", "ops-a")) == 2
    assert len(f.raised("evac.notice", "f1")) == 2


def test_a_drills_confirmation_survives_a_restart_and_still_turns_real() -> None:
    f = drill_call_point()
    restarted = RuleEngine(f.site)
    restarted.restore(f.engine.snapshot())
    found = restarted.on_reading("smoke-a1", f.now, {"smoke": True}, f.now)
    confirmed = [x for x in found if x.rule == "fire.confirmed"]
    assert confirmed and not is_drill_text(confirmed[0].message_zh, confirmed[0].message)


def test_the_alarm_of_a_drill_takes_the_real_fires_words_and_pages_again() -> None:
    f = drill_call_point()
    drill_raise = f.raised("fire.confirmed", "ops-a")[-1]
    alarm, _ = alarms.apply(None, drill_raise, f.now)
    assert alarm is not None
    alarm, _ = alarms.acknowledge(alarm, "s-001", "drill", f.now)
    f.now += timedelta(seconds=30)
    f.read("smoke-a1", smoke=True)
    real, effects = alarms.apply(alarm, f.raised("fire.confirmed", "ops-a")[-1], f.now)
    assert real is not None and real.state is alarms.AlarmState.ACTIVE and real.acknowledged_at is None
    assert real.raised_at == f.now and not is_drill_text(real.message_zh, real.message) and "119" in real.message_zh
    assert [e.why for e in effects if isinstance(e, alarms.Notify)] == ["raised"]
    again, effects = alarms.apply(real, f.raised("fire.confirmed", "ops-a")[-1], f.now)
    assert again is not None and again.raised_at == f.now and not [e for e in effects if isinstance(e, alarms.Notify)]


def test_a_call_point_pressed_while_a_detector_elsewhere_on_the_floor_sees_smoke_is_a_real_fire() -> None:
    """During a drill, a detector in alarm anywhere on the floor is a real fire: a call point pressed in the
    next zone then reports that fire (confirmed at once, with 119), not the drill."""
    f = Floor()
    fire.set_drill(f.engine.ctx, "f1", True)
    f.read("smoke-b1", smoke=True)  # ops-b: real smoke, its §3 sequence still verifying
    f.event("mcp-a1", EventType.MANUAL_CALL_POINT)  # ops-a, next to it
    for rule, subject in (("fire.manual_report", "mcp-a1"), ("fire.confirmed", "ops-a")):
        zh, en = texts(f, rule, subject)
        assert not is_drill_text(zh, en), (rule, zh, en)
    zh, en = texts(f, "fire.confirmed", "ops-a")
    assert "119" in zh and "call 119" in en
    assert "f1" not in f.engine.ctx.shared.get(fire.DRILL_KEY, {}), "the real fire ends the drill on the floor"


def _press_after_all_clear(drill: bool) -> Floor:
    """A call point pressed (in a drill or a real fire), the evacuation's all-clear by emergency command
    (the latched alarms are still open: nobody closed them yet), then the same call point pressed again."""
    f = Floor()
    if drill:
        fire.set_drill(f.engine.ctx, "f1", True)
    f.event("mcp-a1", EventType.MANUAL_CALL_POINT)
    assert f.is_open("evac.notice", "f1")
    f.advance(600, step=30)
    f.call(f.engine.all_clear("f1", {"emergency_command"}, f.now))
    fire.set_drill(f.engine.ctx, "f1", False)  # as the evacuation service's all-clear does
    assert not f.is_open("evac.notice", "f1")
    f.advance(3600, step=60)
    f.findings.clear()
    f.event("mcp-a1", EventType.MANUAL_CALL_POINT)
    return f


@pytest.mark.parametrize("drill", [True, False], ids=["after-a-drill", "after-a-real-fire"])
def test_a_call_point_pressed_after_the_all_clear_is_a_new_real_fire(drill: bool) -> None:
    f = _press_after_all_clear(drill)
    for rule, subject in (("fire.manual_report", "mcp-a1"), ("fire.confirmed", "ops-a"), ("evac.notice", "f1")):
        zh, en = texts(f, rule, subject)
        assert not is_drill_text(zh, en), (rule, zh, en)
    zh, en = texts(f, "fire.confirmed", "ops-a")
    assert "119" in zh and "call 119" in en


def test_smoke_in_the_machine_room_ends_the_floors_drill_for_the_call_points_pressed_after_it() -> None:
    """Machine-room smoke during a drill evacuates the floor for real (its own evac.notice). A call point
    pressed there afterwards, when the probe already reads clear again, reports that real fire: with the
    119 prompt, never marked as the ended drill's."""
    f = Floor()
    fire.set_drill(f.engine.ctx, "f1", True)
    f.read("mr-probe1", smoke=True)
    assert f.raised("evac.notice", "mr"), "the machine room's own notice"
    f.read("mr-probe1", smoke=False)
    f.event("mcp-a1", EventType.MANUAL_CALL_POINT)
    zh, en = texts(f, "fire.manual_report", "mcp-a1")
    assert not is_drill_text(zh, en), (zh, en)
