"""An evacuation's notice still waiting in the outbox (its first send failed, a retry is due) when the
all-clear is given must not reach anyone afterwards: "leave by the nearest exit" after the all-clear sends
people out again, or tells them the evacuation is still on. The rows are withdrawn with the reason in the
delivery log, their fallback copies too. Real SQLite, the real rule engine, alarm, command, evacuation and
notification services, a real webhook receiver that is down for the first attempts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway import contract
from gateway.contract import Severity
from server.adapters.sql.notifications import NotifyRepository
from server.domain import notify as routing
from server.domain.evacuation import is_drill_text
from server.services import evacuation
from server.services.evacuation import EvacuationError
from server.services.notify import NotificationService, Push
from tests.server.services.conftest import T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import Response, response, wire
from tests.support.wait import wait_until


def first_lane_then_others(ready: Callable[[], bool], action: Callable[[], None]
                           ) -> tuple[Callable[[int], None], threading.Event]:
    """A `before_send` hook and the event it sets: every lane's row is picked up; once `ready`, the first
    lane to reach its send runs `action`, and the others reach theirs only after it."""
    done, first = threading.Event(), threading.Lock()

    def before_send(_nid: int) -> None:
        if not ready():
            return
        if first.acquire(blocking=False):
            action()
            done.set()
        assert done.wait(60)

    return before_send, done


def floor(db: tuple[Any, sessionmaker[Session]], smtp: Smtp, hook: Hook, tmp_path: Path,
          **notify: Any) -> tuple[FakeClock, NotificationService, Response]:
    """The test floor on `db`: its alarm, notification (`notify`: more of its arguments), command and
    evacuation services, drill alarms told by their words."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock, is_drill=lambda a: is_drill_text(a.message_zh, a.message), **notify)
    return clock, svc, response(sessions, site, clock, alarms=alarms, notify=svc)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest) -> tuple[Any, sessionmaker[Session]]:
    """The migrated database of `db` (SQLite), then of `pg_db` (the real PostgreSQL)."""
    return request.getfixturevalue("db" if request.param == "sqlite" else "pg_db")  # type: ignore[no-any-return]


def drill_waiting_for_retry(clock: FakeClock, svc: NotificationService, r: Response,
                            hook: Hook) -> tuple[dict[str, Any], set[int]]:
    """A drill on f1 whose notices all failed their first send (the receivers are down): the drill and the
    ids of its rows queued for a retry (its mails went out: the mail server is up)."""
    drill = r.evac.start("f1", None, drill=True, trigger="drill", reason="half-yearly drill", who="p-ec")
    svc.tick(clock())
    hook.fail_next = 1000
    while svc.deliver(clock()):
        pass
    waiting = {row["id"] for row in svc.log_of(ref=drill["id"]) if row["status"] == "queued"}
    assert waiting, svc.log_of(ref=drill["id"])
    return drill, waiting


def database_down(_ref: str, _reason: str) -> int:
    raise OperationalError("UPDATE notifications", {}, Exception("server closed the connection unexpectedly"))


def test_a_notice_waiting_for_its_retry_is_not_sent_after_the_all_clear(db, smtp: Smtp, hook: Hook,
                                                                         tmp_path: Path) -> None:
    clock, svc, r = floor(db, smtp, hook, tmp_path)

    r.call(lambda e, t: e.report_fire("z1", t))
    ev = r.evac.active("f1")
    assert ev is not None
    svc.tick(clock())
    hook.fail_next = 1000  # every webhook is down: each notice's first attempt fails, a retry is queued
    while svc.deliver(clock()):
        pass
    svc.tick(clock())
    svc.deliver(clock())  # the fallback copies of the failed critical pushes fail as well
    rows = svc.log_of(ref=ev["id"])
    assert rows and all(row["status"] == "queued" for row in rows if row["channel"] != "no_channel"), rows
    notices = {row["id"] for row in rows}

    clock.advance(timedelta(minutes=3))
    r.evac.all_clear(ev["id"], "p-ec", {"emergency_command"})
    hook.fail_next = 0  # the receivers are back
    for _ in range(12):  # well past every backoff
        clock.advance(timedelta(minutes=5))
        svc.tick(clock())
        while svc.deliver(clock()):
            pass

    after = [body for _, body in hook.received if ev["id"] in str(body)]
    assert after == [], f"{len(after)} evacuation notices reached people after the all-clear: {after[:2]}"
    rows = [row for row in svc.log_of(ref=ev["id"]) if row["id"] in notices or row["fallback"]]
    left = [row for row in rows if row["status"] not in ("withdrawn", "no_channel")]
    assert left == [], left
    assert all("all clear" in (row["last_error"] or "") for row in rows if row["status"] == "withdrawn"), rows


