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
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from gateway.contract import Severity
from server.adapters.notify import AppriseSender
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.leases import LeaseStore
from server.domain import notify as routing
from server.domain.leases import LeaseLost
from server.domain.site import Site
from server.services.lease import LeaseKeeper
from server.services.notify import NotificationService, Push
from tests.server.services.conftest import BASE_URL, T0, FakeClock, Hook, Smtp, make_site, site_yaml


def owner(engine: Engine, name: str) -> LeaseKeeper:
    keeper = LeaseKeeper(LeaseStore(engine), "r1", name, ttl_s=300, renew_s=100, site_hash="h")
    keeper.on_lost = lambda _reason: None
    assert keeper.acquire(threading.Event()) is not None, f"{name} did not get the lease"
    return keeper


def take_over(engine: Engine) -> LeaseKeeper:
    """`a`'s lease runs out (a pause longer than the TTL: no renewal, nothing committed) and `b` takes it."""
    with engine.begin() as connection:
        connection.execute(text("UPDATE partition_leases SET expires_at = clock_timestamp() - interval '1 second'"))
    return owner(engine, "b")


def outbox(sessions: sessionmaker[Session], site: Site, clock: FakeClock, keeper: LeaseKeeper,
           **kw: object) -> NotificationService:
    return NotificationService(sessions, site, clock, AppriseSender(), base_url=BASE_URL, worker_id=keeper.owner,
                               sole_sender=True, fence=keeper.fencer(), **kw)  # type: ignore[arg-type]


def page(hook: Hook, key: str) -> Push:
    url = f"json://127.0.0.1:{hook.port}/ec"
    return Push(key, None, "", "emergency_command", url, Severity.CRITICAL,
                routing.Text("fire z1", "fire confirmed in z1"), [])


@pytest.fixture
def pg(postgres_schema: str) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    engine = make_engine(postgres_schema)
    migrate(engine)
    yield engine, session_factory(engine)
    engine.dispose()


def test_an_old_owner_claims_no_push_after_the_takeover(
    pg: tuple[Engine, sessionmaker[Session]], smtp: Smtp, hook: Hook, tmp_path: Path,
) -> None:
    engine, sessions = pg
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    a = owner(engine, "a")
    old = outbox(sessions, site, clock, a)
    b = take_over(engine)
    assert a.state == "owner", "a noticed the takeover before its claim: not a test of the fence"
    new = outbox(sessions, site, clock, b)
    new.release_own_leases()  # its start
    new.enqueue([page(hook, "fire-1")])

    with pytest.raises(LeaseLost):
        old.claim(clock())
    assert a.state == "lost" and a.lost_reason is not None
    assert a.lost_reason.startswith("a commit found the lease taken"), a.lost_reason
    assert new.deliver(clock()) == 1, "the page waited for a claim the old owner made after the takeover"
    assert len(hook.at("/ec")) == 1, hook.received


def test_a_push_the_old_owner_claimed_before_the_takeover_is_sent_once_by_the_new_owner(
    pg: tuple[Engine, sessionmaker[Session]], smtp: Smtp, hook: Hook, tmp_path: Path,
) -> None:
    engine, sessions = pg
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    a = owner(engine, "a")
    took_over: list[NotificationService] = []

    def pause_then_take_over(_row: int) -> None:
        # `a` claimed the row and pauses before its send: meanwhile `b` takes the site over, re-queues
        # `a`'s claim at its start and sends the page
        new = outbox(sessions, site, clock, take_over(engine))
        new.release_own_leases()
        assert new.deliver(clock()) == 1
        took_over.append(new)

    old = outbox(sessions, site, clock, a, before_send=pause_then_take_over)
    old.enqueue([page(hook, "fire-1")])
    assert old.deliver(clock()) == 0

    assert took_over, "the old owner never claimed the row"
    assert len(hook.at("/ec")) == 1, f"the page went out {len(hook.at('/ec'))} times"
    assert a.state == "lost", a.state
    [row] = took_over[0].log_of()
    assert row["status"] == "sent" and [d["worker"] for d in row["deliveries"]] == ["b"], row
