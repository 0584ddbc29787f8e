"""Notifications through real channels: an SMTP server and an HTTP webhook on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.contract import Severity
from server.domain import notify as routing
from server.services.notify import LEASE, Push
from server.services.notify.outbox import BACKOFF_MAX
from tests.server.services.conftest import T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import raise_alarm, wire
from tests.support.wait import wait_for

HERE = Path(__file__).resolve().parent


def test_critical_smoke_alarm_arrives_by_mail_and_webhook_in_chinese_and_english(db, smtp: Smtp, hook: Hook,
                                                                                  tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    alarm = raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-01", "z1", Severity.CRITICAL, clock(),
                        "Smoke alarm in 坐席区一, being checked", "坐席区一区域火灾报警,核实中", None)
    assert svc.tick(clock()) >= 3
    assert svc.deliver(clock()) >= 3

    to, subject, body = wait_for(lambda: smtp.texts(), what="mail to the shift lead")[0]
    assert to == "lead@example.com"
    assert "fire.smoke_alarm" in subject
    assert "坐席区一区域火灾报警,核实中" in body and "Smoke alarm in 坐席区一" in body
    assert "smoke-z1-01" in body and "z1" in body and "value -" in body  # a detector's alarm has no value
    assert f"http://fw.test/#alarm={alarm.id}" in body

    sup = hook.at("/supervisor")
    assert len(sup) == 1
    assert "坐席区一区域火灾报警,核实中" in sup[0]["message"] and f"#alarm={alarm.id}" in sup[0]["message"]
    assert hook.at("/safety"), "safety officer paged together with lead and supervisor (critical)"
    assert not hook.at("/ec"), "emergency command is not paged for an unconfirmed smoke alarm"

    rows = svc.log_of(alarm_id=alarm.id)
    assert {r["status"] for r in rows} == {"sent"}
    assert all("127.0.0.1" not in r["channel"] and r["channel"].count(":") == 1 for r in rows)
    assert all(r["deliveries"][0]["ok"] for r in rows)


def test_a_webhook_push_carries_one_idempotency_key_on_every_attempt(db, smtp: Smtp, hook: Hook,
                                                                      tmp_path: Path) -> None:
    """At least once: a receiver drops a repeat by its Idempotency-Key, the outbox row's own."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    alarm = raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-01", "z1", Severity.CRITICAL, clock())
    svc.tick(clock())
    hook.fail_next = 1  # the first webhook request is refused (503): that row is retried
    svc.deliver(clock())
    clock.advance(timedelta(seconds=5))
    svc.deliver(clock())
    rows = {r["id"]: r for r in svc.log_of(alarm_id=alarm.id) if r["channel"].startswith("json")}
    assert rows and all(r["status"] == "sent" for r in rows.values())
    assert sorted(set(hook.keys)) == sorted(f"r1-n{i}" for i in rows), "one key per push, the row's own"
    assert len(hook.keys) == len(rows) + 1 and len(set(hook.keys)) == len(rows), "the retry repeats its key"


