"""Concurrent delivery (issue #14 item 1): a slow channel holds neither another channel's page nor the
worker, one channel's pages go out one at a time in order, and a stalled send is cut off by the
attempt timeout and retried. Real time, the service's own worker thread, real channels on 127.0.0.1:
an SMTP server, a webhook receiver, and a second webhook receiver that answers only after a delay."""

from __future__ import annotations

import http.server
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gateway.contract import Severity
from server.adapters.notify import AppriseSender
from server.adapters.sql.response_models import NotificationRow
from server.adapters.sql.values import aware
from server.domain import notify as routing
from server.domain.notify import url_hash
from server.services.notify import CLAIM_BATCH, LANE_DEPTH, LEASE, Push
from tests.server.services.conftest import Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import raise_alarm, wire
from tests.support.wait import wait_for, wait_until


@dataclass
class Request:
    path: str
    body: dict[str, Any]
    key: str | None
    start: float
    end: float = 0.0


@dataclass
class SlowHook:
    """A webhook receiver that answers each request `delay` seconds after it came in."""

    port: int
    delay: float
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.end]

    def started(self) -> list[Request]:
        with self.lock:
            return list(self.requests)


@pytest.fixture
def slow() -> Iterator[SlowHook]:
    box = SlowHook(0, 10.0)

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = Request(self.path, {}, self.headers.get("Idempotency-Key"), time.monotonic())
            length = int(self.headers.get("Content-Length") or 0)
            request.body = json.loads(self.rfile.read(length) or b"{}")
            with box.lock:
                box.requests.append(request)
            time.sleep(box.delay)
            self.send_response(200)
            self.end_headers()
            request.end = time.monotonic()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    box.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


def slow_site(smtp: Smtp, hook: Hook, slow: SlowHook, tmp_path: Path, read_timeout_s: int = 30):  # type: ignore[no-untyped-def]
    """The response floor with the safety officer's channel on the slow receiver; apprise's own read
    timeout (4 s by default) is raised so that the receiver's answer, not apprise, ends the send."""
    text = site_yaml(smtp.port, hook.port).replace(
        f"  safety_officer: ['json://127.0.0.1:{hook.port}/safety']",
        f"  safety_officer: ['json://127.0.0.1:{slow.port}/slow?rto={read_timeout_s}']")
    assert f"127.0.0.1:{slow.port}/slow" in text
    return make_site(text, tmp_path)


def alarm_of(request: Request) -> int:
    """The alarm id of a push, from its link."""
    match = re.search(r"#alarm=(\d+)", request.body["message"])
    assert match is not None, request.body
    return int(match.group(1))


def arrived_at(hook: Hook, path: str, subject: str) -> float | None:
    return time.monotonic() if any(subject in b["message"] for b in hook.at(path)) else None


def test_a_slow_webhook_does_not_delay_another_channels_page(
        db: tuple[str, sessionmaker[Session]], smtp: Smtp, hook: Hook, slow: SlowHook, tmp_path: Path) -> None:
    """The safety officer's webhook answers after 10 s. While it holds the first fire page, a second
    critical alarm reaches the supervisor's webhook (about 1 s after its raise here) and its mail reaches the
    lead; the slow channel's page is still pending then and is recorded sent once it answers."""
    _, sessions = db
    site = slow_site(smtp, hook, slow, tmp_path)
    alarms, svc = wire(sessions, site, lambda: datetime.now(UTC), poll_s=1.0)  # type: ignore[arg-type]
    svc.start()
    try:
        first = raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-01", "z1", Severity.CRITICAL, datetime.now(UTC))
        wait_for(lambda: slow.started(), timeout=10, what="the slow channel's first request")
        raised = time.monotonic()
        second = raise_alarm(alarms, "elec.strip_overload", "strip-z2-01", "z2", Severity.CRITICAL,
                             datetime.now(UTC), "Strip overloaded at 130 %", "插线板严重过载", 13.0)
        at = wait_for(lambda: arrived_at(hook, "/supervisor", "strip-z2-01"), timeout=10, what="the fast page")
        fast_s = at - raised
        pending = not slow.answered()
        wait_for(lambda: len(smtp.messages) >= 2, timeout=10, what="the lead's two mails")
        wait_for(lambda: len(slow.answered()) == 2, timeout=40, what="the slow channel's two pages")
        wait_for(lambda: all(r["status"] == "sent" for r in svc.log_of()), timeout=10, what="every row sent")
    finally:
        svc.stop()
    print(f"second alarm at the fast webhook {fast_s:.2f} s after its raise; slow channel pending: {pending}")
    # Not held: it arrived while the slow channel still held the first page (its answer takes 10 s).
    # How soon is a figure for the bench (docs/performance.md), not an assertion.
    assert pending, "the fast page came after the slow channel answered: it was not held, but this proves nothing"
    [a, b] = slow.answered()
    assert (first.id, second.id) == (alarm_of(a), alarm_of(b))
    assert a.end <= b.start, "one channel's pages one at a time, in order"
    rows = [r for r in svc.log_of() if r["channel"] == url_hash(f"json://127.0.0.1:{slow.port}/slow?rto=30")]
    assert [(r["alarm_id"], r["attempts"], len(r["deliveries"])) for r in rows] == [(first.id, 1, 1), (second.id, 1, 1)]
    assert all(r.key for r in (a, b)) and a.key != b.key, "each push its own Idempotency-Key"


