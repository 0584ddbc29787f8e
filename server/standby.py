"""A `floorwatch server` waiting for the site's lease: its port forwards every request to the owner.

Live device state and open alarms are in the owner's memory, so a standby does not answer from
PostgreSQL itself: it passes each request (method, path and query, headers, body) to the address the
owner advertised in the lease row (FLOORWATCH_ADVERTISE_URL) and streams the answer back chunk by chunk,
the alarm stream (SSE) included. Any worker's address then works for the page and the API.

- `/api/health` stays the standby's own: 503 with status "standby" (a load balancer keeps to the owner),
  its lease and the owner it forwards to.
- Forwarded answers carry `X-Floorwatch-Served-By: <owner>`. The client's address goes along with the
  owner's forwarding key (server/api/forwarded.py), so the owner's login limiter sees the real client;
  the client's Host goes too, so the URLs the owner builds (redirects) name the address the client used.
  X-Forwarded-For and X-Forwarded-Proto count only from the peers uvicorn trusts (FORWARDED_ALLOW_IPS).
- The lease row is read at most once per poll interval (a thread refreshes it); an exchange whose owner
  or epoch is no longer the row's ends (an open stream to a fenced owner would look live and show nothing).
- No owner to forward to (lease expired, the owner is a `floorwatch worker`, or it is not answering within
  CONNECT_S): 503 with what happened and that a standby takes over within the lease's TTL.
- At most MAX_CONNECTIONS connections at once; as many more are answered 503, any beyond are closed.
- Once this worker owns the site, `stop` ends every forwarded exchange (an open stream ends, and the page
  reconnects to this worker) and the socket goes to uvicorn.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from server.api.forwarded import CLIENT, FORWARDED_BY, KEY, SERVED_BY, TrustedPeers, plain_address
from server.domain.leases import Advert
from server.services.lease import LeaseKeeper

log = logging.getLogger(__name__)

CONNECT_S = 2.0
"""How long a standby waits to reach the owner before it answers 503."""
READ_S = 60.0
"""How long it waits for the owner's answer (or its next bytes)."""
STREAM_READ_S = 45.0
"""The same on an event stream: the owner sends a keep-alive every 15 s, so a silent stream is dead."""
CLIENT_S = 30.0
"""How long a client may take to send its request body, or to take the next bytes of the answer."""
HEAD_S = 10.0
"""How long a client may take to send a request's line and headers, all told (a slow sender holds a slot)."""
MAX_CONNECTIONS = 64
MAX_BODY = 8 * 1024 * 1024
"""The largest request the API takes is an inspection photo (at most ~6.7 MiB as base64)."""
DRAIN_BYTES = 1024 * 1024
DRAIN_S = 1.0
"""Before refusing a request body, read this much of it for at most this long: closing a socket with
unread bytes resets it, and the client would lose the answer."""
RETRY_AFTER_S = 2

KEEPALIVE = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1), (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10),
             (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5), (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)]
"""An owner's machine that vanished (no FIN) ends its open streams after about 25 s."""
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade"})
NOT_FORWARDED = HOP_BY_HOP | {"content-length", "expect", "forwarded", "x-forwarded-for", "x-forwarded-proto",
                              *(h.lower() for h in (CLIENT, KEY, FORWARDED_BY))}
"""A client's own claims of its address go too: uvicorn believes X-Forwarded-For from 127.0.0.1, which is
where a standby on the owner's machine connects from. X-Forwarded-Proto goes on from a trusted peer."""


class Unavailable(Exception):
    """No answer from the owner: the status and what to tell the client."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def why_not(advert: Advert | None, ttl_s: float) -> str | None:
    """Why a request cannot be forwarded to the owner named in the lease row, or None."""
    takes_over = f"a standby takes over within FLOORWATCH_LEASE_TTL_S ({ttl_s:g} s); retry"
    if advert is None:
        return f"standby: no worker owns the site yet; {takes_over}"
    if advert.expires_in_s <= 0:
        return (f"standby: no worker owns the site right now (the lease of {advert.owner} expired "
                f"{-advert.expires_in_s:.0f} s ago); {takes_over}")
    if not advert.advertised:
        return (f"standby: the owner {advert.owner} advertises no HTTP address (a worker of an older version): "
                "use its own address until every worker is upgraded")
    if advert.http_url is None:
        return (f"standby: the owner {advert.owner} is a `floorwatch worker` without HTTP; the API is served "
                "while a `floorwatch server` owns the site (stop that worker to hand the site over to one)")
    return None


@dataclass
class _Exchange:
    """One client connection's state, as the watcher and `stop` see it."""

    client: socket.socket
    head_by: float | None
    """While a request's head is being read: the monotonic time by which it must be complete."""
    upstream: socket.socket | None = None
    owner: tuple[str, int] | None = None
    """The owner and epoch the request in flight was forwarded to."""