def test_major_escalates_lead_then_supervisor_and_ack_stops_it_across_a_restart(db, smtp: Smtp, hook: Hook,
                                                                                 tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    alarm = raise_alarm(alarms, "fire.detector_fault", "smoke-z1-01", "z1", Severity.MAJOR, clock())
    svc.tick(clock())
    svc.deliver(clock())
    # RULES.md §2.2 fire.detector_fault: 领班 + facilities
    assert [r["recipient"] for r in svc.log_of(alarm_id=alarm.id)] == ["person:p-lead", "facilities"]

    clock.advance(timedelta(minutes=4, seconds=59))
    assert svc.tick(clock()) == 0
    # restart: a new service on the same database (timers are rows, not threads)
    alarms2, svc2 = wire(sessions, site, clock, worker="w2")
    alarms2._open = dict(alarms._open)
    clock.advance(timedelta(seconds=1))
    assert svc2.tick(clock()) == 1
    assert svc2.tick(clock()) == 0, "a step runs once"
    svc2.deliver(clock())
    assert len(hook.at("/supervisor")) == 1
    assert "升级第1级" in hook.at("/supervisor")[0]["message"]

    alarms2.acknowledge(alarm.id, "p-lead", "on my way", clock())  # type: ignore[arg-type]
    clock.advance(timedelta(minutes=16))
    assert svc2.tick(clock()) == 0, "acknowledged: no 15-min repeat"
    recipients = [r["recipient"] for r in svc2.log_of(alarm_id=alarm.id)]
    assert recipients == ["person:p-lead", "facilities", "supervisor"]


def test_an_escalation_first_seen_late_keeps_the_schedule_of_the_raise(db, smtp: Smtp, hook: Hook,
                                                                       tmp_path: Path) -> None:
    """The listener re-dispatched after a crash (server/services/recovery.py) sees the alarm minutes after
    its raise: the lead is paged at once, and the supervisor at raise + 5 min, not 5 min after recovery."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    alarms.listeners.remove(svc.on_alarm)  # the process died after the commit, before its listeners
    alarm = raise_alarm(alarms, "fire.detector_fault", "smoke-z1-01", "z1", Severity.MAJOR, clock())
    clock.advance(timedelta(minutes=4))
    svc.on_alarm(alarm)  # recovery, 4 min later
    assert svc.tick(clock()) == 2, "lead and facilities"
    clock.advance(timedelta(seconds=59))
    assert svc.tick(clock()) == 0
    clock.advance(timedelta(seconds=1))
    assert svc.tick(clock()) == 1, "the supervisor step is due 5 min after the raise"
    svc.deliver(clock())
    assert [r["recipient"] for r in svc.log_of(alarm_id=alarm.id)] == ["person:p-lead", "facilities", "supervisor"]


def test_critical_repages_every_60s_and_pages_command_and_fallback_until_acked(db, smtp: Smtp, hook: Hook,
                                                                               tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    alarm = raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-01", "z1", Severity.CRITICAL, clock())
    first = svc.tick(clock())
    clock.advance(timedelta(seconds=59))
    assert svc.tick(clock()) == 0
    clock.advance(timedelta(seconds=1))
    second = svc.tick(clock())
    svc.deliver(clock())
    assert len(hook.at("/ec")) == 1 and len(hook.at("/osc")) == 1
    assert len(hook.at("/fallback")) == 1
    assert len(hook.at("/supervisor")) == 2, "first page plus the 60 s re-page"
    assert second > 0 and first > 0
    alarms.acknowledge(alarm.id, "p-sup", "seen", clock())  # type: ignore[arg-type]
    clock.advance(timedelta(seconds=300))
    assert svc.tick(clock()) == 0


def test_a_storm_of_overloads_is_folded_into_a_few_messages_none_held_over_the_group_wait(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """50 major overloads on one floor within 25 s, with the worker passing every 0.5 s: each alarm's
    first page leaves at most GROUP_WAIT after its raise, and the alarms that follow are folded into
    follow-ups, so the lead gets a handful of messages listing every alarm exactly once."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port, strips=50), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    raised: dict[int, datetime] = {}
    for i in range(50):
        alarm = raise_alarm(alarms, "elec.strip_overload", f"strip-z{1 + i % 2}-{i:02d}", f"z{1 + i % 2}",
                            Severity.MAJOR, clock(), "Strip overloaded", "插线板过载", 11.0)
        raised[alarm.id] = clock()  # type: ignore[index]
        svc.tick(clock())
        svc.deliver(clock())
        clock.advance(timedelta(milliseconds=500))
    for _ in range(int(routing.GROUP_WAIT / timedelta(milliseconds=500)) + 1):
        svc.deliver(clock())
        clock.advance(timedelta(milliseconds=500))
    rows = svc.log_of(limit=1000)
    lead = [r for r in rows if r["channel"].startswith("mailto")]
    sent = {r["id"]: r for r in lead if r["status"] == "sent"}
    waits = []
    for r in lead:
        carrier = sent[r["id"]] if r["status"] == "sent" else sent[int(r["last_error"].rsplit(" ", 1)[-1])]
        waits.append(carrier["sent_at"] - raised[r["alarm_id"]])
    assert len(lead) == 50 and {r["status"] for r in lead} == {"sent", "grouped"}
    assert max(waits) <= routing.GROUP_WAIT, max(waits)
    mails = wait_for(lambda: smtp.texts() if len(smtp.texts()) == len(sent) else None, what="the lead's mails")
    assert 2 <= len(mails) <= 6, [m[1] for m in mails]  # 25 s of alarms, one message per 5 s at most
    body = "".join(m[2] for m in mails)
    assert body.count("插线板过载") == 50 and all(f"strip-z{1 + i % 2}-{i:02d}" in body for i in range(50))
    assert any("×" in m[1] for m in mails), "folded messages list several alarms"


def test_a_push_claimed_before_a_crash_is_never_folded_into(db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """A row claimed before a crash may already have reached its receiver: after the restart it is sent
    again with the same Idempotency-Key, so an alarm folded into it would be dropped as a repeat."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port, strips=2), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    first = raise_alarm(alarms, "elec.strip_overload", "strip-z1-00", "z1", Severity.MAJOR, clock(),
                        "Strip overloaded", "插线板过载", 11.0)
    svc.tick(clock())
    clock.advance(routing.GROUP_WAIT)
    claimed = svc.claim(clock(), 100)
    assert claimed, "the first overload's pages are due and claimed"
    before = {r["id"]: (r["title"], r["body"]) for r in svc.log_of(alarm_id=first.id)}

    alarms2, svc2 = wire(sessions, site, clock)  # the same worker id after a crash
    alarms2._open = dict(alarms._open)
    assert svc2.release_own_leases() == len(claimed)
    second = raise_alarm(alarms2, "elec.strip_overload", "strip-z1-01", "z1", Severity.MAJOR, clock(),
                         "Strip overloaded", "插线板过载", 12.0)
    svc2.tick(clock())
    assert {r["id"]: (r["title"], r["body"]) for r in svc2.log_of(alarm_id=first.id)} == before
    assert "grouped" not in {r["status"] for r in svc2.log_of(alarm_id=second.id)}

    clock.advance(routing.GROUP_WAIT)
    svc2.deliver(clock())
    rows = svc2.log_of(limit=100)
    assert {r["status"] for r in rows if r["alarm_id"] in (first.id, second.id)} == {"sent"}
    mails = wait_for(lambda: smtp.texts() if len(smtp.texts()) == 2 else None, what="both overloads' mails")
    assert sorted(m[2].count("#alarm=") for m in mails) == [1, 1], "one alarm per message: nothing folded"
    assert {first.id, second.id} == {int(m[2].split("#alarm=")[1].split()[0]) for m in mails}


def test_a_fold_loses_to_a_claim_that_came_first(db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    """The queued row was read for folding, then claimed by a worker: the fold does not touch it."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port, strips=2), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    first = raise_alarm(alarms, "elec.strip_overload", "strip-z1-00", "z1", Severity.MAJOR, clock(),
                        "Strip overloaded", "插线板过载", 11.0)
    svc.tick(clock())
    rows = [r for r in svc.log_of(alarm_id=first.id) if r["status"] == "queued"]
    from server.adapters.sql.notifications import NotifyTransaction

    with sessions.begin() as session:
        tx = NotifyTransaction(session)
        pending = tx.notification(rows[0]["id"])
        assert pending is not None
        clock.advance(routing.GROUP_WAIT)
        assert rows[0]["id"] in svc.claim(clock(), 100)  # another session claims it meanwhile
        push = Push("test/fold", first.id, "", pending.recipient, svc._urls[pending.channel],
                            Severity.MAJOR, routing.Text("t", "b"), [], pending.group_key)
        assert svc._fold(tx, pending, push) is False
    assert {r["id"]: r["body"] for r in svc.log_of(alarm_id=first.id)}[rows[0]["id"]] == rows[0]["body"]


def test_confirmed_fire_inhibits_the_zones_smoke_pushes_and_offline_edge_its_devices(db, smtp: Smtp, hook: Hook,
                                                                                     tmp_path: Path) -> None:
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, site, clock)
    raise_alarm(alarms, "fire.confirmed", "z1", "z1", Severity.CRITICAL, clock())
    smoke = raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-02", "z1", Severity.CRITICAL, clock())
    raise_alarm(alarms, "sup.gateway_offline", "e1", None, Severity.MAJOR, clock())
    offline = raise_alarm(alarms, "sup.smoke_offline", "smoke-z2-01", "z2", Severity.MAJOR, clock())
    svc.tick(clock())
    assert {r["status"] for r in svc.log_of(alarm_id=smoke.id)} == {"suppressed"}
    assert "fire.confirmed" in svc.log_of(alarm_id=smoke.id)[0]["last_error"]
    assert {r["status"] for r in svc.log_of(alarm_id=offline.id)} == {"suppressed"}


