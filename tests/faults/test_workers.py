"""Fault 4 (issue 15), workers that share a site: takeover after SIGKILL, fencing by epoch, and the refusals.

Real parts: a private Mosquitto, a PostgreSQL schema of the test's own, the server as real processes
(`server.cli server` with FLOORWATCH_DATABASE_URL on PostgreSQL and FLOORWATCH_FAILOVER=1, so each competes
for the site's lease),
and a webhook receiver that every contact points at. The test speaks for edge `e1` (it controls seq and
time) and counts every seq it published against the sequence state the owners committed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from gateway import contract
from gateway.broker import EmbeddedBroker, free_port
from gateway.mqtt import MqttClient
from tests.faults.conftest import Record
from tests.faults.test_crash_fire import Receiver, fire_site, receiver  # noqa: F401  (the fixture)
from tests.support.server import ServerProcess, WorkerProcess
from tests.support.wait import wait_until

TOKEN = "workers-token"
TTL_S = 6.0
RENEW_S = 2.0
STRIP = "strip-z1-00"


@dataclass
class Lease:
    owner: str
    epoch: int
    expires_in_s: float


def lease(url: str) -> Lease | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(text(
                "SELECT owner, epoch, EXTRACT(EPOCH FROM expires_at - clock_timestamp()) AS left_s"
                " FROM partition_leases")).first()
    finally:
        engine.dispose()
    return None if row is None else Lease(row.owner, int(row.epoch), float(row.left_s))


def sequences(url: str) -> dict[str, Any]:
    """The per-edge sequence state the owners committed (engine_state `sequences`)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            state = connection.execute(text("SELECT state FROM engine_state WHERE key = 'sequences'")).scalar()
    finally:
        engine.dispose()
    return dict(state or {})


