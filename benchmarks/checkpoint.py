"""The rule checkpoint alone: how long one checkpoint (rule state + sequences, in one SQL transaction)
takes on a generated floor, after a given number of normal readings since the one before.

    python -m benchmarks.checkpoint --devices 1000,10000,50000 --readings 5000,500 --commits 20

Each size: a generated floor (simulators.floorgen), the real RuleEngine, AlarmService on a fresh SQLite
file (or `--sql URL`), a first tick and a first checkpoint (every device), then for each `--readings`
count, `--commits` rounds of that many readings to random devices (the bench's normal values), each
followed by one timed checkpoint.
Runs against this tree's engine (`delta()` rows) or, from an older tree on PYTHONPATH, its single-blob
`snapshot()`, so the same command measures before and after. Prints one JSON line per size.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from benchmarks.floor import make_floor
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.repository import AlarmRepository
from server.domain.rules import RuleEngine
from server.domain.sequence import SequenceTracker
from server.domain.site import parse_site
from server.services.alarms import AlarmService

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
NORMAL: dict[str, dict[str, bool | int | float]] = {
    "smart_plug": {"power_w": 60.0, "current_a": 0.3, "relay_on": True},
    "strip_meter": {"power_w": 300.0, "current_a": 1.4, "voltage_v": 221.0},
    "smoke_detector": {"smoke": False, "battery_pct": 90.0},
    "temp_sensor": {"temperature_c": 23.5, "humidity_pct": 45.0},
}


def measure(devices: int, readings: list[int], commits: int, sql_url: str | None,
            workdir: Path) -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    floor = make_floor(devices, workdir / f"floor-{devices}")
    site = parse_site(floor.site_file.read_text(encoding="utf-8"), str(floor.site_file))
    setup_s = time.perf_counter() - t0
    engine = RuleEngine(site)
    sql = make_engine(sql_url or f"sqlite:///{workdir / f'checkpoint-{devices}.sqlite'}")
    migrate(sql)
    sessions = session_factory(sql)
    alarms = AlarmService(AlarmWriter(sessions), AlarmRepository(sessions).open_alarms())
    sequences = SequenceTracker()
    incremental = hasattr(engine, "delta")

    def checkpoint(now: datetime) -> int:
        if incremental:
            delta = engine.delta()
            alarms.commit([], now, sequences=sequences.snapshot(), engine_state=delta)
            engine.saved(delta)
            return int(alarms.rule_rows_written)
        alarms.commit([], now, sequences=sequences.snapshot(), engine_state=cast(Any, engine.snapshot()))
        return 1

    rng = random.Random(1)
    fed = [(d.id, NORMAL.get(d.kind.value, {"rssi_dbm": -60.0})) for d in site.devices.values()]
    now = T0
    engine.tick(now)
    first = time.perf_counter()
    checkpoint(now)
    first_s = time.perf_counter() - first
    out: list[dict[str, Any]] = []
    for count in readings:
        times: list[float] = []
        rows: list[int] = []
        for _ in range(commits):
            now += timedelta(seconds=1)
            for device, metrics in rng.choices(fed, k=count):
                engine.on_reading(device, now, metrics, now)
            engine.tick(now)
            started = time.perf_counter()
            rows.append(checkpoint(now))
            times.append(time.perf_counter() - started)
        times.sort()
        out.append({
            "devices": len(site.devices), "readings_per_commit": count, "commits": commits,
            "format": "rows" if incremental else "blob", "setup_s": round(setup_s, 1),
            "first_checkpoint_ms": round(first_s * 1000, 1),
            "median_ms": round(statistics.median(times) * 1000, 1),
            "p90_ms": round(times[int(0.9 * (len(times) - 1))] * 1000, 1),
            "rows_median": statistics.median(rows),
        })
    # Start-up after a crash: a fresh engine reads the saved state back (rows, or the older blob).
    restarted = RuleEngine(site)
    started = time.perf_counter()
    if incremental:
        from server.services.recovery import restore_rules  # absent from older trees
        restore_rules(AlarmRepository(sessions), restarted)
    else:
        restarted.restore(AlarmRepository(sessions).load_state("rules") or {})
    restore_ms = round((time.perf_counter() - started) * 1000, 1)
    for row in out:
        row["restore_ms"] = restore_ms
    sql.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="1000,10000,50000", help="floor sizes, comma-separated")
    parser.add_argument("--readings", default="5000,500", help="readings between two checkpoints (a list: each "
                        "size runs them in turn)")
    parser.add_argument("--commits", type=int, default=20, help="timed checkpoints per size")
    parser.add_argument("--sql", default=None, help="database URL (default: a fresh SQLite file per size)")
    args = parser.parse_args(argv)
    lists: dict[str, list[int]] = {}
    for name in ("devices", "readings"):
        try:
            lists[name] = [int(x) for x in getattr(args, name).split(",") if x.strip()]
        except ValueError:
            parser.error(f"--{name}: {getattr(args, name)!r} is not a comma-separated list of whole numbers")
    if args.commits < 1 or not lists["devices"] or min(lists["devices"]) < 1 or not lists["readings"] \
            or min(lists["readings"]) < 0:
        parser.error("--devices must be positive, --readings >= 0 and --commits >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        for size in lists["devices"]:
            for row in measure(size, lists["readings"], args.commits, args.sql, Path(tmp)):
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
