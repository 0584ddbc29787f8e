"""The embedded store: a SQLite file with the same write interface and a retention period."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from gateway.contract import Event, Reading
from server.adapters.timeseries.buffer import BufferedWriter, RejectedError, RetryableError
from server.adapters.timeseries.points import FieldValue, PointIn, event_point, from_ms, reading_point, to_ms
from server.adapters.timeseries.writer import Sample
from server.domain.device_meta import DeviceMeta

log = logging.getLogger(__name__)


_SQLITE_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    measurement TEXT NOT NULL,
    device TEXT NOT NULL,
    tags TEXT NOT NULL,
    UNIQUE (measurement, tags)
);
CREATE INDEX IF NOT EXISTS ix_series_device ON series (device);
CREATE TABLE IF NOT EXISTS samples (
    series_id INTEGER NOT NULL,
    field TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    value
);
CREATE INDEX IF NOT EXISTS ix_samples_series ON samples (series_id, field, ts_ms);
CREATE INDEX IF NOT EXISTS ix_samples_ts ON samples (ts_ms);
"""
# `value` has no type affinity: floats stay REAL, booleans are stored as INTEGER 0/1 and read back as
# booleans (the writer never stores an integer that is not a boolean), strings stay TEXT.


class SqliteSeriesStore(BufferedWriter[PointIn]):
    """The embedded default: a SQLite file with the same write interface and a retention period.

    A writer thread inserts batches with ``executemany`` in one transaction each and deletes samples
    older than ``retention_days`` every ``retention_check_s`` seconds. Queries use their own
    connection (WAL mode lets them read while the writer writes); points still in the buffer (at most
    ``flush_interval_s`` old) are not yet visible to them.
    """

    def __init__(
        self, path: str | Path, *, retention_days: float = 30.0, retention_check_s: float = 3600.0,
        batch_size: int = 5_000, flush_interval_s: float = 1.0, max_buffer: int = 200_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC), hold_s: float = 0.0,
    ) -> None:
        super().__init__(
            name="sqlite-series", batch_size=batch_size, flush_interval_s=flush_interval_s,
            max_buffer=max_buffer, backoff_initial_s=0.1, backoff_max_s=5.0, hold_s=hold_s,
        )
        self.path = Path(path)
        self.retention = timedelta(days=retention_days)
        self._retention_check_s = retention_check_s
        self._clock = clock
        self._next_purge = 0.0
        self._series_ids: dict[tuple[str, str], int] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wconn = self._connect()
        self._wconn.executescript(_SQLITE_SCHEMA)
        self._wconn.commit()
        self._rconn = self._connect()
        self._rlock = threading.Lock()
        self._wlock = threading.Lock()  # the writer thread and purge() share the write connection
        self._start()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def write(self, points: Sequence[PointIn]) -> None:
        self._append(points)

    def write_readings(self, readings: Iterable[tuple[Reading, DeviceMeta]]) -> None:
        self._append([reading_point(r, m) for r, m in readings])

    def write_events(self, events: Iterable[tuple[Event, DeviceMeta]]) -> None:
        self._append([event_point(e, m) for e, m in events])

    def _series_id(self, measurement: str, tags: Mapping[str, str]) -> int:
        tags_json = json.dumps(
            dict(sorted((k, v) for k, v in tags.items() if v != "")), separators=(",", ":")
        )
        key = (measurement, tags_json)
        sid = self._series_ids.get(key)
        if sid is None:
            conn = self._wconn
            conn.execute(
                "INSERT OR IGNORE INTO series (measurement, device, tags) VALUES (?, ?, ?)",
                (measurement, tags.get("device", ""), tags_json),
            )
            row = conn.execute(
                "SELECT id FROM series WHERE measurement = ? AND tags = ?", (measurement, tags_json)
            ).fetchone()
            sid = int(row[0])
            self._series_ids[key] = sid
        return sid

    def _send(self, batch: list[PointIn]) -> None:
        try:
            with self._wlock:
                conn = self._wconn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    rows: list[tuple[int, str, int, FieldValue]] = []
                    for p in batch:
                        sid = self._series_id(p.measurement, p.tags)
                        for name, value in p.fields.items():
                            if isinstance(value, bool):
                                rows.append((sid, name, p.ts_ms, int(value)))
                            elif isinstance(value, int | float):
                                if math.isfinite(value):
                                    rows.append((sid, name, p.ts_ms, float(value)))
                            else:
                                rows.append((sid, name, p.ts_ms, value))
                    conn.executemany(
                        "INSERT INTO samples (series_id, field, ts_ms, value) VALUES (?, ?, ?, ?)", rows
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    self._series_ids.clear()  # ids created in the rolled-back transaction are gone
                    raise
        except sqlite3.OperationalError as exc:  # locked, busy, disk full: try again later
            raise RetryableError(str(exc)) from exc
        except sqlite3.DatabaseError as exc:
            raise RejectedError(str(exc)) from exc

    def _tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_purge:
            self._next_purge = now + self._retention_check_s
            try:
                self.purge()
            except sqlite3.Error as exc:
                log.warning("retention purge failed: %s", exc)

    def purge(self, now: datetime | None = None) -> int:
        """Delete samples older than the retention period; returns the count. Series rows stay (one per
        measurement and tag set, a few per device): another store on the same file (the server opens two,
        server/runtime.py) caches their ids, and a deleted id would be given to the next new series."""
        cutoff = to_ms((now or self._clock()) - self.retention)
        with self._wlock:
            deleted = self._wconn.execute("DELETE FROM samples WHERE ts_ms < ?", (cutoff,)).rowcount
        return int(deleted)

    def query_readings(
        self, device: str, metric: str, since: datetime, until: datetime | None = None, limit: int = 10_000
    ) -> list[Sample]:
        lo = to_ms(since)
        hi = to_ms(until) if until is not None else 2**62
        with self._rlock:
            rows = self._rconn.execute(
                "SELECT s.ts_ms, s.value FROM samples s JOIN series r ON r.id = s.series_id "
                "WHERE r.device = ? AND s.field = ? AND s.ts_ms >= ? AND s.ts_ms <= ? "
                "ORDER BY s.ts_ms LIMIT ?",
                (device, metric, lo, hi, int(limit)),
            ).fetchall()
        return [Sample(from_ms(ts), bool(v) if isinstance(v, int) else v) for ts, v in rows]

    def _release(self) -> None:
        for conn in (self._wconn, self._rconn):
            with contextlib.suppress(sqlite3.Error):
                conn.close()
