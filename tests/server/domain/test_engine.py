"""Engine behaviour that is not one rule: time handling, restore, unknown devices, cost structure."""

from __future__ import annotations

import json
from datetime import timedelta

from gateway.contract import EventType
from server.domain.rules import RuleEngine
from server.domain.site import parse_site
from tests.server.domain.harness import DAY, Floor, load_site


def test_pending_duration_survives_restore_and_nothing_fires_twice() -> None:
    f = Floor()
    f.hold("strip-a1", 200, every=10, current_a=8.5)  # 200 s of the 300 s hold
    f.read("smoke-b1", smoke=True)  # an open condition
    state = json.loads(json.dumps(f.engine.snapshot()))  # really JSON-able

    restarted = RuleEngine(load_site())
    restarted.restore(state)
    now = f.now + timedelta(seconds=50)
    found = restarted.tick(now)
    found += restarted.on_reading("strip-a1", now, {"current_a": 8.5}, now)
    found += restarted.on_reading("smoke-b1", now, {"smoke": True}, now)
    assert not [x for x in found if x.rule in ("elec.strip_load_high", "fire.smoke_alarm")]
    later = now + timedelta(seconds=51)  # 301 s since the condition began, before the restart
    found = restarted.tick(later)
    assert [x.rule for x in found if x.rule == "elec.strip_load_high"] == ["elec.strip_load_high"]


def test_restore_keeps_fire_sequence_timer() -> None:
    f = Floor()
    f.read("smoke-b1", smoke=True)
    f.advance(30)
    restarted = RuleEngine(load_site())
    restarted.restore(json.loads(json.dumps(f.engine.snapshot())))
    found = restarted.tick(f.now + timedelta(seconds=31))
    assert "fire.confirmed" in {x.rule for x in found}  # not acknowledged within 60 s of the alarm


def test_future_readings_are_clamped_to_now() -> None:
    f = Floor()
    future = f.now + timedelta(hours=1)
    f.engine.on_reading("strip-a1", future, {"current_a": 8.5}, f.now)
    found = f.engine.on_reading("strip-a1", future + timedelta(minutes=10), {"current_a": 8.5}, f.now)
    assert not [x for x in found if x.rule == "elec.strip_load_high"]  # no time passed on the server
    assert all(x.ts <= f.now for x in found)


def test_old_reading_does_not_run_time_backwards() -> None:
    f = Floor()
    f.read("strip-a1", current_a=8.5)
    f.advance(100)
    past = f.now - timedelta(hours=2)
    f.engine.on_reading("strip-a1", past, {"current_a": 8.5}, f.now)
    f.advance(201)
    assert f.raised("elec.strip_load_high")


def test_buffered_readings_use_their_own_time() -> None:
    """Replayed from an edge buffer: 6 min of 90 % load, with timestamps, arriving at once."""
    f = Floor()
    base = f.now
    f.advance(600, step=60)
    found = []
    for i in range(0, 370, 10):
        found += f.engine.on_reading("strip-a1", base + timedelta(seconds=i), {"current_a": 9.0}, f.now)
    raised = [x for x in found if x.rule == "elec.strip_load_high"]
    assert raised and raised[0].ts == base + timedelta(seconds=300)


def test_unknown_device_produces_nothing() -> None:
    f = Floor()
    assert f.engine.on_reading("nobody", f.now, {"current_a": 99.0}, f.now) == []
    assert f.engine.on_edge_status("edge-nowhere", False, f.now) == []


def _site_with(sensors: int) -> str:
    lines = [
        "site: {id: big}",
        "floors: [{id: f1}]",
        "zones: [{id: z1, floor: f1}]",
        "devices:",
        "  - {id: strip-1, kind: strip_meter, zone: z1, edge: e1}",
        "  - {id: plug-1, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, strip: strip-1, seat: s1}",
    ]
    lines += [f"  - {{id: t-{i}, kind: temp_sensor, zone: z1, edge: e1}}" for i in range(sensors)]
    lines += [f"  - {{id: p-{i}, kind: smart_plug, zone: z1, edge: e1, rated_a: 16}}" for i in range(sensors)]
    return "\n".join(lines) + "\n"


