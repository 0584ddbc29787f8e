"""The standby's forwarding proxy (server/standby.py) in this process: a real lease row in PostgreSQL names
a local owner, a small HTTP server of the test that shows what reached it and streams keep-alives for as
long as its client stays (as a fenced owner of an older version would). The real servers as processes are
in tests/faults/test_standby_forwarding.py.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, text

from server.adapters.sql.database import make_engine, migrate
from server.adapters.sql.leases import LeaseStore
from server.api.forwarded import CLIENT, KEY, TrustedPeers
from server.services.lease import LeaseKeeper
from server.standby import MAX_BODY, StandbyServer
from tests.faults.test_standby_forwarding import Stream
from tests.support.wait import wait_for

SITE = "r1"
FORWARD_KEY = "k" * 64


class _Owner(http.server.BaseHTTPRequestHandler):
    """`/api/alarms/stream`: an event stream of keep-alives until the client leaves; anything else: what it received."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/api/alarms/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while not self.server.done.is_set():  # type: ignore[attr-defined]
                    self.wfile.write(b"f\r\n: keep-alive\n\n\n\r\n")
                    self.wfile.flush()
                    self.server.done.wait(0.1)  # type: ignore[attr-defined]
            except OSError:  # the standby ended the exchange
                pass
            return
        seen = {"headers": [[k, v.encode("latin-1").hex()] for k, v in self.headers.items()]}
        data = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Proxy:
    standby: StandbyServer
    engine: Engine
    owner_url: str

    @property
    def url(self) -> str:
        host, port = self.standby.httpd.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def hand_over(self, owner: str) -> None:
        """Another worker takes the lease (a new epoch), as a takeover does."""
        with self.engine.begin() as connection:
            connection.execute(text("UPDATE partition_leases SET owner = :owner, epoch = epoch + 1, "
                                    "advert_epoch = epoch + 1"), {"owner": owner})


def seen(response: httpx.Response) -> dict[str, bytes]:
    """The headers the owner received (lower-case names, raw values)."""
    return {k.lower(): bytes.fromhex(v) for k, v in response.json()["headers"]}


@pytest.fixture
def proxy(postgres_schema: str) -> Iterator[Proxy]:
    owner = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Owner)
    owner.done = threading.Event()  # type: ignore[attr-defined]
    owner.daemon_threads = True
    threading.Thread(target=owner.serve_forever, args=(0.1,), daemon=True).start()
    owner_url = f"http://127.0.0.1:{owner.server_address[1]}"
    engine = make_engine(postgres_schema)
    migrate(engine)
    store = LeaseStore(engine)
    assert store.acquire(SITE, 0, "a", 600, "hash", 1, owner_url, FORWARD_KEY) is not None
    keeper = LeaseKeeper(store, SITE, "b", ttl_s=600, renew_s=0.5, site_hash="hash")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    standby = StandbyServer(listener, keeper, TrustedPeers("127.0.0.1"))
    try:
        yield Proxy(standby, engine, owner_url)
    finally:
        standby.stop()
        listener.close()
        owner.done.set()  # type: ignore[attr-defined]
        owner.shutdown()
        owner.server_close()
        engine.dispose()


def test_a_forwarded_stream_ends_once_the_lease_row_names_another_owner(proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url) as api:
        stream = Stream(api, "any")
        wait_for(stream.opened.is_set, 10, "the stream's first bytes through the standby")
        proxy.hand_over("c")  # the owner the stream goes to keeps sending: only the standby can end it
        wait_for(stream.ended.is_set, 10, "the stream to the previous owner ending")


def test_the_owner_gets_the_clients_host_its_raw_header_bytes_and_no_headers_its_connection_names(
        proxy: Proxy) -> None:
    with httpx.Client(base_url=proxy.url) as api:
        answer = api.get("/echo", headers={"Host": "floor.example:8443", "Connection": "keep-alive, X-Drop-Me",
                                            "X-Drop-Me": "1", "X-Keep": "2"})
    assert answer.status_code == 200, answer.text
    headers = seen(answer)
    assert headers["host"] == b"floor.example:8443", headers
    assert "x-drop-me" not in headers and headers["x-keep"] == b"2", headers

    # a value with a byte beyond ASCII: forwarded as it came, not a traceback and no answer
    port = int(proxy.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Note: caf\xe9\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := raw.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), received[:300]
    assert dict((k, bytes.fromhex(v)) for k, v in json.loads(body)["headers"])["X-Note"] == b"caf\xe9"


def test_the_client_address_comes_from_x_forwarded_for_only_from_a_trusted_peer(proxy: Proxy) -> None:
    claims = {"X-Forwarded-For": "10.1.1.1, 10.2.2.2", "X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=proxy.url, transport=httpx.HTTPTransport(local_address="127.0.0.1")) as local:
        trusted = seen(local.get("/echo", headers=claims))
    with httpx.Client(base_url=proxy.url,
                      transport=httpx.HTTPTransport(local_address="127.0.0.7")) as other:
        untrusted = seen(other.get("/echo", headers=claims))
    client, key = CLIENT.lower(), KEY.lower()
    assert trusted[client] == b"10.2.2.2" and trusted["x-forwarded-proto"] == b"https", trusted
    assert untrusted[client] == b"127.0.0.7" and "x-forwarded-proto" not in untrusted, untrusted
    assert "x-forwarded-for" not in trusted and "x-forwarded-for" not in untrusted
    assert trusted[key] == untrusted[key] == FORWARD_KEY.encode()


def test_a_standby_whose_own_name_is_in_the_row_answers_that_it_is_taking_over(proxy: Proxy) -> None:
    proxy.hand_over("b")
    answer = wait_for(lambda: (r := httpx.get(f"{proxy.url}/echo", timeout=10)).status_code == 503 and r, 10,
                      "the standby noticing it owns the row")
    assert "b is taking the site over" in answer.json()["detail"], answer.text


def test_a_client_that_dribbles_its_request_head_is_cut_off(proxy: Proxy, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setattr("server.standby.HEAD_S", 1.0)
    port = int(proxy.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET /echo HTTP/1.1\r\n")

        def cut_off() -> bool:
            try:
                raw.sendall(b"X")  # one byte of a header at a time: each read is quick, the head never ends
                raw.settimeout(0.2)
                return raw.recv(1) == b""
            except TimeoutError:
                return False
            except OSError:
                return True

        wait_for(cut_off, 30, "the standby closing a connection whose head never ends")


def test_a_body_over_the_limit_is_answered_413(proxy: Proxy) -> None:
    port = int(proxy.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode())
        raw.sendall(b"x" * 256 * 1024)  # part of the body: the standby reads some of it, then answers
        received = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in received and time.monotonic() < deadline:
            chunk = raw.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.0 413"), received[:200]
