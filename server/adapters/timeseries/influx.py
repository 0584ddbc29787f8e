"""The buffered InfluxDB writer (line protocol over the v2 write endpoint) and its queries."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, cast

from gateway.contract import Event, Reading

if TYPE_CHECKING:
    import httpx
from server.adapters.timeseries.buffer import BufferedWriter, PartialWriteError, RejectedError, RetryableError
from server.adapters.timeseries.line_protocol import point_to_line, reading_to_line
from server.adapters.timeseries.points import PointIn, event_point, from_ms, to_ms
from server.adapters.timeseries.writer import Sample
from server.domain.device_meta import DeviceMeta


class InfluxWriter(BufferedWriter[str]):
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

    def write_events(self, events: Iterable[tuple[Event, DeviceMeta]]) -> None:
        self.write([event_point(e, m) for e, m in events])

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
            body = str(exc.body or exc.reason or "")
            partial = _partial_write(body)
            if partial is not None:  # the rest of the batch is stored
                refused, words = partial
                raise PartialWriteError(f"HTTP {status}: {words:.300}", min(refused, len(batch))) from exc
            raise RejectedError(f"HTTP {status}: {body:.300}") from exc

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


_PARTIAL = re.compile(r"partial write\b.*?\bdropped=(\d+)", re.DOTALL)
"""InfluxDB 1.x/2.x's partial write: its message ends with how many points it dropped; the others were written."""
_PARTIAL_V3 = "partial write of line protocol occurred"


def _partial_write(body: str) -> tuple[int, str] | None:
    """(points refused, words for the operator) of a partial write, or None for a batch refused whole.

    InfluxDB 1.x/2.x say "partial write: … dropped=N". InfluxDB 3.x answers 400 (422 for a schema limit)
    with `{"error": "partial write of line protocol occurred", "data": [{"original_line", "line_number",
    "error_message"}, …]}`: one entry per refused line, and no count."""
    legacy = _PARTIAL.search(body)
    if legacy is not None:
        return int(legacy.group(1)), body
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("error") != _PARTIAL_V3 or not isinstance(answer.get("data"), list):
        return None
    lines = [entry for entry in answer["data"] if isinstance(entry, dict)]
    numbers = {entry.get("line_number") for entry in lines}
    first = lines[0] if lines else {}
    words = f"{_PARTIAL_V3}: line {first.get('line_number', '?')}: {first.get('error_message', '')}"
    return max(len(numbers), 1), words


def influxql_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def influxql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