class StandbyServer:
    """The standby's port until it owns the site (see the module's docstring)."""

    def __init__(self, listener: socket.socket, keeper: LeaseKeeper, trusted: TrustedPeers | None = None) -> None:
        self.keeper = keeper
        self.trusted = trusted or TrustedPeers(os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1"))
        """The peers whose X-Forwarded-For/-Proto count: uvicorn's own setting, as the owner reads it."""
        self.client = httpx.Client(
            transport=httpx.HTTPTransport(socket_options=KEEPALIVE, retries=0,
                                          limits=httpx.Limits(max_connections=MAX_CONNECTIONS,
                                                              max_keepalive_connections=0)),
            follow_redirects=False, trust_env=False)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._open: dict[int, _Exchange] = {}
        """Per handling thread: its client connection and the exchange in flight, shut down by `stop`."""
        self._stopping = False
        self._read: tuple[float, Advert | None] | None = None
        """When the lease row was read last (monotonic) and what it said."""
        self._done = threading.Event()
        self.httpd = _Server(listener, self)
        listener.listen()
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.2,), name="standby-http",
                                       daemon=True)
        self.thread.start()
        self.watcher = threading.Thread(target=self._watch, name="standby-watch", daemon=True)
        self.watcher.start()

    def current(self) -> Advert | None:
        """The lease row as read within the last poll interval (raises when the database cannot be read)."""
        with self._lock:
            read = self._read
        if read is not None and time.monotonic() - read[0] < self.keeper.poll_s:
            return read[1]
        return self._refresh()

    def _refresh(self) -> Advert | None:
        at = time.monotonic()
        advert = self.keeper.advert()
        with self._lock:
            self._read = (at, advert)
        return advert

    def _watch(self) -> None:
        """Every poll interval: read the row, end what was forwarded to a previous owner or epoch (that
        owner is fenced, or about to be), and cut off clients too slow to send a request's head."""
        while not self._done.wait(self.keeper.poll_s):
            try:
                advert: Advert | None = self._refresh()
                known = True
            except Exception as exc:  # the database may be out: forwarded exchanges go on meanwhile
                log.debug("standby: cannot read the lease row (%s)", type(exc).__name__)
                advert, known = None, False
            now = time.monotonic()
            owner = (advert.owner, advert.epoch) if advert is not None else None
            with self._lock:
                for exchange in self._open.values():
                    if exchange.head_by is not None and now > exchange.head_by:
                        _shut(exchange.client)
                    if known and exchange.upstream is not None and exchange.owner != owner:
                        _shut(exchange.upstream)

    def health(self) -> dict[str, Any]:
        owner: dict[str, Any]
        try:
            advert = self.current()
        except Exception as exc:  # the database may be out: say so, the standby keeps waiting
            owner = {"up": False, "detail": f"cannot read the lease row ({type(exc).__name__})"}
        else:
            problem = why_not(advert, self.keeper.ttl_s)
            owner = {"up": problem is None, "detail": problem, "name": advert.owner if advert else None,
                     "epoch": advert.epoch if advert else None, "url": advert.http_url if advert else None,
                     "expires_in_s": round(advert.expires_in_s, 1) if advert else None}
        return {"status": "standby", "dependencies": {"lease": self.keeper.status(), "owner": owner}, "ingest": {}}

    def forward(self, handler: _Handler) -> None:
        """Pass the handler's request to the owner and its answer back, or answer why not."""
        try:
            body = _body(handler)  # read before any answer: a refused body left unread resets the connection
            advert = self._advert()
            response = self._send(handler, advert, body)
        except Unavailable as exc:
            handler.answer(exc.status, {"detail": exc.detail})
            return
        try:
            upstream = response.extensions["network_stream"].get_extra_info("socket")
            if upstream is not None and not self._track(upstream, advert):
                handler.answer(503, {"detail": self.taking_over()})
                return
            handler.send_response_only(response.status_code, response.reason_phrase)
            for name, value in response.headers.multi_items():
                if name.lower() not in HOP_BY_HOP:
                    handler.send_header(name, value)
            handler.send_header(SERVED_BY, _header_value(advert.owner))
            handler.end_headers()
            for chunk in response.iter_raw():  # as the owner sends it: an event reaches the page at once
                handler.wfile.write(chunk)
        except (httpx.HTTPError, OSError) as exc:  # either side hung up, or `stop`: the client's answer ends
            log.debug("forwarded %s %s ended: %s", handler.command, handler.path, exc)
        finally:
            response.close()
            self._untrack()

    def _advert(self) -> Advert:
        try:
            advert = self.current()
        except Exception as exc:
            raise Unavailable(503, f"standby: cannot read who owns the site from the database "
                                   f"({type(exc).__name__}); retry") from None
        problem = why_not(advert, self.keeper.ttl_s)
        if problem is not None or advert is None:
            raise Unavailable(503, problem or "standby: no owner")
        if advert.owner == self.keeper.owner:  # this worker took the lease; its own API starts in a moment
            raise Unavailable(503, self.taking_over())
        return advert

    def _send(self, handler: _Handler, advert: Advert, body: bytes | None) -> httpx.Response:
        streaming = "text/event-stream" in handler.headers.get("Accept", "")
        timeout = httpx.Timeout(READ_S, connect=CONNECT_S, read=STREAM_READ_S if streaming else READ_S,
                                pool=CONNECT_S)
        not_answering = (f"standby: the owner {advert.owner} at {advert.http_url} is not answering; if it died, a "
                         f"standby takes over within FLOORWATCH_LEASE_TTL_S ({self.keeper.ttl_s:g} s); retry")
        try:
            request = self.client.build_request(handler.command, f"{advert.http_url}{handler.path}",
                                                headers=self._headers(handler, advert), content=body,
                                                timeout=timeout)
            return self.client.send(request, stream=True)
        except (httpx.InvalidURL, httpx.LocalProtocolError, ValueError) as exc:  # a request h11 would not send
            raise Unavailable(400, f"standby: the request cannot be forwarded as sent ({exc}); check its path "
                                   "and headers") from None
        except httpx.ReadTimeout:
            raise Unavailable(504, f"standby: the owner {advert.owner} at {advert.http_url} did not answer "
                                   f"within {READ_S:g} s; retry") from None
        except (httpx.TransportError, RuntimeError) as exc:  # RuntimeError: `stop` closed the client
            log.info("owner %s at %s: %s", advert.owner, advert.http_url, type(exc).__name__)
            raise Unavailable(503, not_answering) from None

    def _headers(self, handler: _Handler, advert: Advert) -> list[tuple[bytes, bytes]]:
        """The client's headers as it sent them (bytes: a value may be any byte but CR/LF), except hop-by-hop
        ones and those named in its Connection header, and claims of address from untrusted peers."""
        named = {token.strip().lower() for value in handler.headers.get_all("Connection", [])
                 for token in value.split(",")}
        peer = plain_address(handler.client_address[0])
        trusted = peer in self.trusted
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in handler.headers.items()
                   if name.lower() not in NOT_FORWARDED and name.lower() not in named]
        proto = handler.headers.get("X-Forwarded-Proto")
        if trusted and proto:
            headers.append((b"X-Forwarded-Proto", proto.encode("latin-1")))
        client = self.trusted.client(peer, handler.headers.get_all("X-Forwarded-For", [])) if trusted else peer
        return [*headers, (CLIENT.encode(), client.encode("latin-1")),
                (KEY.encode(), (advert.forward_key or "").encode()),
                (FORWARDED_BY.encode(), _header_value(self.keeper.owner).encode())]

    def taking_over(self) -> str:
        return f"standby: {self.keeper.owner} is taking the site over; retry"

    def reading(self, connection: socket.socket) -> None:
        """A handling thread waits for a request's head on a client's connection (HEAD_S from now)."""
        with self._lock:
            self._open[threading.get_ident()] = _Exchange(connection, time.monotonic() + HEAD_S)

    def head_read(self) -> None:
        with self._lock:
            exchange = self._open.get(threading.get_ident())
            if exchange is not None:
                exchange.head_by = None

    def begin(self) -> bool:
        """The handling thread goes on with the request; False once `stop` began."""
        with self._lock:
            return not self._stopping

    def _track(self, upstream: socket.socket, advert: Advert) -> bool:
        with self._lock:
            exchange = self._open.get(threading.get_ident())
            if self._stopping or exchange is None:
                return False
            exchange.upstream, exchange.owner = upstream, (advert.owner, advert.epoch)
            return True

    def _untrack(self) -> None:
        with self._lock:
            exchange = self._open.get(threading.get_ident())
            if exchange is not None:
                exchange.upstream, exchange.owner = None, None

    def end(self) -> None:
        """The handling thread's connection is over."""
        with self._lock:
            self._open.pop(threading.get_ident(), None)
            self._idle.notify_all()

    def stop(self) -> None:
        """Stop answering and end every exchange in flight (open streams); the socket stays open for uvicorn.
        The owners' sides first, so that an answer under way ends as the owner's end would; a client that
        takes no more bytes is cut off after a moment."""
        self.httpd.shutdown()
        self.thread.join(5)
        self._done.set()
        self.watcher.join(5)
        with self._lock:
            self._stopping = True
            for owners_side, wait_s in ((True, 2.0), (False, 3.0)):
                for exchange in self._open.values():
                    _shut(exchange.upstream if owners_side else exchange.client)
                if self._idle.wait_for(lambda: not self._open, wait_s):
                    break
            else:
                log.warning("standby: %d forwarded exchange(s) did not end", len(self._open))
        self.client.close()


