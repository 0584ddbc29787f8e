"""Issue 13 item 1: `fire-drill` on the demo floor is a drill, end to end with real parts.

simulators/scenarios/fire-drill.yaml played as the demo plays it: its operator steps (the drill's start,
the all-clear) done through the server's API by simulators/operator.py, a warden pressing the main manual
call point through the real edge, the people leaving by the egress doors. Everything the drill causes
must carry the drill mark: the evacuation, the alarms (fire.manual_report, fire.confirmed, evac.notice),
the retained notice, every push; and no push tells anyone to call 119.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.broker import EmbeddedBroker
from server.domain import notify as routing
from simulators import runner
from simulators.scenario import load_scenario
from tests.e2e.test_fire_demo_e2e import Run, demo_floor_run
from tests.server.services.conftest import Hook
from tests.support.wait import wait_for

SCENARIO = "fire-drill"
DRILL_RULES = {"fire.manual_report", "fire.confirmed", "evac.notice"}


@pytest.fixture
def drill(mosquitto: EmbeddedBroker, hook: Hook, tmp_path: Path) -> Run:  # type: ignore[misc]
    with demo_floor_run(SCENARIO, mosquitto, hook, tmp_path) as started:
        yield started


@pytest.mark.timeout(600)
def test_fire_drill_on_the_demo_floor_is_marked_a_drill_everywhere_and_never_prompts_119(drill: Run) -> None:
    api = drill.api
    at = {step.name: step.at for step in load_scenario(SCENARIO).timeline}

    # -- while it runs: the evacuation the page shows, and the retained notice floor displays get ----
    # the drill's start is a step of the scenario: a loaded machine sends it late, so wait for it, not its time
    (ev,) = wait_for(lambda: api.get("/api/evacuations").json(), timeout=120, what="the drill's evacuation")
    assert ev["drill"] is True and ev["state"] == "active" and ev["trigger"] == "drill", ev
    assert ev["message"]["zh"].startswith("【演练】") and ev["message"]["en"].startswith("[DRILL]")
    notice = drill.notice()
    assert notice["id"] == ev["id"] and notice["drill"] is True and notice["state"] == "active", notice
    assert notice["message"]["zh"].startswith("【演练】")

    # -- the whole scenario, its all-clear included --------------------------------------------------
    wait_for(lambda: drill.steps, timeout=300, what="the scenario's end")
    assert "error" not in drill.steps, drill.steps.get("error")
    performed = drill.steps["operator_steps"]
    assert [s["step"] for s in performed] == ["drill_start", "ack_call_point", "ack_confirmed", "all_clear"]
    assert all(s["performed"] for s in performed), performed
    evacuations = api.get("/api/evacuations").json()
    assert [(e["id"], e["drill"], e["state"]) for e in evacuations] == [(ev["id"], True, "all_clear")], (
        "the call point joined the drill: no second, real evacuation")
    cleared = drill.notice()
    assert cleared["state"] == "all_clear" and cleared["drill"] is True

    # -- the roll call: nobody badged out (released doors), the wardens marked people safe -------------
    marks = drill.steps["roll_call_marks"]
    assert marks and all(m["performed"] for m in marks), "the wardens' marks went through the API"
    roll = api.get(f"/api/evacuations/{ev['id']}/roll-call").json()
    status = {e["person"]: e["status"] for e in roll["people"]}
    marked = {m["person"] for m in marks} & set(status)
    assert len(marked) > 100, f"most of the day shift marked safe: {len(marked)} of {len(status)}"
    assert {p for p, st in status.items() if st == "safe"} == marked
    unmarked = {p: st for p, st in status.items() if p not in marked}
    # request-to-exit names nobody, so whoever was not marked is still inside (badged in) or unknown
    assert unmarked and set(unmarked.values()) <= {"inside", "unknown"}, unmarked
    report = api.get(f"/api/evacuations/{ev['id']}/report").json()
    accounted = {a["person"]: a for a in report["accounted"]}
    assert {p for p, a in accounted.items() if a["status"] == "safe"} == marked
    assert [u["person"] for u in report["unaccounted"]] == sorted(p for p, st in status.items() if st == "inside")
    assert report["unknown_on_roster"] == len([st for st in status.values() if st == "unknown"]) > 0
    assert report["people"] == len(report["accounted"]) + len(report["unaccounted"]) == len(status) - len(
        [st for st in status.values() if st == "unknown"])
    # each mark a few minutes after its person left (leave_floor: over 5 min), before the all-clear as the
    # server stamped it: a loaded machine sends the scenario's requests late, the all-clear with them
    low = runner.WALK_TO_ASSEMBLY_S[0]
    leave_from = at["leave_floor"] - drill.s(ev["issued_at"])
    all_clear = drill.s(evacuations[0]["all_clear_at"]) - drill.s(ev["issued_at"])
    for person in marked:
        assert leave_from + low - 5 <= accounted[person]["unaccounted_s"] <= all_clear, (person, accounted[person])
    for zone, clear_s in report["zone_known_clear_s"].items():
        people = [a for a in report["accounted"] if a["zone"] == zone]
        stuck = [u for u in report["unaccounted"] if u["zone"] == zone]
        assert clear_s == (None if stuck else max(a["unaccounted_s"] for a in people)), (zone, clear_s)
        unknown = [u for u in report["unknown"] if u["zone"] == zone]
        assert report["zone_clear_s"][zone] == (None if unknown else clear_s), (zone, report["zone_clear_s"])
    print(f"report: people {report['people']}, accounted {len(report['accounted'])}, unaccounted "
          f"{[u['person'] for u in report['unaccounted']]}, unknown on roster {report['unknown_on_roster']}, "
          f"zones clear {report['zone_clear_s']}")

    alarms = drill.alarms()
    caused = {a["rule"]: a for a in alarms if a["rule"] in DRILL_RULES}
    assert set(caused) == DRILL_RULES, sorted((a["rule"], a["subject"]) for a in alarms)
    assert caused["fire.manual_report"]["subject"] == "mcp-f3-main"
    for rule, alarm in caused.items():
        assert alarm["drill"] is True, (rule, alarm["message"], alarm["message_zh"])
        assert "119" not in alarm["message"] + alarm["message_zh"], alarm
    assert not [a for a in alarms if a["drill"] and a["rule"] not in DRILL_RULES], "only what the drill caused"
    for rule in ("fire.manual_report", "fire.confirmed"):  # acknowledged by the scenario's officer
        assert caused[rule]["acknowledged_at"] is not None, caused[rule]

    # -- pushes: each one the drill caused is marked; no push at all says 119 --------------------------
    pushes = drill.hook.received
    says_119 = [(p, b.get("title")) for p, b in pushes if "119" in f"{b.get('title', '')} {b.get('message', '')}"]
    assert not says_119, says_119
    related = [(p, b) for p, b in pushes if ev["id"] in b.get("title", "")
               or any(rule in b.get("title", "") for rule in DRILL_RULES)]
    assert not [(p, b["title"]) for p, b in related if not b["title"].startswith(routing.DRILL_PREFIX)]
    repeats = [(p, b["title"]) for p, b in related
               if "重复" in b.get("message", "") or "repeat" in b.get("message", "")]
    assert not repeats, f"acknowledged drill pages repeated: {repeats}"
    reporting = [b["message"] for p, b in related if p == "/role/information_reporting"]
    assert reporting and all("演练不对外报警" in m for m in reporting), reporting
    log = api.get("/api/notifications", params={"limit": 5000}).json()
    ids = {a["id"] for a in caused.values()}
    sent = [n for n in log if n["status"] == "sent" and (n["alarm_id"] in ids or n["ref"] == ev["id"])]
    assert len(sent) == len(related) > 0, "every push of the drill that was sent was received, once"
