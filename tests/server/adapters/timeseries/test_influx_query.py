"""InfluxWriter.query_readings through InfluxQL against a real InfluxDB 1.6 (`/query`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.contract import Reading
from server.adapters.timeseries import DeviceMeta, InfluxWriter, Sample, reading_to_line
from tests.server.adapters.timeseries.services import Influxd16

T0 = datetime(2026, 11, 29, 3, 0, 0, 250_000, tzinfo=UTC)


def test_query_readings_over_influxql(influxd: Influxd16) -> None:
    influxd.create_database("floorwatch")
    meta = DeviceMeta(site="hq", zone="mr-1", kind="mr_probe")
    other = DeviceMeta(site="hq", zone="f3-z1", kind="temp_sensor")
    lines = [
        reading_to_line(Reading(device="mr-1", ts=T0 + timedelta(seconds=i),
                                metrics={"temperature_c": 20 + i, "water_leak": i == 3}), meta)
        for i in range(10)
    ] + [reading_to_line(Reading(device="t-1", ts=T0, metrics={"temperature_c": 5.0}), other)]
    influxd.write_lines("floorwatch", lines)

    w = InfluxWriter(influxd.url, "", "", "floorwatch")
    try:
        got = w.query_readings("mr-1", "temperature_c", T0 + timedelta(seconds=2), T0 + timedelta(seconds=5))
        assert got == [Sample(T0 + timedelta(seconds=i), float(20 + i)) for i in range(2, 6)]
        leak = w.query_readings("mr-1", "water_leak", T0, limit=5)
        assert [s.value for s in leak] == [False, False, False, True, False]
        assert w.query_readings("nobody", "temperature_c", T0) == []
    finally:
        w.close(timeout_s=1)
