"""`floorwatch bench`: how many readings/s one server process keeps up with, and how long from a
sensor's message to a committed alarm and to a delivered push. See docs/performance.md.

    python -m benchmarks.cli [--smoke] [--reps 3] [--json out.json] [--no-node-red] [--growth 1000,10000,50000]

Everything runs on 127.0.0.1: a private Mosquitto with the project's configuration
(gateway.broker.EmbeddedBroker), the server as a child process (benchmarks.server_proc), mosquitto_sub,
Node-RED, a webhook receiver. Each rep uses a fresh broker, so no stale session queues anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks import peers
from benchmarks.floor import Floor, make_floor
from benchmarks.traffic import Stream, send
from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttSettings

BATCHES = (1, 50, 200)
ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------------
# The server child and the webhook receiver
# --------------------------------------------------------------------------------------------------


class ServerChild:
    def __init__(self, floor: Floor, broker: EmbeddedBroker, data_dir: Path) -> None:
        self.started = time.time()
        self.data_dir = data_dir
        prefix: list[str] = []
        profile = os.environ.get("FLOORWATCH_BENCH_PYSPY")
        if profile:  # sample the server with py-spy (collapsed stacks), one file per server start
            prefix = [str(Path(sys.executable).with_name("py-spy")), "record", "--format", "raw", "--rate", "200",
                      "--output", f"{profile}.{time.monotonic_ns()}.txt", "--"]
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "benchmarks.server_proc", "--site", str(floor.site_file),
             "--data", str(data_dir), "--port", str(broker.port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=(data_dir.parent / "server.err").open("ab"),
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
        self.stats: dict[str, Any] = {}
        self.alarms: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self.peak_rss_kb = 0
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                if record["kind"] == "stats":
                    self.stats = record
                    self.peak_rss_kb = max(self.peak_rss_kb, record["rss_peak_kb"])
                elif record["kind"] == "alarm":
                    self.alarms.append(record)
                elif record["kind"] in ("reset", "error"):
                    self.replies.append(record)
                elif record["kind"] == "stopped":
                    self.peak_rss_kb = max(self.peak_rss_kb, record["rss_peak_kb"])
                self._cond.notify_all()

    def wait(self, predicate: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (self.stats and predicate(self.stats)):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return False
                self._cond.wait(min(left, 0.5))
            return True

    def command(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one command line (see benchmarks.server_proc) and wait for its answer."""
        assert self.proc.stdin is not None
        with self._cond:
            before = len(self.replies)
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.replies) == before:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"no answer to {command['op']} within {timeout} s; see server.err")
                self._cond.wait(min(left, 0.5))
            reply = self.replies[before]
        if reply["kind"] == "error":
            raise RuntimeError(f"server child refused {command['op']}: {reply['error']}")
        return reply

    def stop(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            # a traced child writes its allocation sites before it stops (seconds on a large site)
            self.proc.wait(300 if os.environ.get("FLOORWATCH_BENCH_TRACEMALLOC") else 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)


class Webhook:
    """apprise json:// pushes land here; the time of arrival per alarm id (from the message's link)."""

    def __init__(self) -> None:
        arrivals: dict[int, float] = {}
        self.arrivals = arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                t = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode(errors="replace")
                for match in re.finditer(r"#alarm=(\d+)", body):
                    arrivals.setdefault(int(match.group(1)), t)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------------------------------
# Phases
# --------------------------------------------------------------------------------------------------


@dataclass
class Config:
    smoke: bool
    reps: int
    readings: int
    """Readings per throughput phase (batch 1: a fifth of it, as messages)."""
    latency_s: float
    probes: int
    node_red: bool
    growth: list[int]
    devices: int
    timeout_s: float
    workdir: Path
    notes: list[str] = field(default_factory=list)


def _messages_for(cfg: Config, batch: int) -> int:
    readings = cfg.readings // 5 if batch == 1 else cfg.readings
    return max(4, readings // batch)


def _topic(floor: Floor) -> str:
    return contract.edge_filter(contract.Channel.TELEMETRY, site=floor.site_id)


def phase_sub(settings: MqttSettings, floor: Floor, batch: int, count: int, cfg: Config) -> dict[str, Any]:
    messages = Stream(floor, batch).telemetry(count)
    proc = peers.mosquitto_sub_start(settings.port, _topic(floor), count)
    result = send(settings, messages, timeout_s=cfg.timeout_s, client_id="bench-load-sub")
    try:
        proc.wait(cfg.timeout_s)
        done = time.time()
        received = count
    except subprocess.TimeoutExpired:
        proc.kill()
        done, received = time.time(), -1
    elapsed = done - result.first_t
    return {"messages": count, "received": received, "readings_per_s": count * batch / elapsed,
            "messages_per_s": count / elapsed, "publish_rate": result.rate}


def phase_node_red(settings: MqttSettings, floor: Floor, batch: int, count: int, cfg: Config,
                   workdir: Path) -> dict[str, Any]:
    node = peers.NodeRed(settings.port, _topic(floor), workdir)
    try:
        if not node.wait_ready():
            return {"error": "Node-RED did not start"}
        messages = Stream(floor, batch).telemetry(count)
        result = send(settings, messages, timeout_s=cfg.timeout_s, client_id="bench-load-nr")
        deadline = time.monotonic() + cfg.timeout_s
        seen = node.count()
        while seen["n"] < count and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = node.count()
        done = time.time() if seen["n"] >= count else seen["last"] / 1000
        elapsed = max(done - result.first_t, 1e-6)
        return {"messages": count, "received": seen["n"], "readings_per_s": seen["n"] * batch / elapsed,
                "messages_per_s": seen["n"] / elapsed, "publish_rate": result.rate}
    finally:
        node.stop()


def phase_server(server: ServerChild, settings: MqttSettings, stream: Stream, count: int,
                 cfg: Config) -> dict[str, Any]:
    """Saturate: publish `count` messages as fast as the broker takes them; the server's figure is the
    readings it validated, evaluated and had WRITTEN by the time-series writer, over the time from the
    first publish until the last point was written (so a store that lags counts against it)."""
    base = dict(server.stats)
    messages = stream.telemetry(count)
    readings = count * stream.batch
    cpu0 = base["cpu_s"]
    result = send(settings, messages, timeout_s=cfg.timeout_s, client_id="bench-load-server")
    target_msgs = base["messages"] + count
    target_written = base["series_written"] + readings
    ok = server.wait(lambda s: s["messages"] >= target_msgs and s["series_buffered"] == 0
                     and s["series_written"] >= target_written, cfg.timeout_s)
    s = dict(server.stats)
    elapsed = s["t"] - result.first_t
    done_readings = s["series_written"] - base["series_written"]
    return {
        "messages": count, "readings": readings, "complete": ok,
        "received": s["messages"] - base["messages"], "evaluated": s["readings"] - base["readings"],
        "written": done_readings, "readings_per_s": done_readings / elapsed, "messages_per_s":
        (s["messages"] - base["messages"]) / elapsed, "publish_rate": result.rate,
        "cpu_s_per_1k_readings": 1000 * (s["cpu_s"] - cpu0) / max(done_readings, 1),
        "gaps": (count - (s["messages"] - base["messages"])) + s["lost"], "lost": s["lost"],
        "duplicates": s["duplicates"] - base["duplicates"], "invalid": s["invalid"], "unknown": s["unknown"],
        "series_dropped": s["series_dropped"], "peak_rss_mb": server.peak_rss_kb / 1024,
    }


def probe_detectors(floor: Floor, n: int) -> list[tuple[str, str, str]]:
    """At most `n` floor smoke detectors, one per zone: two probes in one zone would confirm a fire."""
    out: list[tuple[str, str, str]] = []
    zones: set[str] = set()
    for device, edge, zone in floor.detectors:
        if zone not in zones and len(out) < n:
            zones.add(zone)
            out.append((device, edge, zone))
    return out


def phase_latency(server: ServerChild, webhook: Webhook, settings: MqttSettings, stream: Stream, floor: Floor,
                  sustained: float, fraction: float, cfg: Config) -> dict[str, Any]:
    """Background load at `fraction` of `sustained` readings/s for `latency_s`, with smoke probes spread
    through it, one detector per zone; each probe's publish instant against its alarm's commit (the
    AlarmService listener in the child) and the first push of that alarm at the webhook. Afterwards every
    probe is reset (detector clear, its zone's latched fire alarms closed, zone re-armed), so the next
    run's probe in that zone meets no open fire, no confirmation timer and no inhibition. A push that did
    not arrive is counted as inhibited (the server suppressed it, with its reason) or late, never both."""
    rate_msgs = fraction * sustained / stream.batch
    probes = probe_detectors(floor, cfg.probes)
    total = max(len(probes) * 2, round(rate_msgs * cfg.latency_s))
    messages: list[tuple[str, bytes]] = []
    marks: dict[int, str] = {}
    every = max(1, total // (len(probes) + 1))
    p = 0
    for i in range(total):  # in publish order, so that every edge's seqs arrive in order
        if i and i % every == 0 and p < len(probes):
            device, edge, _zone = probes[p]
            marks[len(messages)] = device
            messages.append(stream.smoke(device, edge))
            p += 1
        messages += stream.telemetry(1)
    base = dict(server.stats)
    known = {a["id"] for a in list(server.alarms)}
    sent = send(settings, messages, rate=rate_msgs, marks=set(marks), timeout_s=cfg.latency_s * 3 + 30,
                client_id=f"bench-load-lat-{int(fraction * 100)}")
    server.wait(lambda s: s["messages"] >= base["messages"] + len(messages), 30)
    deadline = time.monotonic() + 15  # pushes after the last probe (bounded)
    while time.monotonic() < deadline:
        raised = _raised(server, known)
        ids = {a["id"] for a in raised.values()}
        if set(marks.values()) <= set(raised) and ids <= set(webhook.arrivals) | set(_inhibited(server, ids)):
            break
        time.sleep(0.1)
    s = dict(server.stats)
    raised = _raised(server, known)
    inhibited = _inhibited(server, {a["id"] for a in raised.values()})
    confirmed = sorted({a["subject"] for a in list(server.alarms) if a["rule"] == "fire.confirmed"
                        and a["id"] not in known})
    alarm_ms, push_ms = [], []
    late = 0
    probes_out: list[dict[str, Any]] = []
    for index, device in marks.items():
        alarm = raised.get(device)
        if alarm is None or index not in sent.marks:
            continue
        alarm_ms.append((alarm["t"] - sent.marks[index]) * 1000)
        probe = {"device": device, "alarm_id": alarm["id"], "sent": sent.marks[index], "alarm_ms": alarm_ms[-1]}
        if alarm["id"] in webhook.arrivals:
            push_ms.append((webhook.arrivals[alarm["id"]] - sent.marks[index]) * 1000)
            probe["push_ms"] = push_ms[-1]
        elif alarm["id"] in inhibited:
            probe["inhibited"] = inhibited[alarm["id"]]
        else:
            late += 1
        probes_out.append(probe)
    reset = server.command({"op": "reset", "devices": [d for d, _e, _z in probes], "timeout_s": cfg.timeout_s},
                           cfg.timeout_s + 5)
    return {
        "fraction": fraction, "offered_readings_per_s": fraction * sustained,
        "achieved_readings_per_s": sent.rate * stream.batch, "duration_s": sent.last_t - sent.first_t,
        "probes": len(marks), "probe_zones": len({z for _d, _e, z in probes}), "alarms": len(alarm_ms),
        "pushes": len(push_ms), "pushes_inhibited": len([p for p in probes_out if "inhibited" in p]),
        "pushes_late": late, "confirmed_fires": confirmed,
        "alarm_ms": alarm_ms, "push_ms": push_ms, "max_inbox": s["inbox"], "per_probe": probes_out,
        "series_buffered_end": s["series_buffered"], "series_dropped": s["series_dropped"], "lost": s["lost"],
        "sql_retries": s["sql_retries"],
        "gaps": len(messages) - (s["messages"] - base["messages"]) + s["lost"],
        "reset": {k: reset[k] for k in ("closed", "zones_not_rearmed", "latching_still_open")},
    }


def _raised(server: ServerChild, known: set[int]) -> dict[str, dict[str, Any]]:
    """The first committed change (the raise) of each smoke alarm new since `known`, by detector."""
    out: dict[str, dict[str, Any]] = {}
    for a in list(server.alarms):
        if a["rule"] == "fire.smoke_alarm" and a["id"] not in known:
            out.setdefault(a["subject"], a)
    return out


def _inhibited(server: ServerChild, alarm_ids: set[int]) -> dict[int, str]:
    """Alarm id -> why, for alarms every queued push of which the server suppressed (an inhibition such as
    an open fire.confirmed in the zone, or a silence): those never reach a receiver and are not late."""
    if not alarm_ids:
        return {}
    path = server.data_dir / "floorwatch.sqlite"
    marks = ",".join("?" * len(alarm_ids))
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute(f"SELECT alarm_id, status, last_error FROM notifications WHERE alarm_id IN ({marks})",
                                sorted(alarm_ids)).fetchall()
    except sqlite3.Error:
        return {}  # not readable right now (locked, not yet created): nothing counted as inhibited
    by_alarm: dict[int, list[tuple[str, str | None]]] = {}
    for alarm_id, status, why in rows:
        by_alarm.setdefault(int(alarm_id), []).append((str(status), why))
    return {a: "; ".join(sorted({str(w) for _s, w in r})) for a, r in by_alarm.items()
            if all(st == "suppressed" for st, _w in r)}


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _start_server(floor: Floor, broker: EmbeddedBroker, workdir: Path, cfg: Config,
                  webhook: Webhook) -> tuple[ServerChild, float]:
    webhook.arrivals.clear()  # alarm ids start again at 1 in a fresh database
    data = workdir / f"server-{time.monotonic_ns()}"
    data.mkdir(parents=True)
    t0 = time.monotonic()
    server = ServerChild(floor, broker, data / "data")
    if not server.wait(lambda s: s["connected"], cfg.timeout_s * 4):
        server.stop()
        raise RuntimeError(f"server did not connect; see {data.parent / 'server.err'}")
    time.sleep(0.5)  # subscriptions acknowledged
    return server, time.monotonic() - t0


def section_ingest(cfg: Config, floor: Floor, webhook: Webhook) -> dict[str, Any]:
    out: dict[str, Any] = {"batches": {}, "latency": {}}
    latency: dict[float, dict[str, list[float]]] = {0.5: {"alarm_ms": [], "push_ms": []},
                                                   0.9: {"alarm_ms": [], "push_ms": []}}
    latency_runs: list[dict[str, Any]] = []
    for batch in BATCHES:
        count = _messages_for(cfg, batch)
        reps: list[dict[str, Any]] = []
        for rep in range(cfg.reps):
            broker = EmbeddedBroker(kind="mosquitto")
            broker.start()
            settings = broker.client_settings()
            try:
                row: dict[str, Any] = {"rep": rep, "load_avg": _load_avg()}
                row["mosquitto_sub"] = phase_sub(settings, floor, batch, count, cfg)
                if cfg.node_red:
                    row["node_red"] = phase_node_red(settings, floor, batch, count, cfg,
                                                     cfg.workdir / f"nr-{batch}-{rep}")
                server, startup = _start_server(floor, broker, cfg.workdir, cfg, webhook)
                try:
                    stream = Stream(floor, batch)
                    row["server"] = phase_server(server, settings, stream, count, cfg)
                    row["server"]["startup_s"] = startup
                    srv = row["server"]["readings_per_s"]
                    row["ratio_server_to_mosquitto_sub"] = srv / row["mosquitto_sub"]["readings_per_s"]
                    if "node_red" in row and row["node_red"].get("readings_per_s"):
                        row["ratio_server_to_node_red"] = srv / row["node_red"]["readings_per_s"]
                    if batch == BATCHES[-1]:
                        for fraction in (0.5, 0.9):
                            run = phase_latency(server, webhook, settings, Stream(floor, batch, seqs=stream.seqs,
                                                                                  _cursor=stream._cursor),
                                                floor, srv, fraction, cfg)
                            latency[fraction]["alarm_ms"] += run["alarm_ms"]
                            latency[fraction]["push_ms"] += run["push_ms"]
                            run["rep"] = rep
                            latency_runs.append(run)
                finally:
                    server.stop()
                    row["server"]["peak_rss_mb"] = server.peak_rss_kb / 1024
            finally:
                broker.stop()
            reps.append(row)
            _progress(f"batch {batch} rep {rep}: server {row['server']['readings_per_s']:,.0f} readings/s, "
                      f"mosquitto_sub {row['mosquitto_sub']['readings_per_s']:,.0f}"
                      + (f", Node-RED {row['node_red'].get('readings_per_s', 0):,.0f}" if "node_red" in row else ""))
        out["batches"][str(batch)] = {
            "messages": count, "reps": reps,
            "server_readings_per_s": _median([r["server"]["readings_per_s"] for r in reps]),
            "server_messages_per_s": _median([r["server"]["messages_per_s"] for r in reps]),
            "mosquitto_sub_readings_per_s": _median([r["mosquitto_sub"]["readings_per_s"] for r in reps]),
            "node_red_readings_per_s": _median([r["node_red"].get("readings_per_s", 0) for r in reps
                                                if "node_red" in r]) if cfg.node_red else None,
            "ratio_server_to_mosquitto_sub": _median([r["ratio_server_to_mosquitto_sub"] for r in reps]),
            "ratio_server_to_node_red": _median([r["ratio_server_to_node_red"] for r in reps
                                                 if "ratio_server_to_node_red" in r]) if cfg.node_red else None,
            "gaps": sum(r["server"]["gaps"] for r in reps),
            "peak_rss_mb": max(r["server"]["peak_rss_mb"] for r in reps),
        }
    for fraction, values in latency.items():
        out["latency"][f"{int(fraction * 100)}%"] = {
            "samples": len(values["alarm_ms"]), "pushes": len(values["push_ms"]),
            **{f"alarm_p{q}_ms": _pct(values["alarm_ms"], q) for q in (50, 95, 99)},
            **{f"push_p{q}_ms": _pct(values["push_ms"], q) for q in (50, 95, 99)},
            **{k: sum(r[k] for r in latency_runs if r["fraction"] == fraction)
               for k in ("pushes_inhibited", "pushes_late", "gaps")},
            "confirmed_fires": sum(len(r["confirmed_fires"]) for r in latency_runs if r["fraction"] == fraction),
        }
    out["latency_runs"] = latency_runs
    return out


def section_growth(cfg: Config, webhook: Webhook, first: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    batch = BATCHES[-1]
    for devices in cfg.growth:
        load = _load_avg()
        t0 = time.monotonic()
        floor = make_floor(devices, cfg.workdir / f"floor-{devices}", webhook.port)
        generated = time.monotonic() - t0
        broker = EmbeddedBroker(kind="mosquitto")
        broker.start()
        settings = broker.client_settings()
        try:
            server, startup = _start_server(floor, broker, cfg.workdir, cfg, webhook)
            try:
                stream = Stream(floor, batch)
                thr = phase_server(server, settings, stream, _messages_for(cfg, batch), cfg)
                lat = phase_latency(server, webhook, settings, stream, floor, thr["readings_per_s"], 0.9, cfg)
            finally:
                server.stop()
        finally:
            broker.stop()
        row = {
            "devices": floor.devices, "load_avg": load, "generate_s": generated, "startup_s": startup,
            "readings_per_s": thr["readings_per_s"], "cpu_ms_per_1k_readings": thr["cpu_s_per_1k_readings"] * 1000,
            "alarm_p50_ms": _pct(lat["alarm_ms"], 50), "alarm_p99_ms": _pct(lat["alarm_ms"], 99),
            "push_p99_ms": _pct(lat["push_ms"], 99), "samples": len(lat["alarm_ms"]),
            "pushes_inhibited": lat["pushes_inhibited"], "pushes_late": lat["pushes_late"],
            "confirmed_fires": len(lat["confirmed_fires"]),
            "peak_rss_mb": server.peak_rss_kb / 1024, "gaps": thr["gaps"] + lat["gaps"],
            "series_dropped": lat["series_dropped"],  # the server's count since its start: both phases
        }
        rows.append(row)
        _progress(f"growth {floor.devices} devices: {row['readings_per_s']:,.0f} readings/s, "
                  f"p99 alarm {row['alarm_p99_ms']} ms, RSS {row['peak_rss_mb']:.0f} MB, startup {startup:.1f} s")
    return rows


def _load_avg() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages when a rep starts: the bench shares its cores."""
    return [round(x, 2) for x in os.getloadavg()]


def _progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def table(report: dict[str, Any]) -> str:
    lines = ["Sustained ingest (readings/s, median of reps; ratios are medians of in-run ratios)", "",
             "| batch | server readings/s | server msg/s | mosquitto_sub readings/s | server/mosquitto_sub "
             "| Node-RED readings/s | server/Node-RED | gaps | peak RSS MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ingest = report["ingest"] or {"batches": {}, "latency": {}}  # None: the section was not run
    for batch, b in ingest["batches"].items():
        lines.append(f"| {batch} | {_fmt(b['server_readings_per_s'])} | {_fmt(b['server_messages_per_s'])} "
                     f"| {_fmt(b['mosquitto_sub_readings_per_s'])} | {_fmt(b['ratio_server_to_mosquitto_sub'], 3)} "
                     f"| {_fmt(b['node_red_readings_per_s'])} | {_fmt(b['ratio_server_to_node_red'], 2)} "
                     f"| {b['gaps']} | {_fmt(b['peak_rss_mb'])} |")
    lines += ["", "Publish-to-alarm-commit and publish-to-webhook latency (batch 200 background load)", "",
              "| load | samples | alarm p50 ms | p95 | p99 | pushes | push p50 ms | p95 | p99 | inhibited | late "
              "| confirmed fires | gaps |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for load, v in ingest["latency"].items():
        lines.append(f"| {load} | {v['samples']} | {_fmt(v['alarm_p50_ms'], 1)} | {_fmt(v['alarm_p95_ms'], 1)} "
                     f"| {_fmt(v['alarm_p99_ms'], 1)} | {v['pushes']} | {_fmt(v['push_p50_ms'], 1)} "
                     f"| {_fmt(v['push_p95_ms'], 1)} | {_fmt(v['push_p99_ms'], 1)} | {v['pushes_inhibited']} "
                     f"| {v['pushes_late']} | {v['confirmed_fires']} | {v['gaps']} |")
    if report["growth"]:
        lines += ["", "Growth (batch 200; latency at 90 % of the figure measured on the same process)", "",
                  "| devices | readings/s | CPU ms per 1k readings | alarm p50 ms | alarm p99 ms | push p99 ms "
                  "| inhibited | late | peak RSS MB | server start s | gaps |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for g in report["growth"]:
            lines.append(f"| {g['devices']} | {_fmt(g['readings_per_s'])} | {_fmt(g['cpu_ms_per_1k_readings'], 1)} "
                         f"| {_fmt(g['alarm_p50_ms'], 1)} | {_fmt(g['alarm_p99_ms'], 1)} | {_fmt(g['push_p99_ms'], 1)} "
                         f"| {g['pushes_inhibited']} | {g['pushes_late']} | {_fmt(g['peak_rss_mb'])} "
                         f"| {_fmt(g['startup_s'], 1)} | {g['gaps']} |")
    for note in report["notes"]:
        lines.append(f"\nNote: {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="floorwatch bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny numbers, under a minute: checks the bench works")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--readings", type=int, default=200_000, help="readings per throughput phase")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--latency-s", type=float, default=15.0)
    parser.add_argument("--probes", type=int, default=30, help="smoke probes per latency phase")
    parser.add_argument("--growth", default="1000,10000,50000", help="device counts ('' to skip)")
    parser.add_argument("--no-node-red", action="store_true")
    parser.add_argument("--install-node-red", action="store_true", help="npm install node-red if missing")
    parser.add_argument("--json", help="also write the JSON report here")
    parser.add_argument("--workdir", help="keep floors, server data and logs here (default: a temporary folder)")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="bound of every wait")
    parser.add_argument("--sections", default="ingest,growth",
                        help="which sections run: ingest (batches, peers, latency), growth, or both")
    args = parser.parse_args(argv)
    sections = {x.strip() for x in args.sections.split(",") if x.strip()}
    if not sections or sections - {"ingest", "growth"}:
        parser.error("--sections takes ingest, growth or both")

    with tempfile.TemporaryDirectory(prefix="floorwatch-bench-") as tmp_dir:
        tmp = args.workdir or tmp_dir
        cfg = Config(smoke=args.smoke, reps=args.reps, readings=args.readings, latency_s=args.latency_s,
                     probes=args.probes, node_red=not args.no_node_red,
                     growth=[int(x) for x in args.growth.split(",") if x.strip()], devices=args.devices,
                     timeout_s=args.timeout_s, workdir=Path(tmp))
        if args.smoke:
            cfg.reps, cfg.readings, cfg.latency_s, cfg.probes = 1, 2_000, 2.0, 3
            cfg.growth, cfg.timeout_s = [], 60.0
        if cfg.node_red:
            why = peers.install_node_red() if args.install_node_red else peers.node_red_available()
            if why is not None:
                cfg.node_red = False
                cfg.notes.append(f"Node-RED peer skipped: {why}")
        elif not args.smoke:
            cfg.notes.append("Node-RED peer skipped (--no-node-red)")
        webhook = Webhook()
        try:
            floor = make_floor(cfg.devices, cfg.workdir / "floor", webhook.port)
            if len(probe_detectors(floor, cfg.probes)) < cfg.probes:
                cfg.notes.append(f"{len(probe_detectors(floor, cfg.probes))} probes per latency run, not "
                                 f"{cfg.probes}: one detector per zone, and the floor has no more zones")
            started = time.time()
            report: dict[str, Any] = {
                "machine": {"python": platform.python_version(), "platform": platform.platform(),
                            "cpus": _cpus(), "cpu_model": _cpu_model()},
                "config": {"smoke": cfg.smoke, "reps": cfg.reps, "readings": cfg.readings, "devices": floor.devices,
                           "latency_s": cfg.latency_s, "probes": cfg.probes, "growth": cfg.growth,
                           "sections": sorted(sections)},
                "notes": cfg.notes,
            }
            report["ingest"] = section_ingest(cfg, floor, webhook) if "ingest" in sections else None
            report["growth"] = section_growth(cfg, webhook, report["ingest"]) if "growth" in sections else []
            report["elapsed_s"] = time.time() - started
        finally:
            webhook.close()
    print(table(report))
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    raise SystemExit(main())
