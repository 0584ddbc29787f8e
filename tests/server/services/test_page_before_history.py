"""A drain's alarm changes commit before its readings go to the time-series store: when the store's buffer
is full and holds the ingest thread (back-pressure), a smoke alarm decided in that drain is committed, and
its page queued, while the hold lasts; only the checkpoint (and so the broker's ack) waits for history.

Real parts: the real Ingest with the real rule engine, the alarm service on SQLite, the notification
outbox, and the embedded SQLite series store bounded to a few points, its file locked by a second
connection so that it writes nothing (as a long purge or a backup would)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from gateway.contract import Channel, Severity, edge_topic
from gateway.mqtt import Incoming
from server.adapters.sql.alarms import AlarmWriter
from server.adapters.sql.repository import AlarmRepository
from server.adapters.timeseries import SqliteSeriesStore
from server.domain.rules.engine import RuleEngine
from server.services.alarms import AlarmService
from server.services.ingest import SERIES_DROPPED_RULE, SERIES_SUBJECT, Ingest
from server.services.live import LiveState
from tests.server.services.conftest import T0, FakeClock, Hook, Smtp, make_site, site_yaml
from tests.server.services.helpers import raise_alarm, wire
from tests.support.wait import wait_until

BUFFER = 8
PLUGS = ("plug-z1-kettle", "plug-z1-pc", "plug-z2-heater")


def telemetry(seq: int, readings: list[dict[str, object]], ts: str) -> Incoming:
    body = {"v": 1, "edge": "e1", "seq": seq, "sent_at": ts, "readings": readings}
    return Incoming(topic=edge_topic("r1", "e1", Channel.TELEMETRY), payload=json.dumps(body).encode(), qos=1,
                    retain=False, dup=False, mid=seq)


def test_a_smoke_alarm_commits_and_is_queued_while_the_full_series_buffer_holds_ingest(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, notify = wire(sessions, site, clock)
    series = SqliteSeriesStore(tmp_path / "series.sqlite", max_buffer=BUFFER, hold_s=60)
    ingest = Ingest(site, RuleEngine(site), alarms, series, LiveState(), clock=clock)
    ts = clock().isoformat().replace("+00:00", "Z")
    plug = {"power_w": 60.0, "current_a": 0.3, "voltage_v": 220.0, "relay": True}
    # One drain: more plug readings than the buffer holds, then smoke at a detector, in later messages.
    drain = [telemetry(seq, [{"device": PLUGS[(seq + k) % 3], "ts": ts, "metrics": plug} for k in range(3)], ts)
             for seq in range(1, 6)]
    drain.append(telemetry(6, [{"device": "smoke-z1-01", "ts": ts, "metrics": {"smoke": True}}], ts))
    held = sqlite3.connect(tmp_path / "series.sqlite", timeout=30, isolation_level=None)
    try:
        held.execute("BEGIN IMMEDIATE")  # the store writes nothing until released
        worker = threading.Thread(target=ingest.process, args=(drain,), daemon=True)
        worker.start()
        assert wait_until(lambda: series.stats().held >= 1, 20), "the full buffer never held ingest"
        assert wait_until(lambda: any(a.rule == "fire.smoke_alarm" for a in alarms.open_alarms()), 10), (
            "the smoke alarm waited for the time-series store")
        assert worker.is_alive(), "ingest was not held: the test proves nothing"
        assert notify.tick(clock()) > 0, "the smoke alarm's first page is queued while history waits"
        held.execute("ROLLBACK")
        worker.join(30)
        assert not worker.is_alive()
    finally:
        held.close()
    assert series.flush(10)
    stats = series.stats()
    assert stats.dropped == 0, stats
    series.close()


def test_a_series_dropped_alarm_left_open_by_a_restart_clears_once_the_store_takes_points(
        db, smtp: Smtp, hook: Hook, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The drop count lives in the writer's memory, the alarm in the database: a new process must still
    clear the alarm the previous one raised, at its first tick with a healthy store."""
    _, sessions = db
    site = make_site(site_yaml(smtp.port, hook.port), tmp_path)
    clock = FakeClock(T0)
    alarms, _ = wire(sessions, site, clock)
    raise_alarm(alarms, SERIES_DROPPED_RULE, SERIES_SUBJECT, None, Severity.MAJOR, clock(), value=2000.0)
    series = SqliteSeriesStore(tmp_path / "series.sqlite", max_buffer=BUFFER, hold_s=60)
    try:
        restarted = AlarmService(AlarmWriter(sessions), AlarmRepository(sessions).open_alarms())
        ingest = Ingest(site, RuleEngine(site), restarted, series, LiveState(), clock=clock)
        ingest.process([], tick=True)
        [alarm] = [a for a in AlarmRepository(sessions).open_alarms() if a.rule == SERIES_DROPPED_RULE]
        assert not alarm.condition_active, "the alarm from before the restart never cleared"
    finally:
        series.close()