def alarms(url: str, rule: str) -> list[tuple[int, str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [(r.id, r.subject, r.state) for r in connection.execute(
                text("SELECT id, subject, state FROM alarms WHERE rule = :rule"), {"rule": rule})]
    finally:
        engine.dispose()


class Edge:
    """Edge e1: a strip reading (and its largest plug's) every 0.25 s, seq 0, 1, 2, ...; `amps` is the
    strip's current (rated 10 A: 13.5 A is 135 %, an overload that turns critical after 10 s)."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.client = MqttClient(broker.client_settings(), "workers-edge-e1")
        self.client.start()
        assert self.client.wait_connected(10)
        self.topic = contract.edge_topic("r1", "e1", contract.Channel.TELEMETRY)
        self.seq = 0
        self.amps = 3.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            now = datetime.now(UTC)
            readings = [contract.Reading(device=STRIP, ts=now, metrics={"current_a": self.amps}),
                        contract.Reading(device="plug-z1-kettle", ts=now,
                                         metrics={"current_a": max(0.0, self.amps - 3.0)})]
            self.client.publish_payload(self.topic, contract.TelemetryBatch(edge="e1", seq=self.seq, sent_at=now,
                                                                            readings=readings))
            self.seq += 1
            self.stop.wait(0.25)

    def close(self) -> int:
        """Stop publishing; returns how many seqs were published (0 .. n-1)."""
        self.stop.set()
        self.thread.join(5)
        self.client.stop()
        return self.seq


def worker(name: str, broker: EmbeddedBroker, url: str, site_file: Path, tmp: Path, ttl_s: float = TTL_S,
           renew_s: float = RENEW_S) -> ServerProcess:
    return ServerProcess(broker.client_settings(), tmp / name, site_file, TOKEN, env={
        "FLOORWATCH_DATABASE_URL": url, "FLOORWATCH_FAILOVER": "1", "FLOORWATCH_WORKER_NAME": name,
        "FLOORWATCH_LEASE_TTL_S": str(ttl_s), "FLOORWATCH_LEASE_RENEW_S": str(renew_s)})


def test_sigkill_of_the_owner_during_a_strip_overload_a_standby_takes_over_and_nothing_is_lost_or_repeated(
    mosquitto: EmbeddedBroker, postgres_schema: str, receiver: Receiver, tmp_path: Path,  # noqa: F811
    record: Record,
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    a = worker("a", mosquitto, postgres_schema, site_file, tmp_path)
    b = worker("b", mosquitto, postgres_schema, site_file, tmp_path)
    edge: Edge | None = None
    try:
        a.start()
        b.spawn()  # a standby: it waits for the lease, its port forwarding to the owner meanwhile
        held = lease(postgres_schema)
        assert held is not None and held.owner == "a" and held.epoch == 1, held
        assert wait_until(lambda: "standby" in (tmp_path / "b" / "server.log").read_text(errors="replace"), 30)
        standby = b.api.get("/api/health")  # a standby's port answers: not the owner, and who is
        assert standby.status_code == 503 and standby.json()["status"] == "standby", standby.text
        assert standby.json()["dependencies"]["lease"]["state"] == "standby"
        forwarded = b.api.get("/api/alarms")  # every other path is the owner's answer (test_standby_forwarding.py)
        assert forwarded.status_code == 200 and forwarded.headers["x-floorwatch-served-by"] == "a", forwarded.text
        edge = Edge(mosquitto)
        edge.thread.start()
        assert wait_until(lambda: sequences(postgres_schema).get("e1", {}).get("next_seq", 0) >= 4, 20)
        edge.amps = 13.5
        time.sleep(4)  # 4 s into the overload's 10 s: its duration is pending in the owner's engine
        assert not alarms(postgres_schema, "elec.strip_overload"), "raised before the kill"
        a.kill()
        killed = time.monotonic()
        published_at_kill = edge.seq
        owned = wait_until(lambda: (held := lease(postgres_schema)) is not None and held.owner == "b" and held,
                           30, 0.05)
        took_over_s = time.monotonic() - killed
        assert owned and owned.epoch == 2, owned
        subscribed_s = b.wait_subscribed(60, killed)
        raised = wait_until(lambda: alarms(postgres_schema, "elec.strip_overload"), 40)
        assert raised, "the overload was never raised by the new owner"
        edge.amps = 3.0
        seq_b = edge.seq
        assert wait_until(lambda: sequences(postgres_schema)["e1"]["next_seq"] > seq_b, 30), "b applies nothing new"
        published = edge.close()
        edge = None
        # Every published seq is in the committed sequence state once the new owner checkpointed it.
        assert wait_until(lambda: sequences(postgres_schema)["e1"]["next_seq"] == published, 20), \
            (sequences(postgres_schema), published)
        alarm_id = raised[0][0]
        assert wait_until(lambda: any(f"#alarm={alarm_id}" in d.message for d in receiver.snapshot()), 30), \
            "the overload was never paged"
        time.sleep(3)  # a page that would come twice comes now
        health = b.health()
        state = sequences(postgres_schema)["e1"]
        overloads = alarms(postgres_schema, "elec.strip_overload")
        losses = alarms(postgres_schema, "sup.message_loss")
    finally:
        if edge is not None:
            edge.close()
        b.stop()
        a.stop()

    pages = Counter((d.path, d.alarm, d.step) for d in receiver.snapshot() if d.alarm == alarm_id)
    figures = {"takeover_s": round(took_over_s, 2), "subscribed_after_kill_s": round(subscribed_s, 2),
               "lease_ttl_s": TTL_S, "renew_s": RENEW_S, "published": published,
               "committed_next_seq": state["next_seq"], "missing": len(state["missing"]),
               "lost_total": state["lost_total"], "replayed_and_dropped": state["duplicates_total"],
               "ingest_lost": health["ingest"]["lost"], "overload_alarms": len(overloads),
               "pages": dict(Counter(path for path, _alarm, _step in pages)),
               "pages_duplicated": sum(n - 1 for n in pages.values())}
    record("workers-takeover", figures)
    assert took_over_s <= TTL_S + RENEW_S + 1.0, f"the standby took {took_over_s:.1f} s (lease TTL {TTL_S} s)"
    assert health["dependencies"]["lease"]["state"] == "owner" and health["dependencies"]["lease"]["epoch"] == 2
    assert state["missing"] == {} and state["lost_total"] == 0 and health["ingest"]["lost"] == 0, state
    # Replayed and dropped: what the dead owner had received but not yet acknowledged, so at most what was
    # published before the kill (its acknowledgements follow each checkpoint).
    assert state["duplicates_total"] <= published_at_kill, (state["duplicates_total"], published_at_kill)
    assert not losses, f"sup.message_loss raised: {losses}"
    assert [(s, st) for _i, s, st in overloads] == [(STRIP, overloads[0][2])] and len(overloads) == 1, overloads
    assert pages, "no page for the overload"
    assert all(n == 1 for n in pages.values()), f"pages sent more than once: {pages}"


def test_a_worker_whose_lease_was_taken_commits_nothing_more_and_says_so_in_health(
    mosquitto: EmbeddedBroker, postgres_schema: str, receiver: Receiver, tmp_path: Path,  # noqa: F811
    record: Record,
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    # `a` renews only every 20 s: what stops it below is the epoch check in its own commits, not a renewal.
    a = worker("a", mosquitto, postgres_schema, site_file, tmp_path, ttl_s=60, renew_s=20)
    b = worker("b", mosquitto, postgres_schema, site_file, tmp_path)
    edge: Edge | None = None
    try:
        a.start()
        edge = Edge(mosquitto)
        edge.thread.start()
        assert wait_until(lambda: sequences(postgres_schema).get("e1", {}).get("next_seq", 0) >= 4, 20)
        # Steal the lease as another worker would after a partition of the network: a newer epoch. Reading
        # the sequence state in the same transaction gives exactly what `a` committed before the steal.
        engine = create_engine(postgres_schema)
        with engine.begin() as connection:
            connection.execute(text("UPDATE partition_leases SET owner = 'thief', epoch = epoch + 1,"
                                    " expires_at = clock_timestamp() + interval '1 hour'"))
            at_steal = connection.execute(text("SELECT state FROM engine_state WHERE key = 'sequences'")).scalar()
        stolen = time.monotonic()
        edge.amps = 13.5  # an overload that `a`, were it still committing, would raise after 10 s
        assert wait_until(lambda: a.health()["dependencies"]["lease"]["state"] == "lost", 15), a.health()
        noticed_s = time.monotonic() - stolen
        time.sleep(12)  # fenced for longer than the overload's 10 s: an unfenced `a` would raise it by now
        health = a.health()
        # nothing more is done through it: every API call but its health answers 503
        refused = [a.api.get("/api/alarms").status_code,
                   a.api.post("/api/evacuations", json={"floor": "f1", "drill": True}).status_code]
        after = sequences(postgres_schema)
        overloads_while_fenced = alarms(postgres_schema, "elec.strip_overload")
        # The thief goes away: a new owner gets from the broker everything `a` never acknowledged.
        with engine.begin() as connection:
            connection.execute(text("UPDATE partition_leases SET expires_at = clock_timestamp()"
                                    " - interval '1 second'"))
        engine.dispose()
        b.start()
        edge.amps = 3.0
        seq_b = edge.seq
        assert wait_until(lambda: sequences(postgres_schema)["e1"]["next_seq"] > seq_b, 30), "b applies nothing new"
        published = edge.close()
        edge = None
        assert wait_until(lambda: sequences(postgres_schema)["e1"]["next_seq"] == published, 30), \
            (sequences(postgres_schema), published)
        final = sequences(postgres_schema)["e1"]
        overloads = alarms(postgres_schema, "elec.strip_overload")
        log = (tmp_path / "a" / "server.log").read_text(errors="replace")
    finally:
        if edge is not None:
            edge.close()
        b.stop()
        a.stop()

    lease_health = health["dependencies"]["lease"]
    record("workers-fencing", {"lease_loss_noticed_s": round(noticed_s, 2), "published": published,
                               "next_seq_at_steal": at_steal["e1"]["next_seq"],
                               "next_seq_after_12s_fenced": after["e1"]["next_seq"],
                               "final_next_seq": final["next_seq"], "missing": len(final["missing"]),
                               "overloads": len(overloads)})
    assert health["status"] == "degraded"
    assert refused == [503, 503], refused
    assert lease_health["state"] == "lost" and lease_health["epoch"] == 1
    assert lease_health["lost_reason"].startswith("a commit found the lease taken"), lease_health
    assert not health["dependencies"]["broker"]["up"], "a fenced worker keeps its MQTT session"
    assert after == at_steal, "the fenced worker committed sequence state after its lease was taken"
    assert not overloads_while_fenced, "the fenced worker committed an alarm"
    assert "LEASE LOST" in log
    assert final["missing"] == {} and final["lost_total"] == 0, final
    assert len(overloads) == 1, overloads  # the new owner applied what `a` left unacknowledged


def logged_at(log: Path, text: str) -> datetime:
    """When a process first logged `text` (the log's own timestamps: one clock, one machine)."""
    line = next(line for line in log.read_text(errors="replace").splitlines() if text in line)
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)  # both in local time


class CutProxy:
    """A TCP relay to PostgreSQL that the test can cut: every connection dropped, new ones refused, as a
    worker cut off from the database by the network sees it (the shared PostgreSQL itself keeps running)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def url(self, url: str) -> str:
        return url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{self.port}/")

    def cut(self) -> None:
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def test_a_worker_cut_off_from_postgresql_stops_says_so_and_a_standby_takes_over_without_loss(
    mosquitto: EmbeddedBroker, postgres_schema: str, receiver: Receiver, tmp_path: Path,  # noqa: F811
    record: Record,
) -> None:
    assert "@127.0.0.1:5432/" in postgres_schema, "the proxy relays the local PostgreSQL"
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    proxy = CutProxy(("127.0.0.1", 5432))
    a = worker("a", mosquitto, proxy.url(postgres_schema), site_file, tmp_path)
    b = worker("b", mosquitto, postgres_schema, site_file, tmp_path)
    edge: Edge | None = None
    try:
        a.start()
        b.spawn()
        edge = Edge(mosquitto)
        edge.thread.start()
        assert wait_until(lambda: sequences(postgres_schema).get("e1", {}).get("next_seq", 0) >= 4, 20)
        proxy.cut()
        cut = time.monotonic()
        assert wait_until(lambda: a.health()["dependencies"]["lease"]["state"] == "lost", 20), a.health()
        stopped_s = time.monotonic() - cut
        health_a = a.health()
        b.wait_subscribed(60)
        took_over_s = time.monotonic() - cut
        held = lease(postgres_schema)
        seq_b = edge.seq
        assert wait_until(lambda: sequences(postgres_schema)["e1"]["next_seq"] > seq_b, 30), "b applies nothing new"
        published = edge.close()
        edge = None
        assert wait_until(lambda: sequences(postgres_schema)["e1"]["next_seq"] == published, 30), \
            (sequences(postgres_schema), published)
        state = sequences(postgres_schema)["e1"]
        health_b = b.health()
    finally:
        if edge is not None:
            edge.close()
        proxy.cut()
        b.stop()
        a.stop()

    record("workers-sql-cut", {"stopped_after_cut_s": round(stopped_s, 2), "b_subscribed_after_cut_s":
                               round(took_over_s, 2), "lease_ttl_s": TTL_S, "published": published,
                               "committed_next_seq": state["next_seq"], "missing": len(state["missing"]),
                               "lost_total": state["lost_total"], "ingest_lost_b": health_b["ingest"]["lost"]})
    lease_a = health_a["dependencies"]["lease"]
    assert lease_a["state"] == "lost" and "no renewal got through" in lease_a["lost_reason"], lease_a
    assert health_a["status"] == "degraded" and not health_a["dependencies"]["broker"]["up"], health_a
    lost_at, owned_at = logged_at(tmp_path / "a" / "server.log", "off the broker after losing"), logged_at(
        tmp_path / "b" / "server.log", "owns partition")
    assert lost_at < owned_at, f"the cut-off worker left the broker at {lost_at}, after the standby took over"
    assert held is not None and held.owner == "b" and held.epoch == 2, held
    assert state["missing"] == {} and state["lost_total"] == 0 and health_b["ingest"]["lost"] == 0, state


def test_a_rolling_restart_of_a_server_and_a_worker_under_steady_load_hands_over_at_once_and_loses_nothing(
    mosquitto: EmbeddedBroker, postgres_schema: str, receiver: Receiver, tmp_path: Path,  # noqa: F811
    record: Record,
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    ttl = 30.0  # a handover that waited for expiry instead of the release would take this long
    a = worker("a", mosquitto, postgres_schema, site_file, tmp_path, ttl_s=ttl, renew_s=1)
    w: WorkerProcess | None = None
    edge: Edge | None = None
    handovers: list[float] = []
    try:
        a.start()
        w = WorkerProcess("w", a.env, tmp_path / "w")
        assert wait_until(lambda: w is not None and w.says("standby"), 30), w.log.read_text()
        assert w.status()["state"] == "standby", w.status()
        edge = Edge(mosquitto)
        edge.thread.start()
        assert wait_until(lambda: sequences(postgres_schema).get("e1", {}).get("next_seq", 0) >= 8, 20)

        a.stop()  # SIGTERM: a clean stop releases the lease
        stopped = time.monotonic()
        assert wait_until(lambda: (held := lease(postgres_schema)) is not None and held.owner == "w", 20, 0.05)
        handovers.append(time.monotonic() - stopped)
        seq_w = edge.seq
        assert wait_until(lambda: w is not None and w.status()["state"] == "owner", 10), w.status()
        assert wait_until(lambda: sequences(postgres_schema)["e1"]["next_seq"] > seq_w, 30), "w applies nothing"

        a = worker("a", mosquitto, postgres_schema, site_file, tmp_path, ttl_s=ttl, renew_s=1)
        a.spawn()
        assert wait_until(lambda: (tmp_path / "a" / "server.log").read_text(errors="replace").count("standby") >= 1,
                          30)
        stopped = time.monotonic()
        assert w.stop() == 0
        a.wait_subscribed(60)
        held = lease(postgres_schema)
        handovers.append(time.monotonic() - stopped)
        assert held is not None and held.owner == "a" and held.epoch == 3, held
        seq_a = edge.seq
        assert wait_until(lambda: sequences(postgres_schema)["e1"]["next_seq"] > seq_a, 30), "a applies nothing new"
        published = edge.close()
        edge = None
        assert wait_until(lambda: sequences(postgres_schema)["e1"]["next_seq"] == published, 30), \
            (sequences(postgres_schema), published)
        state = sequences(postgres_schema)["e1"]
        health = a.health()
        losses = alarms(postgres_schema, "sup.message_loss")
    finally:
        if edge is not None:
            edge.close()
        if w is not None:
            w.stop()
        a.stop()

    record("workers-rolling-restart", {"handover_s": [round(h, 2) for h in handovers], "lease_ttl_s": ttl,
                                       "published": published, "committed_next_seq": state["next_seq"],
                                       "missing": len(state["missing"]), "lost_total": state["lost_total"],
                                       "ingest_lost": health["ingest"]["lost"]})
    assert all(h < ttl for h in handovers), f"a clean stop did not hand the lease over: {handovers}"
    assert state["missing"] == {} and state["lost_total"] == 0 and health["ingest"]["lost"] == 0, state
    assert not losses, losses


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOORWATCH_")}
    return subprocess.run([sys.executable, "-m", "server.cli", *args], env={**clean, **env}, capture_output=True,
                          text=True, timeout=60)


def test_workers_refuse_sqlite_a_second_sqlite_server_a_missing_broker_a_bad_lease_setting_and_another_site_file(
    mosquitto: EmbeddedBroker, postgres_schema: str, receiver: Receiver, tmp_path: Path,  # noqa: F811
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    broker = {"FLOORWATCH_MQTT__HOST": "127.0.0.1", "FLOORWATCH_MQTT__PORT": str(mosquitto.port),
              "FLOORWATCH_SITE_FILE": str(site_file), "FLOORWATCH_DATA_DIR": str(tmp_path / "w")}
    on_sqlite = _cli(["worker"], broker)
    assert on_sqlite.returncode == 2, on_sqlite
    assert "FLOORWATCH_DATABASE_URL is unset" in on_sqlite.stderr and "exactly one `floorwatch server`" in \
        on_sqlite.stderr and "Traceback" not in on_sqlite.stderr, on_sqlite.stderr
    no_broker = _cli(["worker"], {**{k: v for k, v in broker.items() if not k.startswith("FLOORWATCH_MQTT")},
                                  "FLOORWATCH_DATABASE_URL": postgres_schema})
    assert no_broker.returncode == 2 and "FLOORWATCH_MQTT__HOST" in no_broker.stderr, no_broker
    bad_renew = _cli(["worker"], {**broker, "FLOORWATCH_DATABASE_URL": postgres_schema,
                                  "FLOORWATCH_LEASE_TTL_S": "6", "FLOORWATCH_LEASE_RENEW_S": "3"})
    assert bad_renew.returncode == 2 and "lease_renew_s (3.0) must be at most a third" in bad_renew.stderr, bad_renew

    first = ServerProcess(mosquitto.client_settings(), tmp_path / "sqlite", site_file, TOKEN)
    try:
        first.start()
        # a port of its own (not the default 8000, which anything on the machine may hold): the lock refuses it
        second = _cli(["server"], {**broker, "FLOORWATCH_DATA_DIR": str(tmp_path / "sqlite"),
                                   "FLOORWATCH_HTTP_PORT": str(free_port())})
        assert second.returncode == 2, second
        assert "another Floorwatch server uses the SQLite database" in second.stderr and "use PostgreSQL" in \
            second.stderr and "Traceback" not in second.stderr, second.stderr
        assert first.health()["status"] == "ok"
    finally:
        first.stop()

    owner = worker("a", mosquitto, postgres_schema, site_file, tmp_path)
    try:
        owner.start()
        other = tmp_path / "other.yaml"
        other.write_text(fire_site(receiver.port) + "# another version of the file\n", encoding="utf-8")
        for command in (["worker"], ["server"]):
            refused = _cli(command, {**broker, "FLOORWATCH_DATABASE_URL": postgres_schema,
                                     "FLOORWATCH_FAILOVER": "1", "FLOORWATCH_SITE_FILE": str(other),
                                     "FLOORWATCH_HTTP_PORT": str(free_port())})
            assert refused.returncode == 2, refused
            assert "with another site file" in refused.stderr and "FLOORWATCH_SITE_FILE" in refused.stderr, \
                refused.stderr
            assert "Traceback" not in refused.stderr
        assert owner.health()["dependencies"]["lease"]["state"] == "owner"
    finally:
        owner.stop()


def _free_pair() -> int:
    """A port P with P+1 free too (for `--workers 2`)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two free ports in a row")


def _health(port: int) -> dict[str, Any] | None:
    try:
        body: dict[str, Any] = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return None
    return body


def test_server_with_two_workers_on_one_machine_one_owns_one_waits_and_a_killed_one_comes_back_as_the_standby(
    mosquitto: EmbeddedBroker, postgres_schema: str, receiver: Receiver, tmp_path: Path,  # noqa: F811
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    port = _free_pair()
    env = {**worker("x", mosquitto, postgres_schema, site_file, tmp_path).env, "FLOORWATCH_HTTP_PORT": str(port)}
    env.pop("FLOORWATCH_WORKER_NAME")
    on_sqlite = _cli(["server", "--workers", "2"], {k: v for k, v in env.items() if k != "FLOORWATCH_DATABASE_URL"})
    assert on_sqlite.returncode == 2 and "--workers 2: FLOORWATCH_DATABASE_URL is unset" in on_sqlite.stderr, \
        on_sqlite.stderr
    with (tmp_path / "workers.log").open("ab") as out:
        parent = subprocess.Popen([sys.executable, "-m", "server.cli", "server", "--workers", "2"], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        def states() -> list[str]:
            return sorted(str((h or {}).get("status")) for h in (_health(port), _health(port + 1)))

        assert wait_until(lambda: states() == ["ok", "standby"], 60, 0.2), states()
        # either port serves the API: the standby forwards to the address its sibling advertised
        served_by = [httpx.get(f"http://127.0.0.1:{p}/api/alarms", headers={"Authorization": f"Bearer {TOKEN}"},
                               timeout=10).headers.get("x-floorwatch-served-by") for p in (port, port + 1)]
        held = lease(postgres_schema)
        assert held is not None and held.epoch == 1
        assert sorted(served_by, key=str) == sorted([None, held.owner], key=str), served_by
        owner_pid = int(held.owner.split(":")[1])
        os.kill(owner_pid, signal.SIGKILL)
        assert wait_until(lambda: (now := lease(postgres_schema)) is not None and now.epoch == 2, 30), \
            lease(postgres_schema)
        # the other worker owns the site; the supervisor started the killed one again, now the standby
        assert wait_until(lambda: states() == ["ok", "standby"], 60, 0.2), states()
        new_owner = lease(postgres_schema)
        assert new_owner is not None and int(new_owner.owner.split(":")[1]) != owner_pid
        children = [int(line.split()[0]) for line in subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(parent.pid)], capture_output=True, text=True).stdout.splitlines()]
        assert len(children) == 2, children
        parent.terminate()
        assert parent.wait(60) == 0
        assert not [pid for pid in children if Path(f"/proc/{pid}").exists()], "a worker outlived --workers"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)