def test_one_channels_pages_leave_in_order_one_at_a_time_while_other_channels_keep_up(
        db: tuple[str, sessionmaker[Session]], smtp: Smtp, hook: Hook, slow: SlowHook, tmp_path: Path) -> None:
    """Three critical alarms of different rules (no folding) are raised at once; each pages the slow
    safety officer's channel (1 s per answer) and the fast supervisor's. The slow receiver sees them in
    the order they were queued, never two at a time; the supervisor has all three before the slow
    channel answered its second."""
    _, sessions = db
    slow.delay = 1.0
    site = slow_site(smtp, hook, slow, tmp_path)
    alarms, svc = wire(sessions, site, lambda: datetime.now(UTC), poll_s=1.0)  # type: ignore[arg-type]
    svc.start()
    try:
        raised = [
            raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-01", "z1", Severity.CRITICAL, datetime.now(UTC)),
            raise_alarm(alarms, "elec.strip_overload", "strip-z1-00", "z1", Severity.CRITICAL, datetime.now(UTC),
                        "Strip overloaded at 130 %", "插线板严重过载", 13.0),
            raise_alarm(alarms, "elec.plug_overcurrent", "plug-z1-pc", "z1", Severity.CRITICAL, datetime.now(UTC),
                        "Plug over 16 A", "插座过流", 17.0),
        ]
        wait_for(lambda: len(hook.at("/supervisor")) == 3, timeout=10, what="the supervisor's three pages")
        answered_then = len(slow.answered())
        wait_for(lambda: len(slow.answered()) == 3, timeout=20, what="the slow channel's three pages")
    finally:
        svc.stop()
    assert answered_then <= 1, answered_then
    requests = slow.answered()
    order = [alarm_of(r) for r in requests]
    queued = [r["alarm_id"] for r in svc.log_of() if r["recipient"] == "safety_officer"]
    assert order == queued == [a.id for a in raised], (order, queued)
    assert all(x.end <= y.start for x, y in itertools.pairwise(requests)), "never two at a time"


def test_a_stalled_send_is_cut_off_by_the_attempt_timeout_and_retried(
        db: tuple[str, sessionmaker[Session]], smtp: Smtp, hook: Hook, slow: SlowHook, tmp_path: Path) -> None:
    """A channel that takes 10 s with a 1 s attempt timeout: the attempt is logged failed ('no answer
    within 1 s'), the row goes back to queued with its backoff (it is not lost), the critical page's
    fallback is queued and sent, and the supervisor's page is not held by any of it."""
    _, sessions = db
    site = slow_site(smtp, hook, slow, tmp_path)
    alarms, svc = wire(sessions, site, lambda: datetime.now(UTC), poll_s=0.5,  # type: ignore[arg-type]
                       attempt_timeout_s=1.0)
    svc.start()
    try:
        alarm = raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-01", "z1", Severity.CRITICAL, datetime.now(UTC))
        wait_for(lambda: hook.at("/fallback"), timeout=10, what="the fallback page")
        assert hook.at("/supervisor"), "the supervisor's page"
    finally:
        svc.stop()
    [row] = [r for r in svc.log_of(alarm_id=alarm.id) if r["recipient"] == "safety_officer"]
    assert row["status"] == "queued" and row["attempts"] == 1, row
    [attempt] = row["deliveries"]
    assert not attempt["ok"] and "no answer within 1 s" in attempt["error"], attempt
    assert 1000 <= attempt["ms"] < 3000, attempt["ms"]
    assert (row["next_attempt_at"] - row["deliveries"][0]["at"]).total_seconds() == 5.0, "first backoff"


