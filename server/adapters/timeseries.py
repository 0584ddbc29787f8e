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
* timestamps in milliseconds.

:meth:`TimeSeriesWriter.write` appends to a bounded buffer that a background thread drains in batches.
When the buffer is full, a writer built with ``hold_s > 0`` holds the caller (back-pressure: the server's
ingest then stops acknowledging and the broker keeps the messages) for as long as the store makes
progress; only once the store has written nothing for ``hold_s`` while the buffer is full are the oldest
entries dropped, so that a dead store cannot stall the alarms. With ``hold_s == 0`` the oldest entries
are dropped at once. Every drop is counted in :attr:`WriterStats.dropped`; nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Final, Generic, NamedTuple, Protocol, TypeVar, cast, runtime_checkable

from gateway.contract import KNOWN_METRICS, Event, Reading
from server.domain.dew import dew_point

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Schema constants (the single source for the dashboards' schema test)
# --------------------------------------------------------------------------------------------------

DEVICE_KINDS: Final = frozenset(
    {
        "smart_plug", "strip_meter", "smoke_detector", "temp_sensor", "door_controller", "mr_probe",
        "leak_sensor", "heat_detector", "siren", "other",
    }
)
"""Measurements for readings: one per device kind. A kind outside this set is written as given."""

DEVICE_TAGS: Final = ("device", "floor", "kind", "site", "zone")
"""Tags of every reading and event point (sorted, as InfluxDB prefers)."""

BOOLEAN_METRICS: Final = frozenset(
    {
        "relay_on", "smoke", "water_leak", "door_open", "tamper", "door_locked", "battery_low",
        "detector_fault", "siren_on",
    }
)
"""Known metrics that are always written as booleans."""

DERIVED_FIELDS: Final = frozenset({"rated_a", "load_pct", "dew_point_c"})

EVENT_MEASUREMENT: Final = "event"
EVENT_TAGS: Final = (*DEVICE_TAGS, "type", "direction")
EVENT_FIELDS: Final = frozenset({"n", "count"})

ALARM_MEASUREMENT: Final = "alarm"
ALARM_TAGS: Final = ("device", "rule", "severity", "site", "zone")
ALARM_FIELDS: Final = frozenset({"active", "value"})

INSPECTION_MEASUREMENT: Final = "inspection"
INSPECTION_TAGS: Final = ("schedule", "site", "zone")
INSPECTION_FIELDS: Final = frozenset({"on_time", "late", "missed", "failed"})

READING_FIELDS: Final = frozenset(KNOWN_METRICS | DERIVED_FIELDS)
"""Fields a reading measurement may carry (unknown metrics are stored too, but boards use only these)."""


def schema() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """Measurement -> (tags, fields) that the writers produce; boards may reference only these."""
    out: dict[str, tuple[frozenset[str], frozenset[str]]] = {
        kind: (frozenset(DEVICE_TAGS), READING_FIELDS) for kind in DEVICE_KINDS
    }
    out[EVENT_MEASUREMENT] = (frozenset(EVENT_TAGS), EVENT_FIELDS)
    out[ALARM_MEASUREMENT] = (frozenset(ALARM_TAGS), ALARM_FIELDS)
    out[INSPECTION_MEASUREMENT] = (frozenset(INSPECTION_TAGS), INSPECTION_FIELDS)
    return out


# --------------------------------------------------------------------------------------------------
# Points and line protocol
# --------------------------------------------------------------------------------------------------

FieldValue = float | int | bool | str
SampleValue = float | bool

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)

# Escaping as the line-protocol spec and influxdb-client do it. Backslashes are not escaped.
_ESCAPE_MEASUREMENT: Final = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_KEY: Final = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_STRING: Final = str.maketrans({'"': r"\"", "\\": r"\\"})


def to_ms(ts: datetime) -> int:
    """Milliseconds since the epoch, exact (no float rounding). A naive time is taken as UTC."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return (ts - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def escape_measurement(name: str) -> str:
    return name.translate(_ESCAPE_MEASUREMENT)


def escape_key(key: str) -> str:
    """Escape a tag key, tag value or field key."""
    return key.translate(_ESCAPE_KEY)


def format_field(value: FieldValue) -> str:
    """A field value in line protocol: floats as floats, booleans as booleans, strings quoted.

    Integers are written as floats (``3`` -> ``3.0``) so that a field never changes type.
    """
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPE_STRING) + '"'
    return repr(float(value))


@dataclass(frozen=True, slots=True)
class PointIn:
    """One point: measurement, tags, fields and a time in milliseconds since the epoch."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    ts_ms: int

    @property
    def ts(self) -> datetime:
        return from_ms(self.ts_ms)


