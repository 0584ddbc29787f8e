"""Which writer a deployment configures: InfluxDB when a URL is given, else the embedded store."""

from __future__ import annotations

from pathlib import Path

from server.adapters.timeseries.influx import InfluxWriter
from server.adapters.timeseries.sqlite_store import SqliteSeriesStore


def open_writer(
    *, influx_url: str | None = None, token: str = "", org: str = "", bucket: str = "floorwatch",
    sqlite_path: str | Path = "var/series.sqlite", retention_days: float = 30.0, max_buffer: int = 200_000,
    hold_s: float = 0.0,
) -> InfluxWriter | SqliteSeriesStore:
    """The writer a deployment configures: InfluxDB when a URL is given, else the embedded store."""
    if influx_url:
        return InfluxWriter(influx_url, token, org, bucket, max_buffer=max_buffer, hold_s=hold_s)
    return SqliteSeriesStore(sqlite_path, retention_days=retention_days, max_buffer=max_buffer, hold_s=hold_s)
