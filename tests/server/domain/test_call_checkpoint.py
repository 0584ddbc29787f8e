"""Every kind of call other threads hand to the engine (`Ingest.call`) is covered by the incremental
checkpoint: the rows saved before the call plus the `delta()` after it restore exactly the state that a
full dump of every device gives. Ingest relies on this to checkpoint a call without re-dumping the site
(`ctx.devices` records every device looked up; zone fire, shared state and timers are compared at every
delta). The control call changes a device behind that record, and the same check must catch it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.contract import Severity
from server.domain.findings import Finding
from server.domain.rules import RuleEngine
from server.domain.rules import doors as door_rules
from server.domain.rules import fire as fire_rules
from server.domain.rules.access import Approval
from server.domain.rules.engine import StateDelta
from tests.server.domain.harness import Floor

EngineCall = Callable[[RuleEngine, datetime], list[Finding]]


def _evacuation_start(engine: RuleEngine, now: datetime) -> list[Finding]:
    """What EvacuationService's start hands to the engine (server/services/evacuation.py, `engine_side`)."""
    fire_rules.set_drill(engine.ctx, "f1", True)
    engine.ctx.set("evac.notice", "f1", Severity.CRITICAL, "ops-a", None, now, "Evacuate", "疏散")
    door_rules.release(engine.ctx, engine.site.egress_doors_on_floor("f1"), "door.fire_release_floor", now)
    return engine.ctx.take()


def _evacuation_end(engine: RuleEngine, now: datetime) -> list[Finding]:
    """What EvacuationService's all-clear hands to the engine (`end`)."""
    findings = engine.all_clear("f1", {"on_site_command"}, now)
    fire_rules.set_drill(engine.ctx, "f1", False)
    return findings


def _probe_reset(engine: RuleEngine, now: datetime) -> list[Finding]:
    """benchmarks/server_proc.py `reset_probes`: a probe reads clear, then the zone's fire state is read."""
    found = engine.on_reading("smoke-a1", now, {"smoke": False}, now)
    engine.ctx.zone_fire("ops-a")
    return found


CALLS: dict[str, EngineCall] = {
    "fire_verification.acknowledge": lambda e, now: e.acknowledge_fire("ops-a", now),
    "fire_verification.reset_zone": lambda e, now: e.reset_zone("ops-a", now),
    "api.fire.verdict_false": lambda e, now: e.fire_verdict("ops-a", False, "smoking", now),
    "api.fire.verdict_real": lambda e, now: e.fire_verdict("ops-a", True, "", now),
    "api.fire.report": lambda e, now: e.report_fire("ops-b", now),
    "hr_sync.approvals": lambda e, now: e.on_approvals([Approval("v-guest", now - timedelta(hours=1),
                                                                 now + timedelta(hours=1))], now),
    "hr_sync.hr_feed": lambda e, now: e.on_hr_feed({"p-zhao": now - timedelta(hours=1)}, {"B1002"}, now),
    "channel_outcomes.failed": lambda e, now: e.on_notify_result("wecom", False, now),
    "channel_outcomes.delivered": lambda e, now: e.on_notify_result("wecom", True, now),
    "commands.relay_off": lambda e, now: e.on_relay_command("plug-s001", False, now),
    "evacuation.start": _evacuation_start,
    "evacuation.all_clear": _evacuation_end,
    "evacuation.door_reset": lambda e, now: e.reset_door_release("door-main", now),
    "engine.detector_disabled": lambda e, now: e.set_detector_disabled("smoke-b1", True, now,
                                                                        now + timedelta(hours=1)),
    "engine.sensor_checked": lambda e, now: e.sensor_checked("temp-b1", now),
    "bench.probe_reset": _probe_reset,
}


def _untracked(engine: RuleEngine, now: datetime) -> list[Finding]:
    """The control: a device changed without a lookup through `ctx.devices`."""
    dev = dict.__getitem__(engine.ctx.devices, "plug-s003")
    dev.last["power_w"] = 1234.0
    return []