def point_to_line(point: PointIn) -> str | None:
    """Serialise a point; ``None`` when it has no writable field (non-finite numbers are skipped)."""
    parts = []
    for key, value in point.fields.items():
        if isinstance(value, float) and not math.isfinite(value):
            continue
        parts.append(escape_key(key) + "=" + format_field(value))
    if not parts:
        return None
    tags = "".join(
        "," + escape_key(k) + "=" + escape_key(v) for k, v in sorted(point.tags.items()) if v != ""
    )
    return f"{escape_measurement(point.measurement)}{tags} {','.join(parts)} {point.ts_ms}"


@dataclass(frozen=True, slots=True)
class DeviceMeta:
    """What the registry knows about a device that the readings do not carry."""

    site: str
    zone: str
    kind: str
    floor: str = ""
    rated_a: float | None = None
    """Rated current of a strip or plug; when set, ``rated_a`` and ``load_pct`` are written."""

    def tags(self, device: str) -> dict[str, str]:
        return {
            "device": device, "floor": self.floor, "kind": self.kind, "site": self.site, "zone": self.zone,
        }


@lru_cache(maxsize=65536)
def _line_prefix(device: str, meta: DeviceMeta) -> str:
    tags = "".join(
        "," + k + "=" + escape_key(v) for k, v in sorted(meta.tags(device).items()) if v != ""
    )
    return escape_measurement(meta.kind) + tags + " "


def dew_point_c(temperature_c: float, humidity_pct: float) -> float | None:
    """The rules' dew point (one formula, `server.domain.dew`) rounded for storage;
    ``None`` when RH is not in (0, 100] or the result is not a number, so a bad reading stores no field."""
    if not 0.0 < humidity_pct <= 100.0:
        return None
    try:
        dp = round(dew_point(temperature_c, humidity_pct), 2)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return dp if math.isfinite(dp) else None


def reading_fields(reading: Reading, meta: DeviceMeta) -> dict[str, SampleValue]:
    """The fields a reading is stored with: type-normalised metrics plus the derived fields."""
    fields: dict[str, SampleValue] = {}
    for name, value in reading.metrics.items():
        if name in BOOLEAN_METRICS:
            fields[name] = bool(value)
        elif isinstance(value, bool):
            # A numeric field must stay numeric; unknown metrics keep their boolean type.
            fields[name] = float(value) if name in KNOWN_METRICS else value
        else:
            fields[name] = float(value)
    if meta.rated_a:
        fields["rated_a"] = float(meta.rated_a)
        current = fields.get("current_a")
        if isinstance(current, float):
            fields["load_pct"] = round(current / meta.rated_a * 100.0, 3)
    temp, rh = fields.get("temperature_c"), fields.get("humidity_pct")
    if isinstance(temp, float) and isinstance(rh, float):
        dp = dew_point_c(temp, rh)
        if dp is not None:
            fields["dew_point_c"] = dp
    return fields


def reading_to_line(reading: Reading, meta: DeviceMeta) -> str:
    """The hot path: one canonical reading straight to one line of line protocol (ms precision).

    Same fields as :func:`reading_fields`, written in one pass. Metric names need no escaping: the
    contract restricts them to ``[a-z][a-z0-9_]*``.
    """
    parts = []
    current = temp = rh = None
    for name, value in reading.metrics.items():
        if name in BOOLEAN_METRICS or ((value is True or value is False) and name not in KNOWN_METRICS):
            parts.append(name + ("=true" if value else "=false"))
        else:
            v = float(value)
            parts.append(name + "=" + repr(v))
            if name == "current_a":
                current = v
            elif name == "temperature_c":
                temp = v
            elif name == "humidity_pct":
                rh = v
    rated = meta.rated_a
    if rated:
        parts.append("rated_a=" + repr(float(rated)))
        if current is not None:
            parts.append("load_pct=" + repr(round(current / rated * 100.0, 3)))
    if temp is not None and rh is not None:
        dp = dew_point_c(temp, rh)
        if dp is not None:
            parts.append("dew_point_c=" + repr(dp))
    return _line_prefix(reading.device, meta) + ",".join(parts) + " " + str(to_ms(reading.ts))


