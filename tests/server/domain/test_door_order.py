"""door.forced_open and the order a grant and a door-open reach the rules (issue 13 item 4).

The rule waits `grant_tolerance_s` (1 s) of server time after an open with no grant before it decides;
a grant heard by then makes the open a normal entry. A controller's own `door_forced` is raised at once.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from gateway.contract import Event, EventType, Severity
from server.domain.rules import RuleEngine
from tests.server.domain.harness import EXAMPLE, Floor, load_site

DOOR = "door-b"


def locked_door() -> Floor:
    f = Floor()
    f.read(DOOR, door_locked=True, door_open=False)
    return f


@pytest.mark.parametrize("after_s", [0.0, 0.1, 0.3, 1.5])
def test_grant_then_open_is_no_forced_door(after_s: float) -> None:
    f = locked_door()
    f.event(DOOR, EventType.ACCESS_GRANTED, badge="B1004")
    f.advance(after_s, step=0.1)
    f.event(DOOR, EventType.DOOR_OPENED)
    f.read(DOOR, door_open=True, door_locked=True)
    f.advance(10)
    assert not f.raised("door.forced_open")


@pytest.mark.parametrize("late_s", [0.0, 0.3, 0.9])
def test_open_heard_just_before_its_grant_is_no_forced_door(late_s: float) -> None:
    f = locked_door()
    f.read(DOOR, door_open=True)
    f.advance(late_s, step=0.1)
    f.event(DOOR, EventType.ACCESS_GRANTED, badge="B1004")
    f.advance(10)
    assert not f.raised("door.forced_open")


def test_request_to_exit_heard_just_after_the_open_counts_too() -> None:
    f = locked_door()
    f.read(DOOR, door_open=True)
    f.advance(0.5, step=0.5)
    f.event(DOOR, EventType.REQUEST_TO_EXIT)
    f.advance(10)
    assert not f.raised("door.forced_open")


def test_open_with_no_grant_is_raised_when_the_tolerance_runs_out() -> None:
    f = locked_door()
    opened = f.now
    f.read(DOOR, door_open=True)
    f.advance(0.5, step=0.5)
    assert not f.raised("door.forced_open")
    f.advance(0.5, step=0.5)
    [raised] = f.raised("door.forced_open", DOOR)
    assert raised.ts - opened == timedelta(seconds=1) and raised.severity is Severity.MAJOR


def test_grant_after_the_tolerance_does_not_excuse_the_open() -> None:
    f = locked_door()
    f.read(DOOR, door_open=True)
    f.advance(3)
    f.event(DOOR, EventType.ACCESS_GRANTED, badge="B1004")
    assert f.is_open("door.forced_open", DOOR)


def test_forced_door_that_shut_within_the_tolerance_is_still_raised_then_cleared() -> None:
    f = locked_door()
    f.read(DOOR, door_open=True)
    f.advance(0.5, step=0.5)
    f.read(DOOR, door_open=False)
    f.advance(2)
    assert f.raised("door.forced_open", DOOR) and f.cleared("door.forced_open", DOOR)
    assert not f.is_open("door.forced_open", DOOR)


def test_tolerance_is_server_time_whatever_the_edge_clock() -> None:
    """An edge clock 30 s behind: the open and the grant carry old timestamps but are heard 0.5 s apart."""
    f = Floor()
    skew = timedelta(seconds=30)
    f.call(f.engine.on_reading(DOOR, f.now - skew, {"door_locked": True, "door_open": False}, f.now))
    f.advance(5)
    f.call(f.engine.on_reading(DOOR, f.now - skew, {"door_open": True}, f.now))
    f.advance(0.5, step=0.5)
    grant = Event(device=DOOR, ts=f.now - skew, type=EventType.ACCESS_GRANTED, badge="B1004")
    f.call(f.engine.on_event(grant, f.now))
    f.advance(10)
    assert not f.raised("door.forced_open")


def test_an_undecided_open_survives_a_restart() -> None:
    f = locked_door()
    f.read(DOOR, door_open=True)
    restarted = RuleEngine(f.site)
    restarted.restore(json.loads(json.dumps(f.engine.snapshot())))
    f.engine = restarted
    f.advance(2)
    assert f.is_open("door.forced_open", DOOR)


def test_controllers_own_door_forced_is_raised_at_once() -> None:
    f = locked_door()
    f.event(DOOR, EventType.DOOR_FORCED)
    assert f.is_open("door.forced_open", DOOR)


def test_site_may_set_the_tolerance_to_zero() -> None:
    yaml = EXAMPLE.read_text(encoding="utf-8").replace(
        "  devices:\n    strip-b1:",
        "  devices:\n    door-b:\n      door.forced_open: {grant_tolerance_s: 0}\n    strip-b1:",
    )
    f = Floor(site=load_site(yaml))
    f.read(DOOR, door_locked=True, door_open=False)
    f.read(DOOR, door_open=True)
    assert f.is_open("door.forced_open", DOOR)