def _busy_floor() -> Floor:
    """Every kind of state a call can meet: smoke (an alarm awaiting acknowledgement), a sensor under
    suspicion after a temperature jump, an evacuation with released egress doors, plugs and strips with
    stage timers, a failing channel, a door held open."""
    f = Floor(supervise=True)
    for device in ("door-main", "door-exit-b", "door-b"):
        f.read(device, door_locked=True, door_open=False)
    for plug in ("plug-s001", "plug-s002", "plug-s003", "plug-prn1"):
        f.read(plug, power_w=900.0, current_a=4.0, relay_on=True, voltage_v=221.0)
    f.read("strip-a1", power_w=2400.0, current_a=11.0, voltage_v=221.0)
    for sensor in ("temp-a1", "temp-a2", "temp-b1"):
        f.read(sensor, temperature_c=24.0, humidity_pct=45.0)
    f.advance(30, step=10)
    f.read("temp-b1", temperature_c=40.0, humidity_pct=45.0)  # a jump alone: the sensor is suppressed
    f.read("smoke-a1", smoke=True)
    f.read("door-b", door_locked=False, door_open=True)
    f.call(f.engine.on_notify_result("wecom", False, f.now))
    f.call(_evacuation_start(f.engine, f.now))
    f.advance(5)
    return f


def _rows(deltas: list[StateDelta]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The rows the database holds after saving `deltas` in order."""
    devices: dict[str, dict[str, Any]] = {}
    parts: dict[str, Any] = {}
    for delta in deltas:
        devices.update(delta.devices)
        for device in delta.removed_devices:
            devices.pop(device, None)
        parts.update(delta.parts)
        for name in delta.removed_parts:
            parts.pop(name, None)
    return json.loads(json.dumps(devices)), json.loads(json.dumps(parts))


def _normal(state: dict[str, Any]) -> Any:
    """JSON as saved; open conditions in one order (a restore re-inserts them in the rows' order)."""
    normal = json.loads(json.dumps(state, sort_keys=True))
    normal["open"].sort()
    return normal


def _restored_and_full(call: EngineCall) -> tuple[Any, Any, list[Finding]]:
    """(restored from the rows saved around `call`, a full dump of the same inputs without a checkpoint
    before the call, the call's findings)."""
    live = _busy_floor()
    before = live.engine.delta()
    live.engine.saved(before)
    live.now += timedelta(seconds=1)
    found = call(live.engine, live.now)
    after = live.engine.delta()
    live.engine.saved(after)

    # The same inputs on an engine that never checkpointed: its first snapshot dumps every device.
    full = _busy_floor()
    full.now += timedelta(seconds=1)
    call(full.engine, full.now)

    restarted = RuleEngine(live.site)
    restarted.restore_rows(*_rows([before, after]))
    return _normal(restarted.snapshot()), _normal(full.engine.snapshot()), found


@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_rows_saved_after_a_call_restore_what_a_full_dump_holds(name: str) -> None:
    restored, full, _ = _restored_and_full(CALLS[name])
    assert restored == full, f"{name}: the incremental checkpoint after the call misses state"


def test_the_calls_change_device_state_not_only_site_wide_parts() -> None:
    """The comparison above means something for devices: calls that change a device's own state do."""
    base = _normal(_busy_floor().engine.snapshot())["devices"]
    changed = {name for name in ("engine.sensor_checked", "commands.relay_off", "bench.probe_reset")
               if _restored_and_full(CALLS[name])[1]["devices"] != base}
    assert changed == {"engine.sensor_checked", "commands.relay_off", "bench.probe_reset"}


def test_a_device_changed_behind_the_lookup_record_is_caught() -> None:
    restored, full, _ = _restored_and_full(_untracked)
    assert restored != full
    assert restored["devices"]["plug-s003"] != full["devices"]["plug-s003"]
    assert full["devices"]["plug-s003"]["last"]["power_w"] == 1234.0


def test_the_busy_floor_has_the_state_the_calls_act_on() -> None:
    f = _busy_floor()
    assert f.engine.zone_fire("ops-a").alarm_at is not None
    assert f.is_open("sensor.temp_jump", "temp-b1")
    assert f.is_open("evac.notice", "f1")
    assert door_rules.released(f.engine.ctx, "door-main")
    assert f.engine.ctx.shared["sup.notify_channel"]["wecom"] == 1