def reading_point(reading: Reading, meta: DeviceMeta) -> PointIn:
    return PointIn(meta.kind, meta.tags(reading.device), reading_fields(reading, meta), to_ms(reading.ts))


def event_point(event: Event, meta: DeviceMeta) -> PointIn:
    """An access, fire or supervision event as a point of ``event`` (badge numbers are never stored)."""
    tags = meta.tags(event.device)
    tags["type"] = str(event.type)
    if event.direction:
        tags["direction"] = event.direction
    fields: dict[str, FieldValue] = {"n": 1.0}
    if event.count is not None:
        fields["count"] = float(event.count)
    return PointIn(EVENT_MEASUREMENT, tags, fields, to_ms(event.ts))


def alarm_point(
    *, site: str, zone: str | None, rule: str, severity: str, active: bool, ts: datetime,
    value: float | None = None, device: str | None = None,
) -> PointIn:
    """An alarm raise (``active`` 1) or clear (``active`` 0), for boards of active alarms."""
    tags = {"site": site, "zone": zone or "", "rule": rule, "severity": str(severity), "device": device or ""}
    fields: dict[str, FieldValue] = {"active": 1.0 if active else 0.0}
    if value is not None and math.isfinite(value):
        fields["value"] = float(value)
    return PointIn(ALARM_MEASUREMENT, tags, fields, to_ms(ts))


def inspection_point(
    *, site: str, zone: str, schedule: str, period_start: datetime,
    on_time: int, late: int, missed: int, failed: int,
) -> PointIn:
    """Inspection counts for one period (a month, say) at the period's start.

    Writing the same (site, zone, schedule, period_start) again overwrites it in InfluxDB, so the server
    can re-send the running counts of the current period as often as it likes.
    """
    return PointIn(
        INSPECTION_MEASUREMENT,
        {"site": site, "zone": zone, "schedule": schedule},
        {"on_time": float(on_time), "late": float(late), "missed": float(missed), "failed": float(failed)},
        to_ms(period_start),
    )


# --------------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WriterStats:
    written: int
    """Entries (lines or points) the store acknowledged."""
    buffered: int
    """Entries waiting, including a batch being sent."""
    dropped: int
    """Entries lost because the buffer was full (oldest first)."""
    retries: int
    """Failed attempts that were retried."""
    rejected: int
    """Entries the store refused for good (a 4xx such as a field type conflict); not retried."""
    last_error: str | None
    max_buffer: int = 0
    """The bound of the buffer (entries)."""
    held: int = 0
    """Times a caller was held because the buffer was full (back-pressure)."""
    held_s: float = 0.0
    """Seconds callers spent held, in total."""
    stalled: bool = False
    """The buffer is full and the store wrote nothing for ``hold_s``: new entries push out the oldest."""


class Sample(NamedTuple):
    ts: datetime
    value: SampleValue