class LeaseAtSend:
    """The real apprise sender, noting each row's lease as it stood when its send began."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.real = AppriseSender()
        self.leases: dict[int, datetime | None] = {}

    def send(self, url: str, title: str, body: str, key: str | None = None) -> None:
        assert key is not None
        nid = int(key.rsplit("-n", 1)[1])
        with self.sessions() as session:
            row = session.get(NotificationRow, nid)
            assert row is not None
            self.leases[nid] = aware(row.lease_until)
        self.real.send(url, title, body, key=key)


def test_a_row_that_waited_in_its_lane_renews_its_lease_and_one_taken_over_meanwhile_is_not_sent(
        db: tuple[str, sessionmaker[Session]], smtp: Smtp, hook: Hook, slow: SlowHook, tmp_path: Path) -> None:
    """Three critical alarms page the slow channel (1.5 s per answer). The first row is sent on its claim's
    lease; the second waited ~1.5 s in its lane, longer than renew_after, and renews its lease before
    its attempt. The third is taken over by another worker while it waits (its lease lapsed there):
    this worker neither sends nor records it."""
    _, sessions = db
    slow.delay = 1.5
    site = slow_site(smtp, hook, slow, tmp_path)
    sender = LeaseAtSend(sessions)
    rows: list[int] = []

    def take_over_the_third(nid: int) -> None:
        rows.append(nid)
        if len(rows) == 3:
            with sessions.begin() as session:
                row = session.get(NotificationRow, nid)
                assert row is not None
                row.claimed_by, row.lease_until = "w2", datetime.now(UTC) + LEASE

    alarms, svc = wire(sessions, site, lambda: datetime.now(UTC),  # type: ignore[arg-type]
                       renew_after=timedelta(seconds=1))
    svc.sender = sender
    alarms_raised = [
        raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-01", "z1", Severity.CRITICAL, datetime.now(UTC)),
        raise_alarm(alarms, "elec.strip_overload", "strip-z1-00", "z1", Severity.CRITICAL, datetime.now(UTC),
                    "Strip overloaded at 130 %", "插线板严重过载", 13.0),
        raise_alarm(alarms, "elec.plug_overcurrent", "plug-z1-pc", "z1", Severity.CRITICAL, datetime.now(UTC),
                    "Plug over 16 A", "插座过流", 17.0),
    ]
    now = datetime.now(UTC)
    svc.tick(now)
    slow_rows = [r["id"] for r in svc.log_of() if r["recipient"] == "safety_officer"]
    assert len(slow_rows) == 3
    svc.before_send = lambda nid: take_over_the_third(nid) if nid in slow_rows else None
    sent = svc.deliver(now)
    first, second, third = slow_rows
    assert sender.leases[first] == now + LEASE, "sent at once: the claim's lease"
    second_lease = sender.leases[second]
    assert second_lease is not None and second_lease - (now + LEASE) >= timedelta(seconds=1), second_lease
    assert third not in sender.leases and len(slow.answered()) == 2, "taken over: not sent by this worker"
    log = {r["id"]: r for r in svc.log_of()}
    assert (log[third]["status"], log[third]["attempts"], log[third]["deliveries"]) == ("sending", 0, [])
    assert [log[n]["status"] for n in (first, second)] == ["sent", "sent"]
    assert sent == len([r for r in log.values() if r["status"] == "sent"]), "deliver counts what it sent"
    assert [alarm_of(r) for r in slow.answered()] == [a.id for a in alarms_raised[:2]]


def test_a_backlog_on_one_channel_is_claimed_a_few_rows_at_a_time_and_never_hides_another_channel(
        db: tuple[str, sessionmaker[Session]], smtp: Smtp, hook: Hook, slow: SlowHook, tmp_path: Path) -> None:
    """25 pushes queued for the slow channel (0.3 s per answer), then one for the supervisor: more than a
    claim batch (20) is ahead of it. The supervisor's push arrives before a claim batch of the slow rows
    has been answered (about 1 s after the start on a quiet machine); the slow channel never
    has more than LANE_DEPTH rows claimed (`sending`) at once, and receives all 25 in queue order."""
    _, sessions = db
    slow.delay = 0.3
    site = slow_site(smtp, hook, slow, tmp_path)
    _, svc = wire(sessions, site, lambda: datetime.now(UTC), poll_s=1.0)  # type: ignore[arg-type]
    slow_url = f"json://127.0.0.1:{slow.port}/slow?rto=30"

    def push(key: str, url: str, recipient: str) -> Push:
        text = routing.Text(f"backlog {key}", f"push {key} #alarm=0")
        return Push(key, None, f"test:{key}", recipient, url, Severity.MAJOR, text, [])

    svc.enqueue([push(f"slow-{i:02d}", slow_url, "safety_officer") for i in range(25)])
    svc.enqueue([push("fast", f"json://127.0.0.1:{hook.port}/supervisor", "supervisor")])
    channel = url_hash(slow_url)
    most = 0

    def sampled(done: Callable[[], bool]) -> Callable[[], bool]:
        """`done`, noting on each poll how many slow rows are claimed at once."""
        def poll() -> bool:
            nonlocal most
            most = max(most, len([r for r in svc.log_of() if r["channel"] == channel and r["status"] == "sending"]))
            return done()
        return poll

    svc.start()
    try:
        started = time.monotonic()
        wait_until(sampled(lambda: bool(hook.at("/supervisor"))), 10, 0.02)
        fast_s = time.monotonic() - started
        slow_before_fast = len(slow.answered())
        wait_until(sampled(lambda: len(slow.answered()) >= 25), 40 - fast_s, 0.05)
    finally:
        svc.stop()
    print(f"the supervisor's push {fast_s:.2f} s after the start; at most {most} slow rows claimed at once")
    # Hidden behind the backlog, it would wait for a whole claim batch of slow rows to be answered.
    assert hook.at("/supervisor") and slow_before_fast < CLAIM_BATCH, (slow_before_fast, fast_s)
    assert 1 <= most <= LANE_DEPTH, most
    assert [r.body["title"] for r in slow.answered()] == [f"backlog slow-{i:02d}" for i in range(25)]
    assert all(r["status"] == "sent" and r["attempts"] == 1 for r in svc.log_of()), "each sent once"


def test_delivery_results_wait_for_room_instead_of_growing_without_end() -> None:
    """The results queue (delivery outcomes on their way to the rule engine) is bounded: a poster waits
    while it is full, and every posted call still runs, in order."""
    from server.services.delivery import Serial

    serial = Serial("results-test", limit=2)
    gate = threading.Event()
    ran: list[int] = []

    def call(i: int) -> None:
        if i == 0:
            gate.wait(30)
        ran.append(i)

    try:
        serial.post(lambda: call(0))
        assert wait_until(lambda: serial.waiting() == 0, 10), "the first call is running"
        serial.post(lambda: call(1))
        serial.post(lambda: call(2))
        fourth = threading.Thread(target=serial.post, args=(lambda: call(3),), daemon=True)
        fourth.start()
        fourth.join(0.3)
        assert fourth.is_alive() and serial.waiting() == 2, "the poster waits while the queue is full"
        gate.set()
        fourth.join(10)
        assert not fourth.is_alive()
        assert wait_for(lambda: ran if len(ran) == 4 else None, what="every posted call") == [0, 1, 2, 3]
    finally:
        gate.set()
        serial.stop(5)



def test_a_lane_waits_for_a_timed_out_send_so_its_next_message_cannot_overtake_it() -> None:
    """A send cut off by the attempt timeout may still arrive: the lane's next message (a "cleared" after
    its "raised") waits for it, while other lanes go on and the pool thread is free for them."""
    from server.services.delivery import AttemptTimeout, Lanes, attempt

    lanes = Lanes(1, "hold-test")
    stalled = threading.Event()
    done: list[str] = []

    def raised() -> None:
        try:
            attempt(lambda: (stalled.wait(30), done.append("raised arrived")), 0.2, "raised")
        except AttemptTimeout:
            done.append("raised timed out")

    try:
        lanes.submit("a", raised)
        lanes.submit("a", lambda: done.append("cleared"))
        lanes.submit("b", lambda: done.append("other lane"))
        assert wait_until(lambda: "other lane" in done, 10), "one pool thread, and it serves lane b"
        assert done == ["raised timed out", "other lane"], done
        assert lanes.depth("a") == 2, "lane a holds its next message while the cut-off send runs"
        stalled.set()
        assert wait_until(lambda: "cleared" in done, 10)
        assert done == ["raised timed out", "other lane", "raised arrived", "cleared"], done
    finally:
        stalled.set()
        lanes.stop(5)
