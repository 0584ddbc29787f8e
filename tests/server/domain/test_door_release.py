"""door.fire_release_*: the read-back watch of an egress door that a fire alarm released (RULES.md §2.3)."""

from __future__ import annotations

from gateway.contract import EventType, Severity
from tests.server.domain.harness import Floor


def test_a_door_that_relocks_before_the_deadline_is_still_reported_when_it_stays_locked() -> None:
    """The door reads unlocked when the fire starts (someone just badged through), the release command
    never takes and the door relocks 2 s later. Nothing else comes from the controller: at the 10 s
    read-back deadline the door is locked, so the critical "open it by hand" alarm must be raised."""
    f = Floor()
    f.read("door-main", door_locked=False)
    f.read("smoke-a1", smoke=True)
    f.advance(2)
    f.event("door-main", EventType.DOOR_LOCKED)
    f.advance(15)
    assert f.severity("door.fire_release_zone", "door-main") is Severity.CRITICAL


def test_a_door_that_relocks_and_unlocks_again_in_time_raises_nothing() -> None:
    f = Floor()
    f.read("door-main", door_locked=False)
    f.read("smoke-a1", smoke=True)
    f.advance(2)
    f.read("door-main", door_locked=True)
    f.advance(3)
    f.read("door-main", door_locked=False)
    f.advance(15)
    assert not f.raised("door.fire_release_zone")
