"""The `evacuate` step (simulators/runner.py): people leave by request-to-exit (released doors: nobody
badges), and the wardens mark them safe through the server's API at the assembly point, a few minutes
later, all but a few; two people never leave. The same in a drill and in a real fire's evacuation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from simulators import runner
from simulators.model import DEMO_FLOOR, load_floor
from simulators.operator import parse_request
from simulators.runner import ScenarioRun
from simulators.scenario import Evacuate, Operator, load_scenario
from simulators.transport import NullTransport

MARK = "/api/evacuations/{evacuation}/roll-call/"


def play(drill: bool) -> tuple[dict[str, Any], list[tuple[float, str]], ScenarioRun]:
    """fire-drill on the demo floor, flat out; `drill=False` keeps only its evacuation (as a real fire's)."""
    floor = load_floor(DEMO_FLOOR)
    scenario = load_scenario("fire-drill", floor)
    if not drill:
        scenario = scenario.model_copy(update={"timeline": [s for s in scenario.timeline if isinstance(s, Evacuate)]})
    requests: list[tuple[float, str]] = []
    run = ScenarioRun(scenario, floor, NullTransport(), speed=0,
                      operator=lambda request: requests.append((run.world.t, request)))
    return run.run(), requests, run


@pytest.mark.parametrize("drill", [True, False], ids=["drill", "real fire"])
def test_the_floor_leaves_and_the_wardens_mark_most_of_it_safe_through_the_api(drill: bool) -> None:
    result, requests, run = play(drill)
    (step,) = [s for s in run.scenario.timeline if isinstance(s, Evacuate)]
    present = run.world.present(step.floor, step.at)
    assert len(present) > 100, "the demo floor's day shift"
    exits = [i for i in result["injections"] if i["action"] == "request_to_exit"]
    assert len(exits) == len(present) - runner.STAY_INSIDE
    assert all(step.at <= e["t"] <= step.at + step.over for e in exits)

    marks = [(t, parse_request(r)) for t, r in requests if MARK in r]
    assert [m for _, m in marks if m[0] != "POST"] == []
    marked = [path.rsplit("/", 1)[1] for _, (_, path, _) in marks]
    assert len(marked) == len(set(marked)) == len(present) - runner.STAY_INSIDE - runner.MISSED_AT_ASSEMBLY
    assert set(marked) < set(present)
    assert all(body == {"note": runner.ASSEMBLY_NOTE} for _, (_, _, body) in marks)
    low, high = runner.WALK_TO_ASSEMBLY_S
    first_exit, last_exit = exits[0]["t"], exits[-1]["t"]
    assert all(first_exit + low <= t <= last_exit + high for t, _ in marks), "a few minutes after leaving"
    assert [m["person"] for m in result["roll_call_marks"]] == marked
    assert all(m["performed"] for m in result["roll_call_marks"])
    if drill:  # the marks come before the all-clear, so the drill's report measures them
        all_clear = next(s.at for s in run.scenario.timeline if isinstance(s, Operator) and "all-clear" in s.request)
        assert max(t for t, _ in marks) < all_clear


def test_a_dry_run_lists_the_marks_as_not_performed() -> None:
    floor = load_floor(DEMO_FLOOR)
    result = ScenarioRun(load_scenario("fire-drill", floor), floor, NullTransport(), speed=0).run()
    assert result["roll_call_marks"] and not any(m["performed"] for m in result["roll_call_marks"])
    json.dumps(result)  # the injected log stays JSON