def _shut(sock: socket.socket | None) -> None:
    """End a connection's both directions now; its thread sees the end and finishes."""
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed by its side
            sock.shutdown(socket.SHUT_RDWR)


def _header_value(name: str) -> str:
    """A worker's name as a header carries it (FLOORWATCH_WORKER_NAME may be any text)."""
    return name.encode("ascii", "backslashreplace").decode("ascii").replace("\r", " ").replace("\n", " ")


def _body(handler: _Handler) -> bytes | None:
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        _drain(handler)
        raise Unavailable(411, "standby: send the request body with a Content-Length")
    try:
        length = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        raise Unavailable(400, "standby: Content-Length is not a number") from None
    if length < 0 or length > MAX_BODY:
        _drain(handler)
        raise Unavailable(413, f"standby: a request body may have at most {MAX_BODY} bytes")
    return handler.rfile.read(length) if length else None


def _drain(handler: _Handler, limit: int = DRAIN_BYTES) -> None:
    """Read and drop up to `limit` bytes of a body that is refused, for at most DRAIN_S; the connection then
    closes (what is left of the body is not read)."""
    handler.close_connection = True
    deadline = time.monotonic() + DRAIN_S
    taken = 0
    try:
        while taken < limit and (left := deadline - time.monotonic()) > 0:
            handler.connection.settimeout(left)
            chunk = handler.rfile.read1(min(65536, limit - taken))
            if not chunk:
                return
            taken += len(chunk)
    except OSError:  # timed out or hung up: enough was read
        pass
    finally:
        handler.connection.settimeout(CLIENT_S)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = CLIENT_S

    def handle_one_request(self) -> None:
        self.server.standby.reading(self.connection)
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.server.standby.head_read()
        return parsed

    def _handle(self) -> None:
        standby = self.server.standby
        if not standby.begin():
            self.answer(503, {"detail": standby.taking_over()})
            return
        if self.path.split("?")[0] == "/api/health":
            self.answer(503, standby.health())
        elif not self.path.startswith("/"):
            self.answer(400, {"detail": "standby: give a path (/api/...), not a whole URL"})
        elif self.headers.get(FORWARDED_BY):
            self.answer(503, {"detail": f"standby: {self.headers[FORWARDED_BY]} forwarded this request to "
                                        f"{standby.keeper.owner}, which is a standby too: the owner's "
                                        "FLOORWATCH_ADVERTISE_URL leads here (the owner may have died and "
                                        "been restarted as a standby); retry"})
        else:
            standby.forward(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 503:
            self.send_header("Retry-After", str(RETRY_AFTER_S))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class _BusyHandler(_Handler):
    """Beyond MAX_CONNECTIONS: read the request (so the answer is not lost to a reset), answer 503."""

    def _handle(self) -> None:
        if self.headers.get("Content-Length") or self.headers.get("Transfer-Encoding"):
            _drain(self)
        self.close_connection = True
        self.answer(503, {"detail": f"standby: more than {MAX_CONNECTIONS} connections at once; retry"})

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle


class _Server(http.server.ThreadingHTTPServer):
    """A thread per connection on the listener the server already bound: MAX_CONNECTIONS forwarded at once,
    as many more told 503, any beyond those closed unanswered."""

    def __init__(self, listener: socket.socket, standby: StandbyServer) -> None:
        super().__init__(listener.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()  # made by the base class; the server's own listener serves instead
        self.socket = listener
        self.standby = standby
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.overflow = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.slots.acquire(blocking=False):
            handler, slot = _Handler, self.slots
        elif self.overflow.acquire(blocking=False):
            handler, slot = _BusyHandler, self.overflow
        else:
            self.shutdown_request(request)
            return
        threading.Thread(target=self._serve, args=(handler, slot, request, client_address), daemon=True,
                         name="standby-request").start()

    def _serve(self, handler: type[_Handler], slot: threading.BoundedSemaphore, request: Any,
               client_address: Any) -> None:
        try:
            handler(request, client_address, self)
        except OSError:  # the client hung up or was too slow (CLIENT_S, HEAD_S)
            pass
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.standby.end()
            self.shutdown_request(request)
            slot.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("standby: a request from %s failed", client_address[0], exc_info=True)
