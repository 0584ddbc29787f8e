"""RULES.md §3 drill mode in the engine: a manual call point pressed on a floor in a drill raises
fire.manual_report and fire.confirmed marked as the drill's, without the 119 prompt; a detector that
sees smoke during the drill is a real fire, with its prompt; after the drill, a call point is real."""

from __future__ import annotations

from gateway.contract import Event, EventType
from server.domain.evacuation import is_drill_text
from server.domain.rules import RuleEngine, fire
from tests.domain.harness import Floor


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
