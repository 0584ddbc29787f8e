"""Failover time of workers sharing a site: SIGKILL the lease owner N times, measure the takeover.

    python -m benchmarks.failover --sql postgresql+psycopg://postgres@127.0.0.1:5432/DB --kills 10

Real parts: a private Mosquitto, a PostgreSQL schema of its own (dropped at the end), two `floorwatch
worker` processes on the lease settings given (default: the server's, TTL 8 s, renewal 2 s), and an edge
publishing one telemetry batch every 0.25 s. Each round: SIGKILL the owner, then measure
`takeover_s` (kill -> the lease row names the other worker) and `resumed_s` (kill -> the new owner
committed sequence state past what was published at the kill, i.e. it processes again), then start the
killed worker again as the standby. At the end every published seq must be in the committed sequence
state (missing and lost are printed, and the exit status is 1 if either is not 0). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttClient

SITE = """
site: {id: bench, name: Failover bench, timezone: Asia/Shanghai}
floors: [{id: f1, name: 1F}]
zones:
  - {id: z1, name: Z1, floor: f1, kind: office}
devices:
  - {id: strip-1, kind: strip_meter, zone: z1, edge: e1, rated_a: 10}
"""


def _query(url: str, sql: str) -> Any:
    """The first row, or None also while the first worker has not made the tables yet."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql)).first()
    except ProgrammingError:
        return None
    finally:
        engine.dispose()


def _owner(url: str) -> str | None:
    row = _query(url, "SELECT owner FROM partition_leases")
    return None if row is None else str(row.owner)


def _next_seq(url: str) -> int:
    row = _query(url, "SELECT state FROM engine_state WHERE key = 'sequences'")
    return int(row.state.get("e1", {}).get("next_seq", 0)) if row is not None else 0


def _sequences(url: str) -> dict[str, Any]:
    row = _query(url, "SELECT state FROM engine_state WHERE key = 'sequences'")
    return dict(row.state.get("e1", {})) if row is not None else {}


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise SystemExit(f"failover bench: {what} did not happen within {timeout} s")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.failover", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sql", required=True, help="a PostgreSQL URL (a schema is made in it and dropped)")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--ttl-s", type=float, default=8.0)
    parser.add_argument("--renew-s", type=float, default=2.0)
    args = parser.parse_args(argv)
    if not args.sql.startswith("postgresql"):
        parser.error(f"--sql {args.sql!r}: give a PostgreSQL URL (postgresql+psycopg://user@host/db)")

    work = Path(tempfile.mkdtemp(prefix="fw-failover-"))
    work.chmod(0o777)  # Mosquitto started as root drops to its own user
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.sql)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{args.sql}?options=-csearch_path%3D{schema}"
    (work / "site.yaml").write_text(SITE, encoding="utf-8")
    broker = EmbeddedBroker(data_dir=work / "broker", kind="mosquitto")
    broker.start()
    mqtt = broker.client_settings()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FLOORWATCH_")},
           "FLOORWATCH_SITE_FILE": str(work / "site.yaml"), "FLOORWATCH_DATABASE_URL": url,
           "FLOORWATCH_MQTT__HOST": mqtt.host, "FLOORWATCH_MQTT__PORT": str(mqtt.port),
           "FLOORWATCH_MQTT__USERNAME": str(mqtt.username), "FLOORWATCH_ADMIN_TOKEN": "bench",
           "FLOORWATCH_LEASE_TTL_S": str(args.ttl_s), "FLOORWATCH_LEASE_RENEW_S": str(args.renew_s)}
    workers: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(name: str) -> None:
        data = work / name
        data.mkdir(exist_ok=True)
        with (data / "worker.log").open("ab") as log:
            workers[name] = subprocess.Popen([sys.executable, "-m", "server.cli", "worker"],
                                             env={**env, "FLOORWATCH_WORKER_NAME": name,
                                                  "FLOORWATCH_DATA_DIR": str(data)},
                                             stdout=log, stderr=subprocess.STDOUT)

    published = 0
    stop = threading.Event()
    edge = MqttClient(mqtt, "bench-edge-e1")

    def publish() -> None:
        nonlocal published
        topic = contract.edge_topic("bench", "e1", contract.Channel.TELEMETRY)
        while not stop.is_set():
            now = datetime.now(UTC)
            edge.publish_payload(topic, contract.TelemetryBatch(edge="e1", seq=published, sent_at=now, readings=[
                contract.Reading(device="strip-1", ts=now, metrics={"current_a": 2.0})]))
            published += 1
            stop.wait(0.25)

    takeovers: list[float] = []
    resumed: list[float] = []
    try:
        spawn("w1")
        _wait(lambda: _owner(url) == "w1", 60, "w1 owning the site")
        spawn("w2")
        edge.start()
        edge.wait_connected(10)
        threading.Thread(target=publish, daemon=True).start()
        _wait(lambda: _next_seq(url) > 4, 60, "the first commits")
        for _ in range(args.kills):
            owner = _owner(url)
            assert owner is not None
            other = "w2" if owner == "w1" else "w1"
            time.sleep(2)  # the standby is waiting, the owner committing
            at_kill = published
            workers[owner].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            workers[owner].wait(10)
            _wait(lambda: _owner(url) == other, 60, f"{other} taking over")  # noqa: B023
            takeovers.append(time.monotonic() - killed)
            _wait(lambda: _next_seq(url) > at_kill, 60, f"{other} committing")  # noqa: B023
            resumed.append(time.monotonic() - killed)
            spawn(owner)
        stop.set()
        time.sleep(1)
        final = published
        _wait(lambda: _next_seq(url) == final, 60, "the last commit")
        state = _sequences(url)
    finally:
        stop.set()
        edge.stop()
        for process in workers.values():
            if process.poll() is None:
                process.terminate()
                process.wait(30)
        broker.stop()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
        shutil.rmtree(work, ignore_errors=True)

    report = {"kills": args.kills, "lease_ttl_s": args.ttl_s, "renew_s": args.renew_s,
              "takeover_p50_s": round(statistics.median(takeovers), 2),
              "takeover_p99_s": round(percentile(takeovers, 0.99), 2), "takeover_max_s": round(max(takeovers), 2),
              "resumed_p50_s": round(statistics.median(resumed), 2),
              "resumed_p99_s": round(percentile(resumed, 0.99), 2),
              "published": final, "committed_next_seq": state.get("next_seq"),
              "missing": len(state.get("missing", {})), "lost_total": state.get("lost_total")}
    print(json.dumps(report))
    return 0 if report["missing"] == 0 and report["lost_total"] == 0 and state.get("next_seq") == final else 1


if __name__ == "__main__":
    raise SystemExit(main())
