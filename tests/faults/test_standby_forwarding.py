"""Issue 15: a standby `floorwatch server` forwards every request to the worker that owns the site, so any
worker's address serves the page and the API; the owner sees the real client; a dead owner is a clear 503
until the standby owns the site and serves it itself.

Real parts as in test_workers.py: two servers as real processes on PostgreSQL with FLOORWATCH_FAILOVER=1,
a private Mosquitto, the test speaking for edge e1. Clients on 127.0.0.2, .3 ... are distinct client
addresses on this one machine (the whole of 127/8 is loopback).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttClient
from server.standby import MAX_CONNECTIONS
from tests.faults.conftest import Record
from tests.faults.test_crash_fire import Receiver, fire_site, receiver  # noqa: F401  (the fixture)
from tests.faults.test_workers import alarms, lease, worker
from tests.support.server import ServerProcess, WorkerProcess
from tests.support.wait import wait_for

PASSWORD = "standby-pass-1"
SERVED_BY = "x-floorwatch-served-by"


def client(port: int, source: str, token: str | None = None) -> httpx.Client:
    """A client of 127.0.0.1:`port` whose requests come from `source` (another loopback address)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=15,
                        transport=httpx.HTTPTransport(local_address=source))


def login(api: httpx.Client, password: str = PASSWORD, **headers: str) -> httpx.Response:
    return api.post("/api/login", json={"name": "sam", "password": password}, headers=headers)


