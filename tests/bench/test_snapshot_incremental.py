"""The rule engine's incremental snapshot (only devices an input may have changed are dumped again)
equals a full snapshot after any mix of readings, events, ticks and direct inputs."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.floor import make_floor
from gateway.contract import Event, EventType
from server.domain.rules import RuleEngine
from server.domain.site import parse_site


@pytest.mark.parametrize("seed", [7, 8, 9] if os.environ.get("FLOORWATCH_LONG") == "1" else [7])
def test_incremental_snapshot_equals_full(tmp_path: Path, seed: int) -> None:
    floor = make_floor(400, tmp_path)
    site = parse_site(floor.site_file.read_text(encoding="utf-8"), str(floor.site_file))
    engine = RuleEngine(site)
    rng = random.Random(seed)
    devices = list(site.devices.values())
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    engine.tick(now)
    engine.snapshot()
    for step in range(120):
        now += timedelta(seconds=rng.choice([1, 5, 30, 400]))
        for _ in range(rng.randint(1, 40)):
            dev = rng.choice(devices)
            kind = dev.kind.value
            if kind == "smart_plug":
                metrics: dict[str, float | bool] = {"power_w": rng.choice([5.0, 60.0, 900.0, 2600.0]),
                                                    "current_a": rng.uniform(0, 12), "relay_on": True}
            elif kind == "strip_meter":
                metrics = {"power_w": rng.uniform(0, 3000), "current_a": rng.uniform(0, 14),
                           "voltage_v": rng.choice([220.0, 190.0, 250.0])}
            elif kind == "smoke_detector":
                metrics = {"smoke": rng.random() < 0.1, "battery_pct": 80.0}
            elif kind == "temp_sensor":
                metrics = {"temperature_c": rng.choice([23.0, 35.0, 60.0]), "humidity_pct": 50.0}
            else:
                metrics = {"rssi_dbm": -60.0}
            engine.on_reading(dev.id, now, metrics, now)
        if step % 7 == 3:
            dev = rng.choice(devices)
            engine.on_event(Event(device=dev.id, ts=now, type=EventType.DEVICE_OFFLINE), now)
        if step % 5 == 0:
            engine.tick(now)
        if step % 11 == 5:
            engine.on_relay_command(rng.choice(devices).id, False, now)
        incremental = engine.snapshot()
        engine.invalidate_snapshot()
        full = engine.snapshot()
        stale = sorted(d for d in full["devices"] if incremental["devices"].get(d) != full["devices"][d])
        assert incremental == full, f"step {step}: stale dumps of {stale[:5]}"
