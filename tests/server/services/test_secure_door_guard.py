"""Egress doors relock only by a manual reset after the all-clear (RULES.md §2.2 evac.all_clear, §3): a person
cannot secure an egress door while its floor is evacuating or a fire alarm is on in a zone that leaves by
it (safety before security, GB 50396 3.0.4). Real SQLite, the real rule engine, command and evacuation
services."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway import contract
from server.services.evacuation import EvacuationError
from tests.server.services.conftest import T0, FakeClock, make_site, site_yaml
from tests.server.services.helpers import response


def test_an_egress_door_is_not_secured_during_a_fire_or_an_evacuation(db, tmp_path: Path) -> None:
    _, sessions = db
    clock = FakeClock(T0)
    r = response(sessions, make_site(site_yaml(2525, 8080), tmp_path), clock)

    def secures() -> int:
        return sum(1 for c in r.sent if c.action is contract.Action.DOOR_SECURE)

    r.call(lambda e, t: e.on_reading("smoke-z1-01", t, {"smoke": True}, t))  # verifying: z1's doors released
    with pytest.raises(EvacuationError, match="fire"):
        r.evac.secure_door("door-z1-exit", "p-lead", "relock")
    assert secures() == 0

    ev = r.evac.start("f1", "z1", drill=False, trigger="manual", reason="fire in z1", who="p-safe")
    clock.advance(timedelta(minutes=5))
    r.call(lambda e, t: e.on_reading("smoke-z1-01", t, {"smoke": False}, t))
    r.call(lambda e, t: e.reset_zone("z1", t))
    with pytest.raises(EvacuationError, match="evacuat"):
        r.evac.secure_door("door-z2-exit", "p-lead", "relock")
    assert secures() == 0

    r.evac.all_clear(ev["id"], "p-ec", {"emergency_command"})
    r.evac.secure_door("door-z2-exit", "p-lead", "all clear: relock")
    assert secures() == 1
