"""access.visitor_unescorted (RULES.md §2.4): a visitor's entry is paired with their host's (or reception's)
entry at the same door within 30 s. The host badging OUT at that door is the host leaving, not an escort:
a visitor who comes in as the host goes out is alone on the floor."""

from __future__ import annotations

from datetime import timedelta

from gateway.contract import EventType
from server.domain.rules.access import Approval
from tests.server.domain.harness import Floor

HOST = "B1004"  # p-chen, v-guest's host
VISITOR = "V9001"


def approved() -> Floor:
    f = Floor()
    f.call(f.engine.on_approvals([Approval("v-guest", f.now, f.now + timedelta(hours=1))], f.now))
    return f


def test_a_host_leaving_just_before_the_visitor_comes_in_is_no_escort() -> None:
    f = approved()
    f.event("door-main", EventType.ACCESS_GRANTED, badge=HOST, direction="out")
    f.advance(5)
    f.event("door-main", EventType.ACCESS_GRANTED, badge=VISITOR, direction="in")
    f.advance(31)
    assert f.raised("access.visitor_unescorted", "v-guest"), "the host's exit counted as the visitor's escort"


def test_a_host_leaving_just_after_the_visitor_came_in_is_no_escort() -> None:
    f = approved()
    f.event("door-main", EventType.ACCESS_GRANTED, badge=VISITOR, direction="in")
    f.advance(10)
    f.event("door-main", EventType.ACCESS_GRANTED, badge=HOST, direction="out")
    f.advance(21)
    assert not f.cleared("access.visitor_unescorted", "v-guest")
    assert f.raised("access.visitor_unescorted", "v-guest"), "the host's exit cleared the pending escort"


def test_the_host_coming_in_with_the_visitor_is_an_escort() -> None:
    f = approved()
    f.event("door-main", EventType.ACCESS_GRANTED, badge=VISITOR, direction="in")
    f.advance(10)
    f.event("door-main", EventType.ACCESS_GRANTED, badge=HOST, direction="in")
    f.advance(40)
    assert not f.raised("access.visitor_unescorted", "v-guest")
