"""The notification outbox under the site's lease (issue 15): an old owner that lost the lease and has not
noticed yet claims no push after the takeover, and sends none of the pushes it claimed before it that the
new owner re-queued at its start. So a page goes out once, from the new owner, at once (not after the
row's LEASE ran out).

Real parts: PostgreSQL (the lease rows, the fence's UPDATE, the outbox), the real LeaseKeepers, two
NotificationServices as the old and the new owner (sole senders, each under its own lease, as the runtime
wires them), and a real HTTP webhook receiver that counts requests and their Idempotency-Keys.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.contract import Severity
from server.adapters.notify import AppriseSender
from server.adapters.sql.notifications import NotifyRepository, NotifyTransaction
from server.adapters.sql.silences import SilenceRepository
from server.domain import notify as routing
from server.domain.leases import LeaseLost
from server.services.lease import LeaseKeeper
from server.services.notify import NotificationService, Push
from tests.server.services.conftest import BASE_URL, T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import leased


@dataclass
class Floor:
    engine: Engine
    sessions: sessionmaker[Session]
    hook: Hook
    clock: FakeClock
    a: LeaseKeeper
    """The old owner, holding the lease at the start."""

    def take_over(self) -> LeaseKeeper:
        """`a`'s lease runs out (a pause longer than the TTL: no renewal, nothing committed); `b` takes it."""
        with self.engine.begin() as connection:
            connection.execute(text("UPDATE partition_leases SET expires_at = clock_timestamp() - interval '1 s'"))
        return leased(self.engine, "b")

    def outbox(self, site_text: str, tmp: Path, keeper: LeaseKeeper, **kw: object) -> NotificationService:
        """A sole sender under `keeper`'s lease, as the runtime wires it."""
        return NotificationService(NotifyRepository(self.sessions, keeper.fencer()), make_site(site_text, tmp),
                                   self.clock, AppriseSender(), silences=SilenceRepository(self.sessions),
                                   base_url=BASE_URL, worker_id=keeper.owner, sole_sender=True,
                                   **kw)  # type: ignore[arg-type]

    def page(self, key: str, ref: str = "") -> Push:
        url = f"json://127.0.0.1:{self.hook.port}/ec"
        return Push(key, None, ref, "emergency_command", url, Severity.CRITICAL,
                    routing.Text("fire z1", "fire confirmed in z1"), [])


@pytest.fixture
def floor(pg_db: tuple[Engine, sessionmaker[Session]], hook: Hook) -> Floor:
    engine, sessions = pg_db
    return Floor(engine, sessions, hook, FakeClock(T0), leased(engine, "a"))


def test_an_old_owner_claims_no_push_after_the_takeover(floor: Floor, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    site = site_yaml(smtp.port, hook.port)
    old = floor.outbox(site, tmp_path, floor.a)
    b = floor.take_over()
    assert floor.a.state == "owner", "a noticed the takeover before its claim: not a test of the fence"
    new = floor.outbox(site, tmp_path, b)
    new.release_own_leases()  # its start
    new.enqueue([floor.page("fire-1")])

    with pytest.raises(LeaseLost):
        old.claim(floor.clock())
    assert floor.a.state == "lost" and floor.a.lost_reason is not None
    assert floor.a.lost_reason.startswith("a commit found the lease taken"), floor.a.lost_reason
    assert new.deliver(floor.clock()) == 1, "the page waited for a claim the old owner made after the takeover"
    assert len(hook.at("/ec")) == 1, hook.received


def test_a_push_the_old_owner_claimed_before_the_takeover_is_sent_once_by_the_new_owner(
    floor: Floor, smtp: Smtp, hook: Hook, tmp_path: Path,
) -> None:
    site = site_yaml(smtp.port, hook.port)
    took_over: list[NotificationService] = []

    def pause_then_take_over(_row: int) -> None:
        # `a` claimed the row and pauses before its send: meanwhile `b` takes the site over, re-queues
        # `a`'s claim at its start and sends the page
        new = floor.outbox(site, tmp_path, floor.take_over())
        new.release_own_leases()
        assert new.deliver(floor.clock()) == 1
        took_over.append(new)

    old = floor.outbox(site, tmp_path, floor.a, before_send=pause_then_take_over)
    old.enqueue([floor.page("fire-1")])
    assert old.deliver(floor.clock()) == 0

    assert took_over, "the old owner never claimed the row"
    assert len(hook.at("/ec")) == 1, f"the page went out {len(hook.at('/ec'))} times"
    assert floor.a.state == "lost", floor.a.state
    [row] = took_over[0].log_of()
    assert row["status"] == "sent" and [d["worker"] for d in row["deliveries"]] == ["b"], row


def test_a_page_goes_out_when_the_withdrawal_check_before_its_send_fails(
        floor: Floor, smtp: Smtp, hook: Hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the lease, a page of an evacuation first withdraws what ended evacuations left unsent; when
    that read fails (the database briefly unreachable) the page is sent as claimed. Escaping the send, it
    sat "sending" until its lease ran out (2 min)."""
    svc = floor.outbox(site_yaml(smtp.port, hook.port), tmp_path, floor.a)
    svc.enqueue([floor.page("evac-1", ref="ev-1")])
    unreachable = threading.Event()
    svc.before_send = lambda _nid: unreachable.set()
    read = NotifyTransaction.ended_evacuations

    def ended_evacuations(tx: NotifyTransaction) -> list[tuple[str, datetime | None, str | None]]:
        if unreachable.is_set():
            raise OperationalError("SELECT evacuations", {}, Exception("could not connect to the database"))
        return read(tx)

    monkeypatch.setattr(NotifyTransaction, "ended_evacuations", ended_evacuations)
    svc.deliver(floor.clock())
    assert [path for path, _ in hook.received] == ["/ec"], hook.received
    assert [row["status"] for row in svc.log_of(ref="ev-1")] == ["sent"]
