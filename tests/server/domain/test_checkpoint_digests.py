"""The incremental checkpoint compares each row with a digest of the row last saved instead of keeping
the saved rows: a row is written exactly when its JSON differs from the saved one, a restart from the
saved rows writes nothing until something changes, and what the engine keeps per device after a
checkpoint is a digest, not the device's dump (on the 50,000-device site the dumps were ~4 KB a device)."""

from __future__ import annotations

import gc
import json
import random
from datetime import timedelta
from typing import Any

import pytest

from gateway.contract import EventType
from server.domain.rules import RuleEngine
from server.domain.rules.engine import StateDelta
from tests.server.domain.harness import Floor


def _heard_everything() -> Floor:
    """Every device of the example site read once (so every device has a row), checkpointed."""
    f = Floor(supervise=True)
    for device in f.site.devices:
        f.read(device, rssi_dbm=-60.0)
    f.advance(5)
    f.engine.saved(f.engine.delta())
    return f


def _as_saved(delta: StateDelta) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The rows as the database gives them back (JSON)."""
    return json.loads(json.dumps(delta.devices)), json.loads(json.dumps(delta.parts))


def test_a_device_row_is_written_when_its_state_changed_and_not_when_only_looked_up() -> None:
    f = _heard_everything()
    f.engine.ctx.devices["temp-a1"]  # a lookup changes nothing: compared again, not written
    f.engine.invalidate_snapshot()  # and every device compared with its saved digest
    assert not f.engine.delta().devices
    f.read("temp-a1", temperature_c=25.0)
    assert set(f.engine.delta().devices) == {"temp-a1"}


def test_a_restart_from_the_saved_rows_writes_nothing_until_something_changes() -> None:
    f = Floor(supervise=True)
    for device in f.site.devices:
        f.read(device, rssi_dbm=-60.0)
    f.read("temp-a1", temperature_c=24.0, humidity_pct=45.0)
    f.read("plug-s001", power_w=900.0, current_a=4.0, relay_on=True, voltage_v=221.0)
    f.read("smoke-a1", smoke=True)
    f.advance(5)
    first = f.engine.delta()
    assert first.full is False and len(first.devices) == len(f.site.devices)

    restarted = RuleEngine(f.site)
    restarted.restore_rows(*_as_saved(first))
    again = restarted.delta()
    assert not again.devices and not again.removed_devices
    restarted.on_reading("temp-a1", f.now + timedelta(seconds=1), {"temperature_c": 26.0}, f.now + timedelta(seconds=1))
    assert set(restarted.delta().devices) == {"temp-a1"}


def test_a_checkpoint_keeps_no_dump_of_a_device() -> None:
    f = Floor(supervise=True)
    for device in f.site.devices:
        f.read(device, rssi_dbm=-60.0)
    f.advance(5)
    delta = f.engine.delta()
    rows = len(delta.devices)
    f.engine.saved(delta)
    del delta
    gc.collect()
    # A device's dump is a dict of these keys, its times {"$dt": iso} dicts: none is alive after the save.
    dumps = [o for o in gc.get_objects() if type(o) is dict and (o.keys() == DUMP_KEYS or o.keys() == {"$dt"})]
    assert rows == len(f.site.devices)
    assert dumps == [], f"{len(dumps)} dumped dicts kept after saving {rows} device rows"


DUMP_KEYS = {"last", "clock", "seen", "offline", "state"}


@pytest.mark.parametrize("seed", [7, 8])
def test_after_random_inputs_a_full_comparison_finds_no_row_the_incremental_checkpoints_missed(seed: int) -> None:
    """Each step's delta compares only the devices looked up since the last save or whose timers changed;
    comparing every device with its saved digest afterwards (`invalidate_snapshot`) must find nothing more
    to write. Without the lookup record it fails (events and relay commands change devices whose timers
    stay); every input here that changes a device also looks it up, so the timer comparison alone is not
    what it checks."""
    f = Floor(supervise=True)
    engine, rng = f.engine, random.Random(seed)
    devices = list(f.site.devices.values())
    written = 0
    for step in range(60):
        f.now += timedelta(seconds=rng.choice([1, 5, 30, 400]))
        for _ in range(rng.randint(1, 8)):
            dev = rng.choice(devices)
            f.read(dev.id, **_random_metrics(dev.kind.value, rng))
        if step % 5 == 0:
            f.advance(1)
        if step % 7 == 3:
            f.event(rng.choice(devices).id, EventType.DEVICE_OFFLINE)
        if step % 11 == 5:
            f.call(engine.on_relay_command(rng.choice(devices).id, False, f.now))
        delta = engine.delta()
        written += len(delta.devices)
        engine.saved(delta)
        engine.invalidate_snapshot()
        missed = engine.delta()
        assert not missed.devices and not missed.removed_devices, f"step {step}: missed {sorted(missed.devices)}"
        engine.saved(missed)  # nothing to write: the next step's delta is incremental again
    assert written > 60  # the steps did change devices


def test_a_device_changed_without_a_lookup_is_what_the_full_comparison_finds() -> None:
    """The control of the test above: a change behind the lookup record is missed by the incremental
    delta and found by the full comparison."""
    f = _heard_everything()
    dict.__getitem__(f.engine.ctx.devices, "plug-s001").last["power_w"] = 1234.0
    assert "plug-s001" not in f.engine.delta().devices
    f.engine.invalidate_snapshot()
    assert "plug-s001" in f.engine.delta().devices


def _random_metrics(kind: str, rng: random.Random) -> dict[str, bool | float]:
    if kind == "smart_plug":
        return {"power_w": rng.choice([5.0, 60.0, 900.0, 2600.0]), "current_a": rng.uniform(0, 12), "relay_on": True}
    if kind == "strip_meter":
        return {"power_w": rng.uniform(0, 3000), "current_a": rng.uniform(0, 14),
                "voltage_v": rng.choice([220.0, 190.0, 250.0])}
    if kind == "smoke_detector":
        return {"smoke": rng.random() < 0.1, "battery_pct": 80.0}
    if kind == "temp_sensor":
        return {"temperature_c": rng.choice([23.0, 35.0, 60.0]), "humidity_pct": 50.0}
    if kind == "door_controller":
        return {"door_open": rng.random() < 0.3, "door_locked": rng.random() < 0.7}
    return {"rssi_dbm": -60.0}
