"""access.visitor_unescorted (RULES.md §2.4): a visitor's entry is paired with their host's (or reception's)
entry at the same door within 30 s. The host badging OUT at that door is the host leaving, not an escort:
a visitor who comes in as the host goes out is alone on the floor. The 30 s are server time; and
access.visitor_overstay follows an approval extended after the entry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.contract import Event, EventType
from server.domain.rules.access import Approval
from tests.server.domain.harness import Floor

HOST = "B1004"  # p-chen, v-guest's host
VISITOR = "V9001"


def approved() -> Floor:
    f = Floor()
    f.call(f.engine.on_approvals([Approval("v-guest", f.now, f.now + timedelta(hours=1))], f.now))
    return f


@pytest.mark.parametrize(("first", "then", "host_direction", "escorted"), [
    (HOST, VISITOR, "out", False),  # the host left just before the visitor came in
    (VISITOR, HOST, "out", False),  # the host left just after: the pending escort is not cleared either
    (VISITOR, HOST, "in", True),  # the host came in with the visitor
])
def test_only_the_hosts_entry_escorts_the_visitor(first: str, then: str, host_direction: str,
                                                   escorted: bool) -> None:
    f = approved()
    for badge in (first, then):
        f.event("door-main", EventType.ACCESS_GRANTED, badge=badge,
                direction=host_direction if badge == HOST else "in")
        f.advance(10)
    f.advance(30)
    assert not f.cleared("access.visitor_unescorted", "v-guest")
    assert bool(f.raised("access.visitor_unescorted", "v-guest")) is not escorted


def test_a_door_controller_whose_clock_lags_gets_the_full_30_s_for_the_escort() -> None:
    """The escort window is judged in server time, as door.forced_open's grant tolerance: a controller
    5 min behind must not have its visitor called unescorted at the next tick, before the host badges in."""
    f = approved()
    lag = timedelta(minutes=5)
    f.call(f.engine.on_event(Event(device="door-main", ts=f.now - lag, type=EventType.ACCESS_GRANTED,
                                   badge=VISITOR, direction="in"), f.now))
    f.advance(10)
    assert not f.raised("access.visitor_unescorted", "v-guest"), "raised before the escort window ran out"
    f.call(f.engine.on_event(Event(device="door-main", ts=f.now - lag, type=EventType.ACCESS_GRANTED,
                                   badge=HOST, direction="in"), f.now))
    f.advance(40)
    assert not f.raised("access.visitor_unescorted", "v-guest")


def test_a_visit_extended_after_entry_still_raises_overstay_at_the_new_end() -> None:
    f = Floor()
    end = f.now + timedelta(minutes=30)
    f.call(f.engine.on_approvals([Approval("v-guest", f.now, end)], f.now))
    f.event("door-main", EventType.ACCESS_GRANTED, badge=VISITOR, direction="in")
    f.event("door-main", EventType.ACCESS_GRANTED, badge=HOST, direction="in")
    f.advance(20 * 60, step=60)
    f.call(f.engine.on_approvals([Approval("v-guest", f.now - timedelta(minutes=20), end + timedelta(hours=1))],
                                 f.now))
    f.advance(80 * 60, step=60)  # the new end (1 h 30 min after entry) plus 10 min of the 15 min grace
    assert not f.raised("access.visitor_overstay", "v-guest"), "raised inside the extended window"
    f.advance(6 * 60, step=60)
    assert f.raised("access.visitor_overstay", "v-guest"), "never raised after the extended window"
