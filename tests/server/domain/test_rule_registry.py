"""Rules register their own timers and shared state; the engine keeps no table of them."""

from __future__ import annotations

import json

import pytest

from gateway.contract import EventType
from server.domain.rules import RuleEngine
from server.domain.rules.base import SHARED_OBJECTS, SHARED_TABLES, TIMER_HANDLERS, handles_timers
from tests.server.domain.harness import Floor, load_site


def test_each_rule_module_registered_its_timers_and_shared_state() -> None:
    assert set(TIMER_HANDLERS) == {
        "sup",
        "fire.confirmed",
        "fire.detector_disabled",
        "door.fire_release_zone",
        "door.fire_release_floor",
        "elec.voltage_out_of_range",
        "access.denied_repeat",
        "access.visitor_unescorted",
        "access.visitor_overstay",
    }
    assert set(SHARED_TABLES) == {
        "elec.unmetered_load",
        "elec.voltage_out_of_range",
        "elec.relay_mismatch",
        "door.release",
        "fire.detector_disabled",
    }
    assert set(SHARED_OBJECTS) == {"access"}


def test_a_timer_has_one_handler() -> None:
    with pytest.raises(ValueError, match="already has a handler"):
        handles_timers("fire.confirmed")(lambda ctx, key, now: None)


def test_restore_rebuilds_shared_state_as_the_registered_types() -> None:
    f = Floor()
    f.read("plug-s001", current_a=1.0)  # the strip's sum of plug currents
    f.call(f.engine.on_relay_command("plug-s002", False, f.now))  # the commanded relay state
    f.event("door-main", EventType.ACCESS_DENIED, badge="X1", direction="in")  # the access book
    state = json.loads(json.dumps(f.engine.snapshot()))
    shared = f.engine.ctx.shared
    assert {"elec.unmetered_load", "elec.relay_mismatch", "access"} <= set(shared)

    restarted = RuleEngine(load_site())
    restarted.restore(state)
    for key, table in shared.items():
        rebuilt = restarted.ctx.shared[key]
        if key in SHARED_OBJECTS:
            assert type(rebuilt) is SHARED_OBJECTS[key]
        elif key in SHARED_TABLES:
            assert set(rebuilt) == set(table) and table
            assert {type(item) for item in rebuilt.values()} == {SHARED_TABLES[key]}
