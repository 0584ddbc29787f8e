"""The boards' alarm history (`SeriesHistory.on_alarm`) on the embedded store: one point per change, at
the change's time, `active` 1 while the condition holds and 0 once it cleared or the alarm closed."""

from __future__ import annotations

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
        assert store.query_readings("door-main", "active", T0) == [
            Sample(T0, 1.0), Sample(T0 + timedelta(seconds=10), 0.0), Sample(T0 + timedelta(seconds=20), 1.0),
            Sample(T0 + timedelta(seconds=30), 0.0)]
    finally:
        store.close()