def test_a_failed_critical_push_goes_to_the_fallback_channel(db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:
    from gateway.broker import free_port

    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port, dead_port=free_port()), tmp_path)
    clock = FakeClock(T0)
    results: list[tuple[str, bool]] = []
    alarms, svc = wire(sessions, site, clock, on_result=lambda ch, ok: results.append((ch, ok)))
    alarm = raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-01", "z1", Severity.CRITICAL, clock())
    svc.tick(clock())
    svc.deliver(clock())
    svc.deliver(clock())  # the fallback row queued by the failure
    failed = [r for r in svc.log_of(alarm_id=alarm.id) if r["recipient"] == "safety_officer"]
    assert failed[0]["status"] == "queued" and failed[0]["attempts"] == 1 and failed[0]["last_error"]
    assert len(hook.at("/fallback")) == 1 and "fallback" in hook.at("/fallback")[0]["message"]
    assert (failed[0]["channel"], False) in results


def test_a_push_to_a_channel_gone_from_the_contacts_fails_once_for_good(db, smtp: Smtp, hook: Hook, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """`floorwatch demo --keep`: pushes the last run queued for its push inbox (another port each run) can never
    be delivered. Each fails once, says why, is not retried, and a critical one still goes to the fallback."""
    _, sessions = db
    clock = FakeClock(T0)
    alarms, svc = wire(sessions, make_site(site_yaml(smtp.port, hook.port), tmp_path), clock)
    alarm = raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-01", "z1", Severity.CRITICAL, clock())
    assert svc.tick(clock()) >= 3  # queued; the server stops before sending them
    (tmp_path / "next").mkdir()
    text = site_yaml(smtp.port, hook.port).replace("/safety']", "/safety-next-run']")
    results: list[tuple[str, bool]] = []
    _, svc2 = wire(sessions, make_site(text, tmp_path / "next"), clock,
                   on_result=lambda ch, ok: results.append((ch, ok)))
    with caplog.at_level(logging.WARNING, logger="server.services.notify.outbox"):
        svc2.deliver(clock())
        for _ in range(3):  # later rounds, each past any retry's back-off
            clock.advance(BACKOFF_MAX)
            svc2.deliver(clock())
    gone = [r for r in svc2.log_of(alarm_id=alarm.id) if r["recipient"] == "safety_officer"]
    assert [(r["status"], r["attempts"], len(r["deliveries"])) for r in gone] == [("failed", 1, 1)]
    assert "is no longer in the site's contacts" in gone[0]["last_error"]
    lines = [r.getMessage() for r in caplog.records if "no longer in the site's contacts" in r.getMessage()]
    assert len(lines) == 1 and f"notification {gone[0]['id']}" in lines[0], lines
    assert len(hook.at("/fallback")) == 1, "a critical page that cannot be delivered goes to the fallback channel"
    assert gone[0]["channel"] not in {ch for ch, _ in results}, "a channel the site no longer has is not judged"
    assert not hook.at("/safety-next-run") and not hook.at("/safety")
    assert {r["status"] for r in svc2.log_of(alarm_id=alarm.id) if r["recipient"] != "safety_officer"} == {"sent"}


def test_a_worker_killed_between_claim_and_send_neither_loses_nor_duplicates(db, smtp: Smtp, hook: Hook,
                                                                             tmp_path: Path) -> None:
    url, sessions = db
    text = site_yaml(smtp.port, hook.port)
    site = make_site(text, tmp_path)
    from datetime import UTC, datetime

    clock = FakeClock(datetime.now(UTC))
    alarms, svc = wire(sessions, site, clock)
    alarm = raise_alarm(alarms, "fire.smoke_alarm", "smoke-z1-01", "z1", Severity.CRITICAL, clock())
    queued = svc.tick(clock())
    assert queued >= 3
    # A separate process claims the rows and is SIGKILLed before it sends anything.
    proc = subprocess.Popen([sys.executable, str(HERE / "crash_worker.py"), url, str(tmp_path / "site.yaml")],
                            stdout=subprocess.PIPE, text=True, cwd=str(HERE.parents[2]),
                            env={**os.environ, "PYTHONPATH": str(HERE.parents[2])})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("CLAIMED"), line
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    rows = svc.log_of(alarm_id=alarm.id)
    assert {r["status"] for r in rows} == {"sending"} and not hook.received and not smtp.messages

    assert svc.deliver(clock()) == 0, "the dead worker's lease still holds"
    # the worker took its lease on its own (real) clock, after its start-up: allow for a slow start
    clock.advance(LEASE + timedelta(seconds=60))
    assert svc.deliver(clock()) == queued
    wait_for(lambda: len(smtp.messages) == 1, what="the mail")
    rows = svc.log_of(alarm_id=alarm.id)
    assert {r["status"] for r in rows} == {"sent"} and all(r["attempts"] == 1 for r in rows)
    assert len(hook.at("/supervisor")) == 1 and len(hook.at("/safety")) == 1 and len(smtp.messages) == 1
    assert svc.deliver(clock()) == 0