class Stream:
    """The alarm stream read on a thread: `events` as they come, `opened` once its first bytes came,
    `ended` once the connection ended (whatever ended it)."""

    def __init__(self, api: httpx.Client, token: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.opened = threading.Event()
        self.ended = threading.Event()
        self.served_by: str | None = None
        self.thread = threading.Thread(target=self._read, args=(api, token), daemon=True)
        self.thread.start()

    def _read(self, api: httpx.Client, token: str) -> None:
        try:
            with api.stream("GET", "/api/alarms/stream", headers={"Authorization": f"Bearer {token}",
                                                                 "Accept": "text/event-stream"},
                            timeout=httpx.Timeout(15, read=None)) as response:
                self.served_by = response.headers.get(SERVED_BY)
                for line in response.iter_lines():
                    self.opened.set()
                    if line.startswith("data:"):
                        self.events.append(json.loads(line[5:]))
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()


def smoke(broker: EmbeddedBroker) -> None:
    """One smoke reading of smoke-z1-01 from edge e1: the owner raises a fire alarm."""
    edge = MqttClient(broker.client_settings(), "standby-edge-e1")
    edge.start()
    try:
        assert edge.wait_connected(10)
        now = datetime.now(UTC)
        edge.publish_payload(contract.edge_topic("r1", "e1", contract.Channel.TELEMETRY), contract.TelemetryBatch(
            edge="e1", seq=0, sent_at=now, readings=[contract.Reading(device="smoke-z1-01", ts=now,
                                                                       metrics={"smoke": True})]))
    finally:
        edge.stop()


@contextmanager
def owner_and_standby(broker: EmbeddedBroker, url: str, tmp: Path, hook_port: int
                      ) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    site_file = tmp / "site.yaml"
    site_file.write_text(fire_site(hook_port), encoding="utf-8")
    a = worker("a", broker, url, site_file, tmp)
    b = worker("b", broker, url, site_file, tmp)
    try:
        a.start()
        b.spawn()
        wait_for(lambda: status(b) == "standby", 30, "b waiting as a standby")
        yield a, b
    finally:
        b.stop()
        a.stop()


def status(server: ServerProcess) -> str | None:
    try:
        return str(server.api.get("/api/health").json()["status"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def test_a_standby_forwards_the_api_the_page_and_the_alarm_stream_and_the_owner_sees_the_real_client(
    mosquitto: EmbeddedBroker, postgres_schema: str, receiver: Receiver, tmp_path: Path,  # noqa: F811
) -> None:
    with owner_and_standby(mosquitto, postgres_schema, tmp_path, receiver.port) as (a, b), ExitStack() as stack:
        health = b.api.get("/api/health")
        assert health.status_code == 503 and health.json()["status"] == "standby", health.text
        owner = health.json()["dependencies"]["owner"]
        assert owner["up"] and owner["name"] == "a" and owner["url"] == f"http://127.0.0.1:{a.port}", owner

        # an account made through the standby, a login through it, then what the page does with the token
        made = b.api.put("/api/users/sam", json={"roles": ["admin"], "password": PASSWORD})
        assert made.status_code == 200 and made.headers[SERVED_BY] == "a", made.text
        c2 = stack.enter_context(client(b.port, "127.0.0.2"))
        token = login(c2).json()["token"]
        c2.headers["Authorization"] = f"Bearer {token}"
        listed = c2.get("/api/alarms")
        assert listed.status_code == 200 and listed.json() == [] and listed.headers[SERVED_BY] == "a", listed.text
        page = c2.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text[:200]
        script = c2.get("/static/app.js")
        assert script.status_code == 200 and script.content == a.api.get("/static/app.js").content
        assert c2.get("/api/no-such-thing").status_code == 404  # the owner's answer, not the standby's
        # the owner builds URLs from the client's Host: a redirect names the standby's address, not the owner's
        redirect = c2.get("/api/alarms/")
        assert redirect.status_code == 307, redirect.text
        assert redirect.headers["location"] == f"http://127.0.0.1:{b.port}/api/alarms", redirect.headers

        # the alarm stream through the standby: an alarm raised after it opened, then its acknowledgement
        stream = Stream(c2, token)
        wait_for(stream.opened.is_set, 15, "the stream's first bytes through the standby")
        smoke(mosquitto)
        raised = wait_for(lambda: stream.events, 30, "an alarm event through the standby")[0]
        acked = c2.post(f"/api/alarms/{raised['id']}/ack", json={"note": "seen through the standby"})
        assert acked.status_code == 200 and acked.json()["state"] == "acknowledged", acked.text
        wait_for(lambda: any(e["id"] == raised["id"] and e["state"] == "acknowledged" for e in stream.events), 15,
                 "the acknowledgement on the stream")
        stored = alarms(postgres_schema, raised["rule"])
        assert (raised["id"], raised["subject"], "acknowledged") in stored, stored
        assert stream.served_by == "a"

        # the owner's login limiter keys on the real client, not on the standby's address
        for _ in range(5):
            assert login(c2, "wrong-password").status_code == 401
        assert login(c2).status_code == 429  # 127.0.0.2 is locked out ...
        c3 = stack.enter_context(client(b.port, "127.0.0.3"))
        assert login(c3).status_code == 200  # ... 127.0.0.3, through the same standby, is not
        # a client naming another address to the standby: replaced by its real one (else it would be 429)
        c5 = stack.enter_context(client(b.port, "127.0.0.5"))
        assert login(c5, **{"X-Floorwatch-Client": "127.0.0.2"}).status_code == 200
        assert login(c5, **{"X-Forwarded-For": "127.0.0.2"}).status_code == 200
        # straight to the owner with a forged address and key: ignored, it stays locked out by its own
        c4 = stack.enter_context(client(a.port, "127.0.0.4"))
        forged = {"X-Floorwatch-Client": "10.0.0.9", "X-Floorwatch-Forward-Key": "0" * 64}
        for _ in range(5):
            assert login(c4, "wrong-password", **forged).status_code == 401
        assert login(c4, **{**forged, "X-Floorwatch-Client": "10.0.0.10"}).status_code == 429
        assert login(c4).status_code == 429

        # at most MAX_CONNECTIONS at once: the next one is told 503, and once they close all is well again
        idle = [socket.create_connection(("127.0.0.1", b.port)) for _ in range(MAX_CONNECTIONS)]
        try:
            busy = wait_for(lambda: (r := c2.get("/api/alarms")).status_code == 503 and r, 15, "a 503 when busy")
            assert "connections at once" in busy.json()["detail"], busy.text
        finally:
            for sock in idle:
                sock.close()
        wait_for(lambda: c2.get("/api/alarms").status_code == 200, 15, "forwarding once the idle ones closed")
        stream_still_open = not stream.ended.is_set()

        direct = Stream(stack.enter_context(client(a.port, "127.0.0.6")), token)
        wait_for(direct.opened.is_set, 15, "the stream's first bytes straight from the owner")

        # a worker of an older version takes the lease (it writes no advert): a's address is not used any more,
        # and the streams a serves end (through the standby too): no alarm reaches them any more
        engine = create_engine(postgres_schema)
        with engine.begin() as connection:
            connection.execute(text("UPDATE partition_leases SET owner = 'old-version', epoch = epoch + 1,"
                                    " expires_at = clock_timestamp() + interval '1 hour'"))
        # the standby reads the row once per poll interval (0.5 s): it says so from its next read on
        # (until then it may still forward to a, which refuses by itself: that 503 is a's, not the standby's)
        not_advertised = wait_for(lambda: ((r := c2.get("/api/alarms")).status_code == 503
                                           and SERVED_BY not in r.headers and r), 10,
                                  "the standby refusing to use a's address")

        wait_for(stream.ended.is_set, 15, "the stream through the standby ending once a's epoch is over")
        wait_for(lambda: a.health()["dependencies"]["lease"]["state"] == "lost", 15, "a noticing the steal")
        wait_for(direct.ended.is_set, 15, "a ending its own stream once it lost the lease")

        # then b takes the site over and serves it itself
        with engine.begin() as connection:
            connection.execute(text("UPDATE partition_leases SET expires_at = clock_timestamp() - interval '1 s'"))
        engine.dispose()
        b.wait_subscribed(60)
        native = b.api.get("/api/alarms")
    assert stream_still_open, "the stream through the standby ended on its own"
    assert native.status_code == 200 and SERVED_BY not in native.headers, native.headers
    assert not_advertised.status_code == 503 and SERVED_BY not in not_advertised.headers, not_advertised.text
    assert "the owner old-version advertises no HTTP address" in not_advertised.json()["detail"], not_advertised.text


def test_a_standby_whose_owner_is_a_worker_without_http_says_so(
    mosquitto: EmbeddedBroker, postgres_schema: str, receiver: Receiver, tmp_path: Path,  # noqa: F811
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    s = worker("s", mosquitto, postgres_schema, site_file, tmp_path)
    # an address given to a worker is not used (it serves no HTTP): it says so
    w = WorkerProcess("w", {**s.env, "FLOORWATCH_ADVERTISE_URL": "http://w.example:8000"}, tmp_path / "w")
    try:
        wait_for(lambda: w.says("owns partition"), 60, "w owning the site")
        assert w.says("FLOORWATCH_ADVERTISE_URL=http://w.example:8000 is ignored"), w.log.read_text()[-2000:]
        s.spawn()
        wait_for(lambda: status(s) == "standby", 30, "s waiting as a standby")
        refused = s.api.get("/api/alarms")
        owner = s.health()["dependencies"]["owner"]
    finally:
        s.stop()
        w.stop()
    assert refused.status_code == 503, refused.text
    assert "the owner w is a `floorwatch worker` without HTTP" in refused.json()["detail"], refused.text
    assert owner["name"] == "w" and owner["url"] is None and not owner["up"], owner


def test_the_owner_killed_the_standby_answers_a_clear_503_until_it_owns_the_site_then_serves_it_itself(
    mosquitto: EmbeddedBroker, postgres_schema: str, receiver: Receiver, tmp_path: Path,  # noqa: F811
    record: Record,
) -> None:
    with owner_and_standby(mosquitto, postgres_schema, tmp_path, receiver.port) as (a, b):
        assert b.api.get("/api/alarms").headers.get(SERVED_BY) == "a"
        stream = Stream(b.api, "workers-token")
        wait_for(stream.opened.is_set, 15, "the stream's first bytes through the standby")
        a.kill()
        killed = time.monotonic()
        wait_for(stream.ended.is_set, 10, "the forwarded stream ending with its owner")
        stream_ended_s = time.monotonic() - killed
        refused = b.api.get("/api/alarms")
        refused_s = time.monotonic() - killed
        answers: list[httpx.Response | None] = []

        def asked_then_owned_by_b() -> bool:
            try:
                answers.append(b.api.get("/api/alarms"))
            except httpx.HTTPError:  # the moment the standby hands its port over to uvicorn
                answers.append(None)
            held = lease(postgres_schema)
            return held is not None and held.owner == "b"

        wait_for(asked_then_owned_by_b, 30, "b owning the site")
        owned_s = time.monotonic() - killed
        b.wait_subscribed(60)
        served = b.api.get("/api/alarms")
        served_s = time.monotonic() - killed
        health = b.health()
    assert refused.status_code == 503, refused.text
    detail = refused.json()["detail"]
    assert "the owner a at http://127.0.0.1:" in detail and "is not answering" in detail, detail
    assert "FLOORWATCH_LEASE_TTL_S" in detail and refused.headers["retry-after"] == "2", detail
    # until b owned the site: the clear 503 (a not answering, then its lease expired), never a 500 or a hang
    while_standby = [r for r in answers[:-1] if r is not None]
    record("standby-forwarding-owner-killed", {
        "stream_ended_s": round(stream_ended_s, 2), "first_503_s": round(refused_s, 3),
        "lease_owned_s": round(owned_s, 2), "served_natively_s": round(served_s, 2), "lease_ttl_s": 6.0,
        "answers_503": sum(1 for r in while_standby if r.status_code == 503),
        "cut_at_handover": sum(1 for r in answers if r is None)})
    assert while_standby and all(r.status_code == 503 and "retry" in r.json()["detail"] for r in while_standby), \
        [(r.status_code, r.text) for r in while_standby]
    assert served.status_code == 200 and SERVED_BY not in served.headers, served.headers
    assert health["status"] == "ok" and health["dependencies"]["lease"]["state"] == "owner", health