def _evaluations_per_reading(sensors: int) -> tuple[int, int, int]:
    engine = RuleEngine(parse_site(_site_with(sensors), "big.yaml"))
    engine.tick(DAY)
    before = engine.evaluations
    engine.on_reading("strip-1", DAY, {"current_a": 3.0}, DAY)
    strip = engine.evaluations - before
    before = engine.evaluations
    engine.on_reading("plug-1", DAY, {"power_w": 100.0}, DAY)
    plug = engine.evaluations - before
    before = engine.evaluations
    engine.tick(DAY + timedelta(seconds=1))
    return strip, plug, engine.evaluations - before


def test_cost_per_reading_does_not_grow_with_devices() -> None:
    small, large = _evaluations_per_reading(1), _evaluations_per_reading(500)
    assert small == large
    strip, plug, tick = small
    # strip current_a: load_high, continuous_high, overload, unmetered. plug power_w: high_power,
    # after_shift (a seat plug), relay_mismatch (class unknown: no continuous_runtime). An idle tick runs
    # no rule at all.
    assert (strip, plug, tick) == (4, 3, 0)


def test_rules_are_indexed_by_kind() -> None:
    engine = RuleEngine(load_site())
    assert not any(r.startswith(("elec.", "door.", "mr.")) for r in engine.rules_of("smoke-a1"))
    assert "elec.continuous_runtime" in engine.rules_of("plug-prn1")
    assert "elec.continuous_runtime" not in engine.rules_of("plug-s001")  # essential PC plug
    assert "elec.residual_current" not in engine.rules_of("strip-a1")  # disabled by default
    assert "mr.leak" in engine.rules_of("leak-mr1")


def test_an_edge_saying_a_plug_went_quiet_waits_for_the_catalog_limit() -> None:
    """sup.sensor_offline is 3 intervals and at least 15 min since last heard: an edge's early
    device_offline (after 3 of its intervals) must not turn every short gap into an alarm."""
    f = Floor(supervise=True)
    f.read("strip-a1", current_a=1.0)
    f.event("strip-a1", EventType.DEVICE_OFFLINE)
    assert not f.is_open("sup.sensor_offline", "strip-a1")


def test_snapshot_round_trip_is_stable_for_every_kind_of_state() -> None:
    from server.domain.rules import Approval

    f = Floor()
    f.call(f.engine.on_approvals([Approval("v-guest", f.now, f.now + timedelta(hours=1))], f.now))
    f.event("door-main", EventType.ACCESS_GRANTED, badge="V9001", direction="in")
    f.event("door-b", EventType.ACCESS_DENIED, badge="X1")
    f.read("plug-s001", voltage_v=190.0, current_a=1.0)
    f.call(f.engine.on_relay_command("plug-s002", False, f.now))
    f.call(f.engine.set_detector_disabled("smoke-b1", True, f.now, f.now + timedelta(hours=2)))
    f.read("door-main", door_locked=True)
    f.read("smoke-a1", smoke=True)
    f.hold("mr-probe1", 120, every=30, temperature_c=27.5, humidity_pct=50.0)
    f.hold("temp-a3", 60, every=30, temperature_c=30.0)
    first = json.loads(json.dumps(f.engine.snapshot()))
    restarted = RuleEngine(load_site())
    restarted.restore(first)
    assert json.loads(json.dumps(restarted.snapshot())) == first
    # The restored engine knows what is open (no escort, door not released) and raises neither again.
    assert {("access.visitor_unescorted", "v-guest"), ("door.fire_release_zone", "door-main")} <= set(
        restarted.open_conditions()
    )
    found = restarted.tick(f.now + timedelta(seconds=40))
    assert not {"access.visitor_unescorted", "door.fire_release_zone"} & {x.rule for x in found}


def test_a_clear_carries_the_worst_value_seen_while_the_condition_held() -> None:
    f = Floor()
    f.read("strip-a1", current_a=11.0)  # strip-a1 is rated 10 A: major after 60 s over it
    f.advance(61)
    [raised] = f.raised("elec.strip_overload", "strip-a1")
    assert raised.value == 11.0 and raised.peak == 11.0
    for amps in (12.2, 11.5, 3.674):
        f.read("strip-a1", current_a=amps)
        f.advance(30)
    f.advance(60)
    [cleared] = f.cleared("elec.strip_overload", "strip-a1")
    assert cleared.value == 3.674 and cleared.peak == 12.2
