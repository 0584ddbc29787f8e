"""The embedded store: same write interface, queries for the API, retention purge, bounded buffer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.contract import Reading
from server.adapters.timeseries import (
    DeviceMeta,
    Sample,
    SqliteSeriesStore,
    TimeSeriesWriter,
    alarm_point,
    inspection_point,
)
from tests.support.wait import wait_until

T0 = datetime(2026, 11, 29, 3, 0, 0, tzinfo=UTC)
PLUG = DeviceMeta(site="hq", zone="f3-z2", kind="smart_plug", floor="f3", rated_a=10.0)


def plug_readings(n: int, start: datetime = T0, device: str = "plug-1") -> list[tuple[Reading, DeviceMeta]]:
    return [
        (Reading(device=device, ts=start + timedelta(seconds=i),
                 metrics={"power_w": 100 + i, "relay_on": i % 2 == 0}), PLUG)
        for i in range(n)
    ]


def test_write_and_query(tmp_path: Path) -> None:
    store = SqliteSeriesStore(tmp_path / "series.sqlite", flush_interval_s=0.01)
    assert isinstance(store, TimeSeriesWriter)
    try:
        store.write_readings(plug_readings(100))
        store.write_readings(plug_readings(10, device="plug-2"))
        store.write([alarm_point(site="hq", zone="f3-z2", rule="r", severity="major", active=True, ts=T0)])
        assert store.flush(10)
        since, until = T0 + timedelta(seconds=10), T0 + timedelta(seconds=19)
        got = store.query_readings("plug-1", "power_w", since, until)
        assert got == [Sample(T0 + timedelta(seconds=i), float(100 + i)) for i in range(10, 20)]
        assert all(isinstance(s.value, float) for s in got)
        flags = store.query_readings("plug-1", "relay_on", T0, limit=3)
        assert [s.value for s in flags] == [True, False, True]
        assert all(isinstance(s.value, bool) for s in flags)
        load = store.query_readings("plug-1", "load_pct", T0)
        assert load == []  # no current_a in these readings, so no load_pct
        assert len(store.query_readings("plug-2", "power_w", T0)) == 10
        assert store.query_readings("nobody", "power_w", T0) == []
        st = store.stats()
        assert (st.written, st.dropped, st.buffered) == (111, 0, 0)  # points, not samples
    finally:
        store.close()


def test_data_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "series.sqlite"
    store = SqliteSeriesStore(path)
    store.write_readings(plug_readings(5))
    store.close()
    again = SqliteSeriesStore(path)
    try:
        again.write_readings(plug_readings(5, start=T0 + timedelta(seconds=5)))
        assert again.flush(10)
        assert len(again.query_readings("plug-1", "power_w", T0)) == 10
    finally:
        again.close()


def test_retention_purges_old_samples(tmp_path: Path) -> None:
    now = T0 + timedelta(days=10)
    store = SqliteSeriesStore(tmp_path / "s.sqlite", retention_days=7, clock=lambda: now)
    try:
        store.write_readings(plug_readings(5, start=T0))  # 10 days old
        store.write_readings(plug_readings(5, start=now - timedelta(days=1), device="plug-new"))
        store.write([inspection_point(site="hq", zone="z", schedule="s", period_start=T0,
                                      on_time=1, late=0, missed=0, failed=0)])
        assert store.flush(10)
        deleted = store.purge()
        assert deleted == 5 * 3 + 4  # power_w, relay_on, rated_a of 5 old readings; 4 inspection fields
        assert store.query_readings("plug-1", "power_w", T0 - timedelta(days=1)) == []
        assert len(store.query_readings("plug-new", "power_w", T0)) == 5
        assert store.purge() == 0
    finally:
        store.close()


def test_retention_runs_by_itself(tmp_path: Path) -> None:
    now = T0 + timedelta(days=40)
    store = SqliteSeriesStore(tmp_path / "s.sqlite", retention_days=30, retention_check_s=0.05,
                              flush_interval_s=0.01, clock=lambda: now)
    try:
        store.write_readings(plug_readings(3))
        assert store.flush(10)
        assert wait_until(lambda: store.query_readings("plug-1", "power_w", T0) == [], 10)
    finally:
        store.close()


def test_bounded_buffer_counts_drops(tmp_path: Path) -> None:
    store = SqliteSeriesStore(tmp_path / "s.sqlite", max_buffer=10, flush_interval_s=3600, batch_size=10_000)
    try:
        store.write_readings(plug_readings(25))
        st = store.stats()
        assert st.buffered == 10 and st.dropped == 15
        assert store.flush(10)
        got = store.query_readings("plug-1", "power_w", T0)
        assert [s.value for s in got] == [float(100 + i) for i in range(15, 25)]  # the newest were kept
    finally:
        store.close()


def test_two_stores_on_one_file_keep_each_others_series_after_a_purge(tmp_path: Path) -> None:
    """The server opens the file twice (readings, and the boards' history: server/runtime.py); each store
    caches series ids. A purge by one must not leave the other writing under an id that is gone or, once
    the id is given again, under another series."""
    path, now = tmp_path / "series.sqlite", T0 + timedelta(days=10)
    readings = SqliteSeriesStore(path, retention_days=7, flush_interval_s=0.01, clock=lambda: now)
    history = SqliteSeriesStore(path, retention_days=7, flush_interval_s=0.01, clock=lambda: now)
    try:
        readings.write_readings(plug_readings(1, start=T0))  # 10 days old: purged below
        assert readings.flush(10)
        history.purge()
        history.write([alarm_point(site="hq", zone="f3-z2", rule="elec.strip_overload", severity="major",
                                   active=True, ts=now, device="strip-1")])
        assert history.flush(10)
        readings.write_readings(plug_readings(1, start=now))
        assert readings.flush(10)
        assert readings.query_readings("plug-1", "power_w", now - timedelta(days=1)) == [Sample(now, 100.0)]
        assert history.query_readings("strip-1", "active", now - timedelta(days=1)) == [Sample(now, 1.0)]
    finally:
        readings.close()
        history.close()