@runtime_checkable
class TimeSeriesWriter(Protocol):
    def write(self, points: Sequence[PointIn]) -> None:
        """Append points to the buffer; never blocks on I/O."""

    def write_readings(self, readings: Iterable[tuple[Reading, DeviceMeta]]) -> None:
        """The hot path: append canonical readings with their device metadata."""

    def flush(self, timeout_s: float | None = None) -> bool:
        """Block until everything buffered is written (True) or the timeout passed (False)."""

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what can be flushed within the timeout, then stop the thread and release the client."""

    def stats(self) -> WriterStats: ...

    def query_readings(
        self, device: str, metric: str, since: datetime, until: datetime | None = None, limit: int = 10_000
    ) -> list[Sample]:
        """Samples of one metric of one device in [since, until], oldest first, at most ``limit``."""


# --------------------------------------------------------------------------------------------------
# The bounded buffer and its flushing thread, shared by both writers
# --------------------------------------------------------------------------------------------------

T = TypeVar("T")


class RetryableError(Exception):
    """The store is unreachable or busy: keep the batch and try again later."""


class RejectedError(Exception):
    """The store refused the batch for good: count it as rejected and move on."""


class _BufferedWriter(Generic[T]):
    """A bounded FIFO drained in batches by one background thread, with retries and backoff.

    The batch being sent stays at the head of the buffer until the store acknowledges it, so a failed
    send loses nothing; if the buffer overflows meanwhile, the oldest entries (possibly the ones being
    sent) are dropped and counted. Should a send succeed although some of its entries had been counted
    as dropped meanwhile, the count is corrected: ``dropped`` is exactly what never reached the store.

    With ``hold_s > 0`` a full buffer holds the caller instead, for as long as the store keeps writing:
    the wait ends when there is room, or once no batch was settled for ``hold_s`` since the buffer
    filled (the store is down or stuck). From then on the writer is *stalled*: callers are not held
    and the oldest entries make room, until the next batch is settled.
    """

    def __init__(
        self, *, name: str, batch_size: int, flush_interval_s: float, max_buffer: int,
        backoff_initial_s: float, backoff_max_s: float, hold_s: float = 0.0,
    ) -> None:
        if batch_size < 1 or max_buffer < 1:
            raise ValueError("batch_size and max_buffer must be positive")
        if hold_s < 0 or not math.isfinite(hold_s):
            raise ValueError(f"hold_s must be a finite number of seconds >= 0, not {hold_s!r}")
        self._hold_s = hold_s
        self._full_since: float | None = None  # a caller found the buffer full, no batch settled since
        self._holding = 0
        self._held = 0
        self._held_s = 0.0
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_buffer = max_buffer
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._buf: deque[T] = deque()
        self._cond = threading.Condition()
        self._head_drops = 0  # entries dropped from the head since start (for in-flight accounting)
        self._written = 0
        self._dropped = 0
        self._retries = 0
        self._rejected = 0
        self._last_error: str | None = None
        self._flush_waiters = 0
        self._closing = False
        self._stop = False
        self._wake = threading.Event()  # set by close(): cuts a retry pause short
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _start(self) -> None:
        self._thread.start()

    # -- producer side ------------------------------------------------------------------------------

    def _append(self, items: Sequence[T]) -> None:
        if not items:
            return
        with self._cond:
            if self._stop:
                self._dropped += len(items)
                self._last_error = "write after close"
                return
            buf = self._buf
            if self._hold_s > 0 and buf and len(buf) + len(items) > self._max_buffer:
                self._hold(len(items))
            overflow = len(buf) + len(items) - self._max_buffer
            if overflow > 0:
                from_buf = min(overflow, len(buf))
                for _ in range(from_buf):
                    buf.popleft()
                self._head_drops += from_buf
                self._dropped += overflow
                skip = overflow - from_buf  # more new items than the whole bound: keep the newest
                buf.extend(items[skip:] if skip else items)
            else:
                buf.extend(items)
            if len(buf) >= self._batch_size:
                self._cond.notify_all()

    def _hold(self, n: int) -> None:
        """Wait (holding `_cond`'s lock between waits) until `n` more entries fit, the store stalls, or close."""
        started = time.monotonic()
        if self._full_since is not None and started - self._full_since >= self._hold_s:
            return  # stalled already: no new wait until the store settles a batch
        self._held += 1
        self._holding += 1
        self._cond.notify_all()  # the writer sends at once, whatever the batch size
        try:
            while self._buf and len(self._buf) + n > self._max_buffer and not self._stop:
                now = time.monotonic()
                if self._full_since is None:
                    self._full_since = now
                left = self._full_since + self._hold_s - now
                if left <= 0:
                    return  # stalled: the oldest entries make room
                self._cond.wait(min(left, 0.5))
        finally:
            self._holding -= 1
            self._held_s += time.monotonic() - started

    def flush(self, timeout_s: float | None = None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                while self._buf:
                    if not self._thread.is_alive():
                        return False
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining if remaining is not None else 0.5)
                return True
            finally:
                self._flush_waiters -= 1

    def close(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._wake.set()
        if self._thread.is_alive():
            self.flush(timeout_s)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=max(timeout_s, 1.0))
        with self._cond:
            if self._buf:
                self._dropped += len(self._buf)
                self._last_error = f"closed with {len(self._buf)} entries unwritten"
                log.warning("time-series writer closed with %d entries unwritten", len(self._buf))
                self._buf.clear()
        self._release()

    def stats(self) -> WriterStats:
        with self._cond:
            stalled = self._full_since is not None and time.monotonic() - self._full_since >= self._hold_s
            return WriterStats(
                written=self._written, buffered=len(self._buf), dropped=self._dropped,
                retries=self._retries, rejected=self._rejected, last_error=self._last_error,
                max_buffer=self._max_buffer, held=self._held, held_s=self._held_s, stalled=stalled,
            )

    # -- consumer side ------------------------------------------------------------------------------

    def _send(self, batch: list[T]) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Close clients and connections (after the thread stopped)."""

    def _tick(self) -> None:
        """Periodic housekeeping in the writer thread (retention, for example)."""

    def _run(self) -> None:
        backoff = self._backoff_initial_s
        last_send = time.monotonic()
        while True:
            batch: list[T] | None = None
            with self._cond:
                if self._stop:
                    return
                now = time.monotonic()
                waited = now - last_send
                buf = self._buf
                if buf and (
                    len(buf) >= self._batch_size or waited >= self._flush_interval_s
                    or self._flush_waiters or self._closing or self._holding
                ):
                    n = min(len(buf), self._batch_size)
                    batch = [buf[i] for i in range(n)]
                    drops_before = self._head_drops
                else:
                    timeout = self._flush_interval_s - waited if buf else 1.0
                    self._cond.wait(min(max(timeout, 0.01), 1.0))
            self._tick()
            if batch is None:
                continue
            try:
                self._send(batch)
            except RejectedError as exc:
                self._settle(len(batch), drops_before, rejected=True, error=str(exc))
                log.error("time-series store rejected %d entries: %s", len(batch), exc)
            except Exception as exc:  # RetryableError and anything unexpected: keep the batch
                with self._cond:
                    self._retries += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    closing = self._closing
                delay = backoff * (0.5 + random.random() / 2)  # jitter only, not security
                # Writes do not cut the pause short (no hammering during an outage); close() does.
                self._wake.wait(min(delay, 0.2) if closing else delay)
                backoff = min(backoff * 2, self._backoff_max_s)
                continue
            else:
                self._settle(len(batch), drops_before, rejected=False, error=None)
            backoff = self._backoff_initial_s
            last_send = time.monotonic()

    def _settle(self, n: int, drops_before: int, *, rejected: bool, error: str | None) -> None:
        with self._cond:
            dropped_meanwhile = min(n, self._head_drops - drops_before)
            for _ in range(min(n - dropped_meanwhile, len(self._buf))):
                self._buf.popleft()
            if rejected:
                self._rejected += n
                self._dropped -= dropped_meanwhile  # counted as rejected instead
                self._last_error = error
            else:
                self._written += n
                self._dropped -= dropped_meanwhile  # they arrived after all
            # Later head drops must not be credited to this batch again.
            self._head_drops -= dropped_meanwhile
            self._full_since = None  # the store took a batch: it is not stalled
            self._cond.notify_all()


# --------------------------------------------------------------------------------------------------
# InfluxDB
# --------------------------------------------------------------------------------------------------


class InfluxWriter(_BufferedWriter[str]):
    """Buffered writer of pre-serialised line protocol to InfluxDB 2.x/3.x (v2 write endpoint).

    One ``InfluxDBClient`` is created and reused; a background thread posts batches of
    ``batch_size`` lines or whatever arrived within ``flush_interval_s``. Failed batches are retried
    with exponential backoff (with jitter) up to ``backoff_max_s`` between attempts, for as long as it
    takes; only the bound ``max_buffer`` limits what is kept meanwhile.
    """

    def __init__(
        self, url: str, token: str, org: str, bucket: str, *, batch_size: int = 5_000,
        flush_interval_s: float = 1.0, max_buffer: int = 200_000, backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0, timeout_ms: int = 10_000, gzip: bool = False,
        database: str | None = None, hold_s: float = 0.0,
    ) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        super().__init__(
            name="influx-writer", batch_size=batch_size, flush_interval_s=flush_interval_s,
            max_buffer=max_buffer, backoff_initial_s=backoff_initial_s, backoff_max_s=backoff_max_s,
            hold_s=hold_s,
        )
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.org = org
        self._token = token
        self._database = database or bucket
        self._timeout_s = timeout_ms / 1000
        self._client = InfluxDBClient(
            url=self.url, token=token, org=org, timeout=timeout_ms, enable_gzip=gzip
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._http: httpx.Client | None = None  # for InfluxQL reads, created on first use
        self._start()

    def write(self, points: Sequence[PointIn]) -> None:
        self._append([line for line in map(point_to_line, points) if line is not None])

    def write_lines(self, lines: Sequence[str]) -> None:
        """Append pre-serialised lines (ms precision), e.g. from :func:`reading_to_line`."""
        self._append(lines)

    def write_readings(self, readings: Iterable[tuple[Reading, DeviceMeta]]) -> None:
        self._append([reading_to_line(r, m) for r, m in readings])

    def _send(self, batch: list[str]) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        try:
            self._write_api.write(
                bucket=self.bucket, org=self.org, record="\n".join(batch),
                write_precision=cast(WritePrecision, WritePrecision.MS),
            )
        except ApiException as exc:
            status = exc.status or 0
            if status == 429 or status >= 500 or status in (401, 403, 404) or status == 0:
                # Auth and missing-bucket errors are retried too: they are fixed by an operator,
                # and dropping history meanwhile would be worse than buffering it.
                raise RetryableError(f"HTTP {status}: {(exc.body or exc.reason or '')!s:.300}") from exc
            raise RejectedError(f"HTTP {status}: {(exc.body or exc.reason or '')!s:.300}") from exc

    def _release(self) -> None:
        closers: list[Callable[[], None]] = [self._write_api.close, self._client.close]
        if self._http is not None:
            closers.append(self._http.close)
        for close in closers:
            with contextlib.suppress(Exception):
                close()

    def query_readings(
        self, device: str, metric: str, since: datetime, until: datetime | None = None, limit: int = 10_000
    ) -> list[Sample]:
        """Read back through the InfluxQL ``/query`` endpoint (InfluxDB 1.x, 2.x with DBRP, 3.x)."""
        import httpx

        if self._http is None:
            self._http = httpx.Client(
                base_url=self.url, timeout=self._timeout_s,
                headers={"Authorization": f"Token {self._token}"} if self._token else {},
            )
        client = self._http
        where = f'"device" = {influxql_string(device)} AND time >= {to_ms(since)}ms'
        if until is not None:
            where += f" AND time <= {to_ms(until)}ms"
        q = (
            f"SELECT {influxql_ident(metric)} FROM /.*/ WHERE {where} "
            f"ORDER BY time ASC LIMIT {int(limit)}"
        )
        resp = client.get("/query", params={"db": self._database, "q": q, "epoch": "ms"})
        resp.raise_for_status()
        samples: list[Sample] = []
        for result in resp.json().get("results", []):
            if "error" in result:
                raise RuntimeError(result["error"])
            for series in result.get("series", []):
                for ts_ms, value in series.get("values", []):
                    if value is not None:
                        samples.append(Sample(from_ms(int(ts_ms)), value))
        samples.sort(key=lambda s: s.ts)
        return samples[:limit]


def influxql_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def influxql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --------------------------------------------------------------------------------------------------
# The embedded store
# --------------------------------------------------------------------------------------------------

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


class SqliteSeriesStore(_BufferedWriter[PointIn]):
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
        """Delete samples older than the retention period (and series left empty); returns the count."""
        cutoff = to_ms((now or self._clock()) - self.retention)
        with self._wlock:
            conn = self._wconn
            deleted = conn.execute("DELETE FROM samples WHERE ts_ms < ?", (cutoff,)).rowcount
            if deleted:
                conn.execute(
                    "DELETE FROM series WHERE NOT EXISTS (SELECT 1 FROM samples WHERE series_id = series.id)"
                )
                self._series_ids.clear()
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


def open_writer(
    *, influx_url: str | None = None, token: str = "", org: str = "", bucket: str = "floorwatch",
    sqlite_path: str | Path = "var/series.sqlite", retention_days: float = 30.0, max_buffer: int = 200_000,
    hold_s: float = 0.0,
) -> InfluxWriter | SqliteSeriesStore:
    """The writer a deployment configures: InfluxDB when a URL is given, else the embedded store."""
    if influx_url:
        return InfluxWriter(influx_url, token, org, bucket, max_buffer=max_buffer, hold_s=hold_s)
    return SqliteSeriesStore(sqlite_path, retention_days=retention_days, max_buffer=max_buffer, hold_s=hold_s)


__all__ = [
    "ALARM_MEASUREMENT", "BOOLEAN_METRICS", "DEVICE_KINDS", "DEVICE_TAGS", "EVENT_MEASUREMENT",
    "INSPECTION_MEASUREMENT", "DeviceMeta", "InfluxWriter", "PointIn", "Sample", "SqliteSeriesStore",
    "TimeSeriesWriter", "WriterStats", "alarm_point", "dew_point_c", "event_point",
    "inspection_point", "open_writer", "point_to_line", "reading_fields", "reading_point",
    "reading_to_line", "schema", "to_ms",
]
