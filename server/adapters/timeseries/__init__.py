"""Time-series history: InfluxDB line protocol, a buffered InfluxDB writer, and an embedded SQLite store.

The schema (documented for people in ``dashboards/SCHEMA.md``; the dashboards test checks the boards
against the constants here):

* one measurement per device kind (``smart_plug``, ``strip_meter``, ``smoke_detector``, ...) with tags
  ``site``, ``zone``, ``device``, ``kind`` and, when known, ``floor``; the fields are the contract's
  metric names. Booleans stay booleans, every number is written as a float, so a field never changes
  type (InfluxDB rejects a batch whose field type changes). Known boolean metrics are always written
  as booleans and known numeric metrics always as floats, whatever JSON type the edge sent.
* derived fields written beside the metrics: ``rated_a`` and ``load_pct`` (current ÷ rating × 100) when
  the device has a rating, and ``dew_point_c`` (the rules' Magnus formula) when a reading has temperature and
  relative humidity.
* ``event`` (tags site, zone, device, kind, floor, type, direction; fields ``n`` = 1.0, ``count``),
  ``alarm`` (tags site, zone, rule, severity, device; fields ``active`` 0/1, ``value``) and
  ``inspection`` (tags site, zone, schedule; fields on_time/late/missed/failed, one point per period).
  Ingest writes events beside readings; ``SeriesHistory`` (``history.py``) writes the alarm changes (an
  alarm listener) and the inspection counts (the inspection service's counts sink).
* timestamps in milliseconds.

:meth:`TimeSeriesWriter.write` appends to a bounded buffer that a background thread drains in batches.
When the buffer is full, a writer built with ``hold_s > 0`` holds the caller (back-pressure: the server's
ingest then stops acknowledging and the broker keeps the messages) for as long as the store makes
progress; only once the store has written nothing for ``hold_s`` while the buffer is full are the oldest
entries dropped, so that a dead store cannot stall the alarms. With ``hold_s == 0`` the oldest entries
are dropped at once. Every drop is counted in :attr:`WriterStats.dropped`; nothing is dropped silently.
"""

from __future__ import annotations

from server.adapters.timeseries.history import SeriesHistory
from server.adapters.timeseries.influx import InfluxWriter
from server.adapters.timeseries.line_protocol import format_field, point_to_line, reading_to_line
from server.adapters.timeseries.points import (
    PointIn,
    alarm_point,
    dew_point_c,
    event_point,
    inspection_point,
    reading_fields,
    reading_point,
    to_ms,
)
from server.adapters.timeseries.schema import (
    ALARM_MEASUREMENT,
    BOOLEAN_METRICS,
    DEVICE_KINDS,
    DEVICE_TAGS,
    EVENT_MEASUREMENT,
    INSPECTION_MEASUREMENT,
    schema,
)
from server.adapters.timeseries.sqlite_store import SqliteSeriesStore
from server.adapters.timeseries.writer import Sample, TimeSeriesWriter, WriterStats
from server.adapters.timeseries.writers import open_writer
from server.domain.device_meta import DeviceMeta

__all__ = [
    "ALARM_MEASUREMENT",
    "BOOLEAN_METRICS",
    "DEVICE_KINDS",
    "DEVICE_TAGS",
    "EVENT_MEASUREMENT",
    "INSPECTION_MEASUREMENT",
    "DeviceMeta",
    "InfluxWriter",
    "PointIn",
    "Sample",
    "SeriesHistory",
    "SqliteSeriesStore",
    "TimeSeriesWriter",
    "WriterStats",
    "alarm_point",
    "dew_point_c",
    "event_point",
    "format_field",
    "inspection_point",
    "open_writer",
    "point_to_line",
    "reading_fields",
    "reading_point",
    "reading_to_line",
    "schema",
    "to_ms",
]
