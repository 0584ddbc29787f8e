"""Fault 2 (issue 9): the server dies between an alarm's SQL commit and its listeners.

Before the effects outbox (server/services/recovery.py) such a crash left an open alarm that nobody was
paged for, with no escalation, no evacuation and no overload cut, and nothing at start-up noticed.

1. Service level, in-process, real parts (Mosquitto, SQLite, the webhook receiver, the whole Runtime):
   a first "life" commits three transitions (smoke, a critical plug overcurrent, evac.notice) and dies
   in the test hook between the commit and the listeners; a Runtime started on that database
   dispatches them; then every row is put back to pending (as if the crash came after the listeners
   but before the done mark) and a third start dispatches them all again: nothing is paged, commanded
   or evacuated twice.
2. End to end: the real server process with the test-only crash hook (FLOORWATCH_TEST_HOOKS=1 and
   FLOORWATCH_TEST_CRASH_AFTER_COMMIT) exits 137 right after committing fire.smoke_alarm, and, in its
   second life, right after committing the confirmed fire's evac.notice. Each restart recovers: the
   alarms exist once, their pages arrive once per (channel, alarm, step), escalation goes on, and the
   evacuation exists once with its retained notice.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from gateway import contract
from gateway.broker import EmbeddedBroker
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.database import make_engine, migrate, session_factory
from server.adapters.sql.effects import EffectsRepository
from server.adapters.sql.models import AlarmRow
from server.adapters.sql.recovery_models import AlarmEffectRow
from server.adapters.sql.response_models import CommandRow, EscalationRow, EvacuationRow, NotificationRow
from server.domain.findings import Finding, Transition
from server.runtime import Runtime
from server.services.alarms import AlarmService
from server.services.recovery import (
    CRASH_ENV,
    CRASH_EXIT,
    HOOKS_ENV,
    EffectNotReady,
    EffectsOutbox,
    EffectsRecovery,
    crash_hook,
)
from server.settings import Settings
from tests.faults.conftest import Record
from tests.faults.test_crash_fire import Detector, Receiver, fire_site, receiver, retained_notice  # noqa: F401
from tests.support.server import ServerProcess
from tests.support.wait import wait_until

TOKEN = "faults-commit-token"


class Crash(Exception):
    """Stands for the process dying between the commit and the listeners (in-process test)."""


def _rows(url: str, model: type[Any]) -> list[Any]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(model)))
    finally:
        engine.dispose()


def _effects_pending(url: str) -> list[tuple[int, str, str]]:
    return [(r.alarm_id, r.snapshot["rule"], r.state) for r in _rows(url, AlarmEffectRow) if r.done_at is None]


def _raise(rule: str, subject: str, zone: str, at: datetime, value: float | None = None) -> Finding:
    return Finding(rule, Transition.RAISE, contract.Severity.CRITICAL, subject, zone, "r1", value, f"{rule} test", at)


def _facts(url: str, ids: set[int]) -> dict[str, Any]:
    """What the listeners of these alarms left behind, as comparable sets and counts."""
    notes = [r for r in _rows(url, NotificationRow) if r.alarm_id in ids or r.ref.startswith("ev-")]
    commands = [r for r in _rows(url, CommandRow)
                if r.ref in {f"alarm {i}" for i in ids} | {f"alarm:{i}" for i in ids} or r.ref.startswith("ev-")]
    return {"pushes": Counter(r.dedupe_key for r in notes),
            "commands": Counter((r.device, r.action, r.ref) for r in commands),
            "evacuations": [(e.id, e.state) for e in _rows(url, EvacuationRow)],
            "escalations": sorted(e.alarm_id for e in _rows(url, EscalationRow) if e.alarm_id in ids)}


def _settled(url: str, ids: set[int]) -> None:
    """Wait until the notification worker ran every escalation's first step and sent what it queued
    (a page held for its group waits at most GROUP_WAIT, 5 s; a critical one is never held)."""
    assert wait_until(lambda: all(e.next_step >= 1 or e.stopped for e in _rows(url, EscalationRow)
                                  if e.alarm_id in ids), 30), "escalations never ran their first step"
    assert wait_until(lambda: not [r for r in _rows(url, NotificationRow)
                                   if r.attempts == 0 and r.status in ("queued", "sending")], 30), \
        "pushes never left"


def test_transitions_dispatched_again_after_a_crash_repeat_no_effect(
    mosquitto: EmbeddedBroker, receiver: Receiver, tmp_path: Path, record: Record,  # noqa: F811
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    settings = Settings(site_file=site_file, data_dir=tmp_path / "var", mqtt=mosquitto.client_settings(),
                        admin_token=SecretStr("t"), mqtt_client_id="effects-server")
    url = settings.sql_url()

    # Life 1: the transitions commit, then the process "dies" before any listener.
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    first = AlarmService(AlarmWriter(sessions), [])
    first.outbox = EffectsOutbox(EffectsRepository(sessions), lambda: datetime.now(UTC))

    def die(_alarms: object) -> None:
        raise Crash

    first.after_commit = die
    now = datetime.now(UTC) - timedelta(seconds=2)
    with pytest.raises(Crash):
        first.commit([_raise("fire.smoke_alarm", "smoke-z1-01", "z1", now),
                      _raise("elec.plug_overcurrent", "plug-z1-kettle", "z1", now, 14.0),
                      _raise("evac.notice", "f1", "z1", now)], now)
    engine.dispose()
    ids = {a.id for a in _rows(url, AlarmRow)}
    by_rule = {a.rule: a.id for a in _rows(url, AlarmRow)}
    assert len(ids) == 3 and len(_effects_pending(url)) == 3
    assert _facts(url, ids) == {"pushes": Counter(), "commands": Counter(), "evacuations": [], "escalations": []}

    # Life 2: start-up recovery runs the listeners.
    started = time.monotonic()
    runtime = Runtime(settings)
    runtime.start()
    try:
        recovery_s = time.monotonic() - started
        assert _effects_pending(url) == []
        _settled(url, ids)
        after_recovery = _facts(url, ids)
        smoke = by_rule["fire.smoke_alarm"]
        assert after_recovery["evacuations"] == [("ev-1", "active")]
        cut = ("plug-z1-kettle", "relay_off", f"alarm {by_rule['elec.plug_overcurrent']}")
        assert cut in after_recovery["commands"]
        assert ("door-z1-exit", "door_release", f"alarm:{smoke}") in after_recovery["commands"]
        assert set(after_recovery["escalations"]) == ids  # one escalation row per alarm
        assert any(k.startswith(f"a{smoke}/s0/") for k in after_recovery["pushes"])
        assert any(k.startswith("ev/ev-1/") for k in after_recovery["pushes"])
        assert all(n == 1 for n in after_recovery["commands"].values()), after_recovery["commands"]
        assert wait_until(lambda: any(f"#alarm={smoke}" in d.message for d in receiver.snapshot()), 20)
        notice = retained_notice(mosquitto)
        assert notice is not None and notice["id"] == "ev-1" and notice["state"] == "active"
    finally:
        runtime.stop()

    # The crash came after the listeners but before the done mark: every row is pending again.
    engine = make_engine(url)
    with session_factory(engine).begin() as session:
        session.execute(update(AlarmEffectRow).values(done_at=None))
    engine.dispose()

    # Life 3: everything is dispatched a second time.
    runtime = Runtime(settings)
    runtime.start()
    try:
        assert _effects_pending(url) == []
        _settled(url, ids)
        time.sleep(2)  # a second copy of anything would be queued or arrive now
        again = _facts(url, ids)
        got = receiver.snapshot()
    finally:
        runtime.stop()
    redispatched = [r for r in _rows(url, AlarmEffectRow) if r.recovered]
    per_push = Counter((d.path, d.title, d.message) for d in got)
    record("crash-after-commit-redispatch", {
        "transitions": 3, "recovery_start_s": round(recovery_s, 2), "redispatched_rows": len(redispatched),
        "pushes_queued": sum(again["pushes"].values()), "pushes_received": len(got),
        "pushes_received_twice": sum(n - 1 for n in per_push.values() if n > 1),
        "commands": sum(again["commands"].values()), "evacuations": len(again["evacuations"])})
    assert again == after_recovery, "a second dispatch changed what the first one did"
    assert all(n == 1 for n in again["pushes"].values())
    assert len(redispatched) == 3
    assert not [k for k, n in per_push.items() if n > 1], "a push arrived twice"


def test_crash_hook_needs_both_settings() -> None:
    assert crash_hook({CRASH_ENV: "fire.smoke_alarm"}) is None  # without FLOORWATCH_TEST_HOOKS=1: inert
    assert crash_hook({HOOKS_ENV: "1"}) is None
    assert crash_hook({HOOKS_ENV: "true", CRASH_ENV: "fire.smoke_alarm"}) is None
    assert crash_hook({HOOKS_ENV: "1", CRASH_ENV: "fire.smoke_alarm"}) is not None


def _exit_code(server: ServerProcess, timeout: float) -> int | None:
    assert server.process is not None
    try:
        return server.process.wait(timeout)
    except Exception:
        return None


def test_server_dies_between_commit_and_listeners_and_recovers_every_effect(
    mosquitto: EmbeddedBroker, receiver: Receiver, tmp_path: Path, record: Record,  # noqa: F811
) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    data = tmp_path / "server"
    url = f"sqlite:///{data / 'floorwatch.sqlite'}"
    hooks = {HOOKS_ENV: "1", CRASH_ENV: "fire.smoke_alarm"}
    server = ServerProcess(mosquitto.client_settings(), data, site_file, TOKEN, env=hooks)
    startups = [server.start()]
    detector = Detector(mosquitto)
    figures: dict[str, Any] = {}
    long_run = os.environ.get("FLOORWATCH_LONG") == "1"
    try:
        smoke_at = time.monotonic()
        detector.thread.start()
        # 1: the smoke alarm commits, the hook kills the process before any listener
        code = _exit_code(server, 30)
        assert code == CRASH_EXIT, f"the server did not die in the hook (exit {code}); see {data}/server.log"
        figures["crash1_after_smoke_s"] = round(time.monotonic() - smoke_at, 1)
        smoke_rows = [a for a in _rows(url, AlarmRow) if a.rule == "fire.smoke_alarm"]
        assert len(smoke_rows) == 1, "the smoke alarm was not committed before the crash"
        smoke = smoke_rows[0].id
        assert [p[:2] for p in _effects_pending(url)] == [(smoke, "fire.smoke_alarm")]
        assert not receiver.snapshot(), "a page left before the crash: the hook was not between commit and listeners"
        assert not _rows(url, EscalationRow), "the escalation was written before the crash"

        # 2: restart; it must recover the smoke alarm's effects (its pages queued). Its second life dies after
        # committing evac.notice: on a loaded machine the restart outlasts the 10 s timer, the notice commits
        # as it comes up and it dies before a health poll sees it up, or before the outbox sent the smoke's
        # pages (the third life sends them, asserted below). So its exit is waited for, not its start.
        server.env = {**server.env, CRASH_ENV: "evac.notice"}
        restarted = time.monotonic()
        server.spawn()
        code = _exit_code(server, 90)
        assert code == CRASH_EXIT, f"the server did not die after evac.notice (exit {code}); see {data}/server.log"
        figures["crash2_after_smoke_s"] = round(time.monotonic() - smoke_at, 1)
        paged = [d.at for d in receiver.snapshot() if d.alarm == smoke]
        figures["first_smoke_page_after_restart_s"] = round(min(paged) - restarted, 1) if paged else None
        assert [r.rule for r in _rows(url, AlarmRow) if r.rule == "evac.notice"] == ["evac.notice"]
        assert not _rows(url, EvacuationRow), "the evacuation started before the crash"
        pending = {p[1] for p in _effects_pending(url)}
        assert "fire.smoke_alarm" not in pending, "the second life did not recover the smoke alarm's effects"
        assert "evac.notice" in pending, pending
        before_evac = len(receiver.snapshot())
        assert not [d for d in receiver.snapshot() if d.step.startswith("ev-")]

        # 3: restart without the hook: the evacuation, its notice and its pushes must happen now
        server.env = {k: v for k, v in server.env.items() if k not in (HOOKS_ENV, CRASH_ENV)}
        restarted = time.monotonic()
        startups.append(server.start())
        assert wait_until(lambda: [d for d in receiver.snapshot()[before_evac:] if d.step == "ev-1"], 30), \
            "no evacuation push after the restart"
        figures["first_evacuation_push_after_restart_s"] = round(
            min(d.at for d in receiver.snapshot() if d.step == "ev-1") - restarted, 1)
        confirmed = wait_until(lambda: server.alarms("fire.confirmed"), 10)
        assert confirmed, "fire.confirmed lost"
        confirmed_id = confirmed[0]["id"]
        assert wait_until(lambda: any(d.alarm == confirmed_id for d in receiver.snapshot()), 30), \
            "fire.confirmed never paged"
        wait_until(lambda: all(r.status not in ("queued", "sending") for r in _rows(url, NotificationRow)), 30)
        time.sleep(3)  # anything that would come twice comes now
        alarms = server.alarms()
        evacuations = server.api.get("/api/evacuations").json()
        notice = retained_notice(mosquitto)
        escalations = {e.alarm_id: e for e in _rows(url, EscalationRow)}
        effects = _rows(url, AlarmEffectRow)
        commands = _rows(url, CommandRow)
        health = server.health()
        if long_run:  # the 60 s step itself (emergency and on-site command) for the recovered smoke alarm
            assert wait_until(lambda: any(d.alarm == smoke and d.step == "s1" for d in receiver.snapshot()), 90)
    finally:
        detector.stop.set()
        detector.client.stop()
        server.stop()

    got = receiver.snapshot()
    per_key = Counter((d.path, d.alarm, d.step) for d in got)
    by_rule = Counter((a["rule"], a["device"] or a["zone"]) for a in alarms)
    doors = Counter((c.device, c.ref) for c in commands if c.action == "door_release")
    smoke_escalation = escalations.get(smoke)
    figures.update({
        # restart_s: the third life's start (the second's ends in its hook, maybe before it is seen up)
        "restart_s": [round(s, 1) for s in startups[1:]], "alarms": dict(Counter(a["rule"] for a in alarms)),
        "alarms_duplicated": sum(n - 1 for n in by_rule.values()), "evacuations": len(evacuations),
        "notice_retained": bool(notice and notice["state"] == "active"), "pushes_received": len(got),
        "pushes_duplicated": sum(n - 1 for n in per_key.values() if n > 1),
        "effects_recovered": sum(1 for e in effects if e.recovered), "effects_pending": sum(
            1 for e in effects if e.done_at is None),
        "door_release_commands": dict(Counter(f"{d} {r}" for (d, r) in doors.elements())),
        "smoke_escalation_next_step": smoke_escalation.next_step if smoke_escalation else None,
        "ingest_lost": health["ingest"]["lost"]})
    record("crash-after-commit", figures)

    for rule in ("fire.smoke_alarm", "fire.confirmed", "evac.notice"):
        assert [k for k in by_rule if k[0] == rule], f"{rule} lost"
    assert all(n == 1 for n in by_rule.values()), f"alarms duplicated: {by_rule}"
    assert [(e["id"], e["state"]) for e in evacuations] == [("ev-1", "active")], evacuations
    assert notice is not None and notice["id"] == "ev-1" and notice["state"] == "active", notice
    assert not [k for k, n in per_key.items() if n > 1], f"pushes delivered twice: {per_key}"
    assert {"/lead", "/supervisor", "/safety"} <= {d.path for d in got if d.alarm == smoke}
    assert {"/op1", "/op2", "/ec", "/info", "/logistics", "/osc"} <= {d.path for d in got if d.step == "ev-1"}
    assert all(n == 1 for n in doors.values()), doors
    assert ("door-z1-exit", f"alarm:{smoke}") in doors
    assert not [e for e in effects if e.done_at is None], "effects still pending"
    assert {e.snapshot["rule"] for e in effects if e.recovered} >= {"fire.smoke_alarm", "evac.notice"}
    # escalation goes on: step 0 was paged and the 60 s step (unacknowledged) is scheduled, not stopped
    assert smoke_escalation is not None and not smoke_escalation.stopped
    assert smoke_escalation.next_step == (2 if long_run else 1) and smoke_escalation.next_due_at is not None
    assert health["ingest"]["lost"] == 0


def test_a_failed_listener_leaves_its_effect_pending_until_a_retry_succeeds(tmp_path: Path) -> None:
    """Not a crash but the same hole: a listener that raised (the database briefly gone, an overload cut
    before any plug current is known) must not mark the transition done; the retry runs it again."""
    url = f"sqlite:///{tmp_path / 'fw.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    sessions = session_factory(engine)
    service = AlarmService(AlarmWriter(sessions), [])
    service.outbox = EffectsOutbox(EffectsRepository(sessions), lambda: datetime.now(UTC))
    told: list[tuple[int | None, str]] = []
    failing = {"left": 2}

    def flaky(alarm: Any) -> None:
        told.append((alarm.id, "flaky"))
        if failing["left"]:
            failing["left"] -= 1
            raise EffectNotReady("not yet")

    service.listeners += [lambda a: told.append((a.id, "steady")), flaky]
    now = datetime.now(UTC)
    [alarm] = service.commit([_raise("fire.smoke_alarm", "smoke-z1-01", "z1", now)], now)
    [row] = _rows(url, AlarmEffectRow)
    assert (row.done_at, row.failures, row.last_error) == (None, 1, "not ready: not yet")
    assert told == [(alarm.id, "steady"), (alarm.id, "flaky")]  # the failure did not stop the other listener

    recovery = EffectsRecovery(service.outbox, service.dispatch, started_at=now)
    assert recovery.recover(failed_only=True) == 1  # fails again
    assert recovery.recover(failed_only=True) == 1  # succeeds
    assert recovery.recover(failed_only=True) == 0  # nothing left
    [row] = _rows(url, AlarmEffectRow)
    assert row.done_at is not None and row.failures == 2 and row.recovered
    assert told.count((alarm.id, "flaky")) == 3
    # a row a live dispatch of this process owns (committed after started_at, never failed) is not taken
    service.listeners.clear()
    service.outbox.finish = lambda *_a, **_k: None  # type: ignore[method-assign]  # as if still dispatching
    later = now + timedelta(seconds=1)
    service.commit([_raise("fire.heat_alarm", "smoke-z1-02", "z1", later)], later)
    assert recovery.recover() == 0 and recovery.recover(failed_only=True) == 0
    engine.dispose()


def test_an_evacuation_cut_short_by_a_crash_gets_its_notice_doors_and_pushes_once(
    mosquitto: EmbeddedBroker, receiver: Receiver, tmp_path: Path, record: Record,  # noqa: F811
) -> None:
    """A crash inside EvacuationService.start after its row's commit (notice, doors and pushes not yet
    out): the next start resumes it; a start after that adds nothing."""
    site_file = tmp_path / "site.yaml"
    site_file.write_text(fire_site(receiver.port), encoding="utf-8")
    settings = Settings(site_file=site_file, data_dir=tmp_path / "var", mqtt=mosquitto.client_settings(),
                        admin_token=SecretStr("t"), mqtt_client_id="resume-server")
    url = settings.sql_url()
    engine = make_engine(url)
    migrate(engine)
    now = datetime.now(UTC)
    with session_factory(engine).begin() as session:  # what `start` commits first, and then the crash
        session.add(EvacuationRow(id="ev-1", site="r1", floor="f1", zones=["z1", "z2"], fire_zone="z1", drill=False,
                                  state="active", trigger="manual", reason="smoke seen", triggered_at=now,
                                  issued_at=now, started_by="p-sup", message_zh="全体撤离", message_en="Evacuate"))
    engine.dispose()
    assert retained_notice(mosquitto) is None

    lives: list[dict[str, Any]] = []
    for _ in range(2):
        runtime = Runtime(settings)
        runtime.start()
        try:
            _settled(url, set())
            lives.append(_facts(url, set()))
            notice = retained_notice(mosquitto)
        finally:
            runtime.stop()
        assert notice is not None and (notice["id"], notice["state"], notice["drill"]) == ("ev-1", "active", False)
    resumed, again = lives
    releases = {device for (device, action, ref) in resumed["commands"] if action == "door_release"}
    assert releases == {"door-z1-exit", "door-z2-exit"} and all(n == 1 for n in resumed["commands"].values())
    assert ("plug-z1-kettle", "relay_off", "ev-1") in resumed["commands"], "the fire zone's cut"
    assert any(k.startswith("ev/ev-1/") for k in resumed["pushes"])
    assert again == resumed, "a second start adds nothing"
    assert wait_until(lambda: any("ev-1" in d.title for d in receiver.snapshot()), 20), "no evacuation push arrived"
    record("evacuation-resumed", {"commands": sum(resumed["commands"].values()),
                                  "pushes_queued": sum(resumed["pushes"].values()),
                                  "pushes_received": len(receiver.snapshot()), "second_start_added": 0})
