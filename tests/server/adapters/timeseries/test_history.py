"""The boards' alarm history (`SeriesHistory.on_alarm`) on the embedded store: one point per change, at
the change's time, `active` 1 while the condition holds and 0 once it cleared or the alarm closed."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.contract import Severity
from server.adapters.timeseries import Sample, SeriesHistory, SqliteSeriesStore
from server.domain.alarms import Alarm, AlarmState
from tests.support.inspections import FakeClock

T0 = datetime(2026, 11, 29, 3, 0, 0, tzinfo=UTC)


def test_each_alarm_change_is_one_point_at_its_time(tmp_path: Path) -> None:
    store = SqliteSeriesStore(tmp_path / "series.sqlite", flush_interval_s=0.01)
    clock = FakeClock(T0)
    history = SeriesHistory(store, "hq", {"door-main"}, clock)
    raised = Alarm(rule="door.forced_open", subject="door-main", zone="ops-a", site="hq", severity=Severity.MAJOR,
                   state=AlarmState.ACTIVE, raised_at=T0, value=None, message="door-main forced open")
    try:
        history.on_alarm(raised)
        clock.advance(timedelta(seconds=10))
        history.on_alarm(replace(raised, state=AlarmState.CLEARED_UNACKED, condition_active=False))
        clock.advance(timedelta(seconds=10))
        history.on_alarm(replace(raised, occurrences=2))  # raised again
        clock.advance(timedelta(seconds=10))
        history.on_alarm(replace(raised, state=AlarmState.CLOSED))  # closed by a person
        assert store.flush(10)
        path = tmp_path / "series.sqlite"
        assert _active(path, "major") == [
            Sample(T0, 1.0), Sample(T0 + timedelta(seconds=10), 0.0), Sample(T0 + timedelta(seconds=20), 1.0),
            Sample(T0 + timedelta(seconds=30), 0.0)]
        # the rule's other severity (what an escalation would have raised) is never active
        assert {s.value for s in _active(path, "critical")} == {0.0}
    finally:
        store.close()


def _active(path: Path, severity: str) -> list[Sample]:
    """The `active` points of the alarm series of one severity, oldest first."""
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT p.ts_ms, p.value FROM series s JOIN samples p ON p.series_id = s.id "
            "WHERE s.measurement = 'alarm' AND p.field = 'active' AND json_extract(s.tags, '$.severity') = ? "
            "ORDER BY p.ts_ms", (severity,)).fetchall()
    return [Sample(datetime.fromtimestamp(ms / 1000, UTC), value) for ms, value in rows]


def _active_by_severity(path: Path) -> dict[str, float]:
    """What the boards compute: the last `active` of each alarm series (rule, severity, zone, device)."""
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT s.tags, p.value FROM series s JOIN samples p ON p.series_id = s.id "
            "WHERE s.measurement = 'alarm' AND p.field = 'active' AND p.ts_ms = "
            "(SELECT max(ts_ms) FROM samples q WHERE q.series_id = s.id AND q.field = 'active')").fetchall()
    return {json.loads(tags)["severity"]: value for tags, value in rows}


def test_an_escalated_alarm_leaves_no_series_of_its_old_severity_active(tmp_path: Path) -> None:
    store = SqliteSeriesStore(tmp_path / "series.sqlite", flush_interval_s=0.01)
    clock = FakeClock(T0)
    history = SeriesHistory(store, "hq", {"strip-1"}, clock)
    raised = Alarm(rule="elec.strip_overload", subject="strip-1", zone="ops-a", site="hq",
                   severity=Severity.MAJOR, state=AlarmState.ACTIVE, raised_at=T0, value=14.0,
                   message="strip-1 overloaded")
    try:
        history.on_alarm(raised)
        clock.advance(timedelta(seconds=10))
        escalated = replace(raised, severity=Severity.CRITICAL, value=16.0)
        history.on_alarm(escalated)
        assert store.flush(10)
        assert _active_by_severity(tmp_path / "series.sqlite") == {"major": 0.0, "critical": 1.0}
        clock.advance(timedelta(seconds=10))
        history.on_alarm(replace(escalated, state=AlarmState.CLOSED))
        assert store.flush(10)
        assert _active_by_severity(tmp_path / "series.sqlite") == {"major": 0.0, "critical": 0.0}
    finally:
        store.close()