def test_a_notice_on_its_way_at_the_all_clear_is_neither_retried_nor_copied_to_the_fallback(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """The all-clear given while a notice's send is in flight (here: inside the sender, before the request
    goes out), and that send fails: the row ends withdrawn, with its attempt logged, and is not tried again."""
    clock, svc, r = floor(db, smtp, hook, tmp_path)
    state: dict[str, object] = {}
    once = threading.Lock()
    real = svc.sender

    class AllClearDuringSend:
        def send(self, url: str, title: str, body: str, key: str | None = None) -> None:
            if "ev" in state and once.acquire(blocking=False):
                r.evac.all_clear(str(state["ev"]), "p-ec", {"emergency_command"})
                state["done"] = True
            real.send(url, title, body, key=key)

    svc.sender = AllClearDuringSend()  # type: ignore[assignment]
    r.call(lambda e, t: e.report_fire("z1", t))
    ev = r.evac.active("f1")
    assert ev is not None
    state["ev"] = ev["id"]
    svc.tick(clock())
    hook.fail_next = 1000
    while svc.deliver(clock()):
        pass
    assert state.get("done") and r.evac.get(ev["id"])["state"] == "all_clear"
    hook.fail_next = 0
    for _ in range(12):
        clock.advance(timedelta(minutes=5))
        svc.tick(clock())
        while svc.deliver(clock()):
            pass
    assert [b for _, b in hook.received if ev["id"] in str(b)] == []
    rows = svc.log_of(ref=ev["id"])
    assert [row for row in rows if row["status"] not in ("withdrawn", "no_channel")] == [], rows
    tried = [row for row in rows if row["deliveries"]]
    assert tried and all(len(row["deliveries"]) == 1 and not row["deliveries"][0]["ok"] for row in tried), tried


def test_a_failed_send_recorded_while_the_all_clear_withdraws_it_stays_withdrawn_on_postgresql(
        pg_db, tmp_path: Path) -> None:
    """PostgreSQL runs the two side by side: a lane thread that read its row ("sending") to record a failed
    attempt must not write "queued" over the withdrawal committed meanwhile (a lost update would send the
    notice again after the all-clear). The read locks the row, so the withdrawal waits for the record."""
    _, sessions = pg_db
    site = make_site(site_yaml(2525, 8080), tmp_path)
    clock = FakeClock(T0)
    _, svc = wire(sessions, site, clock)
    url = "json://127.0.0.1:9/op1"
    svc.enqueue([Push("ev/ev-1/person:p-op1/x", None, "ev-1", "person:p-op1", url, Severity.CRITICAL,
                      routing.Text("疏散 evacuation ev-1", "leave"), [])])
    (nid,) = svc.claim(clock())
    repo = NotifyRepository(sessions)
    read, withdrawn = threading.Event(), threading.Event()

    def record_failure() -> None:
        with repo.transaction() as tx:
            row = tx.notification(nid)
            assert row is not None and row.status == "sending"
            read.set()
            withdrawn.wait(3)  # without the row lock the withdrawal commits here, under our feet
            row.status, row.lease_until = "queued", None

    def withdraw() -> None:
        assert read.wait(30)
        with repo.transaction() as tx:
            tx.withdraw("ev-1", "not sent: ev-1 all clear")
        withdrawn.set()

    threads = [threading.Thread(target=record_failure), threading.Thread(target=withdraw)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    (row,) = svc.log_of(ref="ev-1")
    assert row["status"] == "withdrawn", row


def test_a_notice_picked_up_for_sending_is_not_sent_once_the_all_clear_withdrew_it(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """The all-clear given after a notice was claimed and handed to its lane, before its send: the receiver
    is up, yet the notice must not reach anyone (docs/response.md: withdrawn rows never go out)."""
    state: dict[str, object] = {}
    all_clear_once, given = first_lane_then_others(
        lambda: "ev" in state, lambda: r.evac.all_clear(str(state["ev"]), "p-ec", {"emergency_command"}))
    clock, svc, r = floor(db, smtp, hook, tmp_path, before_send=all_clear_once)
    r.call(lambda e, t: e.report_fire("z1", t))
    ev = r.evac.active("f1")
    assert ev is not None
    state["ev"] = ev["id"]
    svc.tick(clock())
    while svc.deliver(clock()):
        pass
    assert given.is_set() and r.evac.get(ev["id"])["state"] == "all_clear"
    after = [b for _, b in hook.received if ev["id"] in str(b)]
    assert after == [], f"{len(after)} evacuation notices reached people after the all-clear: {after[:2]}"
    rows = svc.log_of(ref=ev["id"])
    assert rows and [row for row in rows if row["status"] not in ("withdrawn", "no_channel")] == [], rows
    assert all(row["deliveries"] == [] for row in rows), "a withdrawn notice was attempted"


def test_the_all_clear_goes_out_when_withdrawing_the_notices_fails_and_the_withdrawal_is_retried(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """The withdrawal of the evacuation's pending notices fails once (the database is locked): the all-clear
    is still published to the floor's displays and sirens, the call does not fail (a retry would be refused:
    the evacuation is over), and the withdrawal is done again, so no notice goes out afterwards."""
    import time

    from sqlalchemy.exc import OperationalError

    from gateway.contract import EvacuationState

    clock, svc, r = floor(db, smtp, hook, tmp_path)
    r.call(lambda e, t: e.report_fire("z1", t))
    ev = r.evac.active("f1")
    assert ev is not None
    svc.tick(clock())
    hook.fail_next = 1000  # every first send fails: the notices wait for their retry
    while svc.deliver(clock()):
        pass
    pending = [row for row in svc.log_of(ref=ev["id"]) if row["status"] == "queued"]
    assert pending, svc.log_of(ref=ev["id"])

    real_withdraw, calls = svc.withdraw, []

    def locked_once(ref: str, reason: str) -> int:
        calls.append(ref)
        if len(calls) == 1:
            raise OperationalError("UPDATE notifications", {}, Exception("database is locked"))
        return real_withdraw(ref, reason)

    svc.withdraw = locked_once  # type: ignore[method-assign]
    r.evac.all_clear(ev["id"], "p-ec", {"emergency_command"})
    assert r.notices[-1].state is EvacuationState.ALL_CLEAR and r.notices[-1].id == ev["id"], r.notices[-1]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
            row["status"] == "queued" for row in svc.log_of(ref=ev["id"])):
        time.sleep(0.05)
    rows = svc.log_of(ref=ev["id"])
    assert [row for row in rows if row["status"] not in ("withdrawn", "no_channel")] == [], rows
    assert len(calls) >= 2
    hook.fail_next = 0
    for _ in range(12):
        clock.advance(timedelta(minutes=5))
        svc.tick(clock())
        while svc.deliver(clock()):
            pass
    assert [b for _, b in hook.received if ev["id"] in str(b)] == []


def test_a_drill_notice_waiting_for_its_retry_is_not_sent_once_a_real_evacuation_ended_the_drill(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """A drill's "[DRILL] evacuation drill" reaching someone during the real evacuation that ended the drill
    says the opposite of what is happening: the drill's unsent notices are withdrawn when it ends."""
    clock, svc, r = floor(db, smtp, hook, tmp_path)
    drill, waiting = drill_waiting_for_retry(clock, svc, r, hook)

    real = r.evac.start("f1", "z1", drill=False, trigger="manual", reason="real smoke seen in z1", who="p-safe")
    assert r.evac.get(drill["id"])["state"] == "all_clear" and not real["drill"]
    assert wait_until(lambda: all(row["status"] == "withdrawn" for row in svc.log_of(ref=drill["id"])
                                  if row["id"] in waiting), timeout=10), svc.log_of(ref=drill["id"])
    hook.fail_next = 0
    for _ in range(12):
        clock.advance(timedelta(minutes=5))
        svc.tick(clock())
        while svc.deliver(clock()):
            pass
    assert [b for _, b in hook.received if drill["id"] in str(b)] == [], "a drill notice during the real evacuation"
    assert [b for _, b in hook.received if real["id"] in str(b)], "the real evacuation's notices went out"


def test_the_drills_all_clear_that_a_real_fire_overtook_clears_nothing(db, smtp: Smtp, hook: Hook,
                                                                      tmp_path: Path) -> None:
    """The drill's all-clear is asked for, and before the rules take it up a real evacuation ends the drill
    (here: run just before the all-clear's turn with the readings). It is refused: the real evacuation's
    notice stays raised in the rules and no all-clear is published for the floor."""
    *_, r = floor(db, smtp, hook, tmp_path)
    drill = r.evac.start("f1", None, drill=True, trigger="drill", reason="half-yearly drill", who="p-ec")
    in_turn = r.evac.engine_call
    assert in_turn is not None
    real: dict[str, object] = {}

    def overtaken(fn):  # type: ignore[no-untyped-def]
        if not real:
            real.update(r.evac.start("f1", "z1", drill=False, trigger="manual", reason="real smoke", who="p-safe"))
        return in_turn(fn)

    r.evac.engine_call = overtaken
    with pytest.raises(EvacuationError):
        r.evac.all_clear(drill["id"], "p-ec", {"emergency_command"})
    assert r.evac.get(str(real["id"]))["state"] == "active"
    assert r.engine.ctx.is_open("evac.notice", "f1"), "the real evacuation's notice still stands in the rules"
    assert not [n for n in r.notices if n.state is contract.EvacuationState.ALL_CLEAR], r.notices


def test_a_page_goes_out_when_the_read_before_its_send_fails(db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """The read of its row just before the send (is it withdrawn?) fails, e.g. the database is briefly
    unreachable: the page is sent as claimed. Held back, it sat "sending" until its lease ran out (2 min)."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    _, svc = wire(sessions, site, clock)
    svc.enqueue([Push("a1/s0/person:p-op1/x", None, None, "person:p-op1", f"json://127.0.0.1:{hook.port}/op1",
                      Severity.CRITICAL, routing.Text("烟雾 smoke z1", "leave z1"), [])])
    unreachable = threading.Event()
    svc.before_send = lambda _nid: unreachable.set()
    read = svc.store.notifications

    def notifications(ids):  # type: ignore[no-untyped-def]
        if unreachable.is_set():
            raise OSError("could not connect to the database")
        return read(ids)

    svc.store.notifications = notifications  # type: ignore[method-assign]
    svc.deliver(clock())
    assert [path for path, _ in hook.received] == ["/op1"], hook.received


def test_a_drill_notice_whose_withdrawal_failed_is_not_sent_after_a_restart(
        any_db: tuple[Any, sessionmaker[Session]], smtp: Smtp, hook: Hook, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real evacuation ends the drill while the database hiccups: the withdrawal of the drill's unsent
    notices fails, and the process stops before its retry (which lived in memory only). The next process on
    the same database must never send "[DRILL]" during the real evacuation."""
    monkeypatch.setattr(evacuation, "WITHDRAW_TRIES", 1)  # the process is gone before any retry
    clock, svc, r = floor(any_db, smtp, hook, tmp_path)
    drill, waiting = drill_waiting_for_retry(clock, svc, r, hook)
    svc.withdraw = database_down  # type: ignore[method-assign]
    real = r.evac.start("f1", "z1", drill=False, trigger="manual", reason="real smoke seen in z1", who="p-safe")
    assert r.evac.get(drill["id"])["state"] == "all_clear"
    assert {row["status"] for row in svc.log_of(ref=drill["id"]) if row["id"] in waiting} == {"queued"}

    # the restart: a new notification service on the same database, started as the runtime starts it
    _, again = wire(any_db[1], r.evac.site, clock, is_drill=lambda a: is_drill_text(a.message_zh, a.message))
    again.release_own_leases()
    hook.fail_next = 0
    for _ in range(12):  # well past every backoff
        clock.advance(timedelta(minutes=5))
        again.tick(clock())
        while again.deliver(clock()):
            pass
    assert [b for _, b in hook.received if drill["id"] in str(b)] == [], "a drill notice during the real evacuation"
    assert [b for _, b in hook.received if real["id"] in str(b)], "the real evacuation's notices went out"
    rows = [row for row in again.log_of(ref=drill["id"]) if row["id"] in waiting or row["fallback"]]
    assert rows and all(row["status"] == "withdrawn" and drill["id"] in (row["last_error"] or "")
                        for row in rows), rows


def test_a_drill_notice_picked_up_for_sending_is_not_sent_when_the_drills_withdrawal_failed(
        db: tuple[str, sessionmaker[Session]], smtp: Smtp, hook: Hook, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The drill's notices are claimed and waiting in their lanes when a real evacuation ends the drill and
    the withdrawal fails: the read just before each send finds the drill over, so none goes out."""
    monkeypatch.setattr(evacuation, "WITHDRAW_TRIES", 1)
    state: dict[str, Any] = {}

    def real_fire() -> None:
        svc.withdraw = database_down  # type: ignore[method-assign]
        r.evac.start("f1", "z1", drill=False, trigger="manual", reason="real smoke", who="p-safe")

    real_fire_once, ended = first_lane_then_others(lambda: "drill" in state, real_fire)
    clock, svc, r = floor(db, smtp, hook, tmp_path, before_send=real_fire_once)
    drill = r.evac.start("f1", None, drill=True, trigger="drill", reason="half-yearly drill", who="p-ec")
    state["drill"] = drill["id"]
    svc.tick(clock())
    svc.deliver(clock())
    assert ended.is_set() and r.evac.get(drill["id"])["state"] == "all_clear"
    assert [b for _, b in hook.received if drill["id"] in str(b)] == [], "a drill notice during the real evacuation"
    rows = svc.log_of(ref=drill["id"])
    assert rows and [row for row in rows if row["status"] not in ("withdrawn", "no_channel", "sent")] == [], rows
    assert all(row["deliveries"] == [] for row in rows if row["channel"] != "no_channel" and row["recipient"]
               != "person:p-lead"), "a drill notice was attempted after the drill ended"
