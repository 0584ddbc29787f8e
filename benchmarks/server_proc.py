"""The server under test, as its own process: the real `Runtime` (Ingest, RuleEngine, SQLite alarm and
time-series stores, notification worker) on a given site file and broker, without the HTTP layer.

    python -m benchmarks.server_proc --site SITE --data DIR --port PORT

It writes one JSON line per report to stdout: `{"kind": "stats", ...}` every `--every` seconds, and
`{"kind": "alarm", ...}` when an alarm is committed (the AlarmService listener runs after the commit),
with `time.time()` so that the parent can compare with its publish instants (same machine, same clock).

With FLOORWATCH_BENCH_TRACEMALLOC=FILE it traces Python allocations from the end of the start to the stop
and writes there the allocation sites still holding the most memory (by line, then by file) with the
resident set at both ends: where the memory a run adds goes (slow: not for timed figures).

It reads one JSON command per stdin line: `{"op": "reset", "devices": [...], "timeout_s": T}` puts latency probes back
as they were (see `reset_probes`) and answers `{"kind": "reset", ...}`. It stops on a closed stdin or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

from gateway.mqtt import MqttSettings
from server.domain import alarms as domain
from server.domain.findings import Finding
from server.domain.rules import RuleEngine
from server.runtime import Runtime
from server.settings import Settings

_out_lock = threading.Lock()


def emit(record: dict[str, Any]) -> None:
    line = json.dumps(record, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def peak_rss_kb() -> int:
    """VmHWM: the resident set's high-water mark of this process."""
    return rss_kb().get("VmHWM", 0)


def rss_kb() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in kB."""
    fields: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def write_allocations(path: Path, at_start: dict[str, int], top: int = 30) -> None:
    """The traced sites holding the most memory now (allocated since tracing began), by line and by file."""
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    current, peak = tracemalloc.get_traced_memory()
    lines = [f"rss at start (kB): {at_start}", f"rss at stop (kB): {rss_kb()}",
             f"traced now {current / 2**20:.1f} MiB, traced peak {peak / 2**20:.1f} MiB", "", "by line:"]
    lines += [f"{stat.size / 2**20:9.1f} MiB {stat.count:>10} blocks  {stat.traceback[0]}"
              for stat in snapshot.statistics("lineno")[:top]]
    lines += ["", "by file:"]
    lines += [f"{stat.size / 2**20:9.1f} MiB {stat.count:>10} blocks  {stat.traceback[0].filename}"
              for stat in snapshot.statistics("filename")[:top]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def stats(runtime: Runtime) -> dict[str, Any]:
    s = runtime.ingest.stats
    series = runtime.series.stats()
    inbox = runtime.ingest._inbox.qsize()
    return {
        "kind": "stats", "t": time.time(), "messages": s.messages, "readings": s.readings,
        "duplicates": s.duplicates, "late": s.late, "invalid": s.invalid, "unknown": s.unknown_devices,
        "lost": s.lost, "drains": s.drains, "sql_retries": s.sql_retries, "inbox": inbox,
        "series_written": series.written,
        "series_buffered": series.buffered, "series_dropped": series.dropped,
        "connected": bool(runtime.mqtt is not None and runtime.mqtt.connected), "rss_peak_kb": peak_rss_kb(),
        "cpu_s": time.process_time(),
    }


PROBE_RULE = "fire.smoke_alarm"


def reset_probes(runtime: Runtime, devices: list[str], timeout_s: float) -> dict[str, Any]:
    """After a latency run: each probe detector reads clear again and a person closes what its smoke
    raised in its zone (fire alarms latch), which re-arms the zone (server/services/fire_verification.py). Then
    the next probe in that zone meets no open fire, no running confirmation timer and no inhibition.
    The engine calls queue behind the backlog the run's own load left in the ingest inbox (tens of
    seconds on a large site), so they wait up to `timeout_s`, the bench's bound, not the call's default."""
    zones = {runtime.site.devices[d].zone for d in devices}

    def clear(engine: RuleEngine, now: datetime) -> list[Finding]:
        return [f for d in devices for f in engine.on_reading(d, now, {"smoke": False}, now)]

    runtime.ingest.call(clear, timeout=timeout_s)
    closed = 0
    for alarm in runtime.alarms.open_alarms():
        if alarm.zone in zones and alarm.latching and alarm.id is not None:
            runtime.alarms.close(alarm.id, "bench", "latency probe done", runtime.clock())
            closed += 1
    armed: list[str] = []

    def check(engine: RuleEngine, now: datetime) -> list[Finding]:
        armed.extend(z for z in sorted(zones) if engine.ctx.zone_fire(z).alarm_at is None
                     and not engine.ctx.zone_fire(z).confirmed)
        return []

    runtime.ingest.call(check, timeout=timeout_s)
    still_open = sorted({a.rule for a in runtime.alarms.open_alarms() if a.zone in zones and a.latching})
    return {"kind": "reset", "t": time.time(), "devices": len(devices), "closed": closed,
            "zones_not_rearmed": sorted(zones - set(armed)), "latching_still_open": still_open}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.server_proc")
    parser.add_argument("--site", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--every", type=float, default=0.1)
    parser.add_argument("--profile", help="write a cProfile of the whole run to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    settings = Settings(site_file=Path(args.site), data_dir=Path(args.data), admin_token="bench-admin-token",
                        mqtt=MqttSettings(host="127.0.0.1", port=args.port, protocol="5",
                                          username="floorwatch-local"),
                        gap_window_s=5)
    runtime = Runtime(settings, owns_process=True)
    runtime.start()
    allocations = os.environ.get("FLOORWATCH_BENCH_TRACEMALLOC")
    rss_at_start = rss_kb()
    if allocations:
        tracemalloc.start(1)

    def on_alarm(alarm: domain.Alarm) -> None:
        emit({"kind": "alarm", "t": time.time(), "id": alarm.id, "rule": alarm.rule, "subject": alarm.subject,
              "state": alarm.state.value})

    runtime.alarms.listeners.insert(0, on_alarm)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin() -> None:
        for line in sys.stdin:
            try:
                command = json.loads(line)
                if command.get("op") == "reset":
                    emit(reset_probes(runtime, list(command["devices"]), float(command.get("timeout_s", 10.0))))
                else:
                    emit({"kind": "error", "error": f"unknown command {command!r}"})
            except Exception as exc:  # an answer, never a dead command channel
                emit({"kind": "error", "error": f"{type(exc).__name__}: {exc}"})
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    deadline = time.monotonic() + 3600  # bounded: a forgotten child ends by itself
    try:
        while not stop.wait(args.every) and time.monotonic() < deadline:
            emit(stats(runtime))
    finally:
        emit(stats(runtime))
        if allocations:
            write_allocations(Path(allocations), rss_at_start)  # before the stop: the running server's memory
        runtime.stop()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        emit({"kind": "stopped", "t": time.time(), "rss_peak_kb": peak_rss_kb()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
