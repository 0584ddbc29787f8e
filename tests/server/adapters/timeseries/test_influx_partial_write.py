"""An InfluxDB partial write: the store keeps the good points of a batch and refuses the others (a field
type conflict: an unknown metric a device sent as a number before and as a boolean now). InfluxDB 2.x answers
HTTP 422 with "partial write: … dropped=N" (docs.influxdata.com, v2 "Troubleshoot issues writing data": "Data
that has not been rejected is ingested and queryable"); InfluxDB 3.x answers 400 with the JSON
`{"error": "partial write of line protocol occurred", "data": [{"original_line", "line_number",
"error_message"}, …]}`, one entry per refused line and no count (docs.influxdata.com, InfluxDB 3 Core "Use the
v3 write_lp API", and the server's own tests). The writer must count the refused points rejected and the rest
written, retry nothing, and not call the store down: what /api/health and the boards show must be true.

Neither InfluxDB 2.x nor 3.x runs on this machine (Debian ships 1.6, without the v2 write endpoint), so the
store here is a small HTTP server on 127.0.0.1 that keeps field types per measurement as InfluxDB does and
answers as each version documents; the writer and its HTTP client are the real ones."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.contract import Reading
from server.adapters.timeseries import DeviceMeta, InfluxWriter

PLUG = DeviceMeta(site="hq", zone="f3-z2", kind="smart_plug", floor="f3", rated_a=10.0)


@dataclass
class Influx2:
    version: str = "2"
    port: int = 0
    stored: list[str] = field(default_factory=list)
    requests: int = 0
    types: dict[tuple[str, str], str] = field(default_factory=dict)

    def write(self, body: str) -> tuple[int, dict[str, Any]] | None:
        """Store the lines whose field types agree with what the bucket has; (status, body) of the answer
        when some were refused, as this version words it, else None."""
        refused: list[dict[str, Any]] = []
        for number, line in enumerate(body.split("\n"), start=1):
            if not line:
                continue
            measurement = line.split(",", 1)[0]
            fields = line.split(" ")[1].split(",")
            kinds = {f.split("=", 1)[0]: _kind(f.split("=", 1)[1]) for f in fields}
            clash = next((k for k, t in kinds.items() if self.types.get((measurement, k), t) != t), None)
            if clash is not None:
                had = self.types[(measurement, clash)]
                message = (f'field type conflict: input field "{clash}" on measurement "{measurement}" is '
                           f"type {kinds[clash]}, already exists as type {had}") if self.version == "2" else (
                    f"invalid column type for column '{clash}', expected iox::column_type::field::{had}, "
                    f"got iox::column_type::field::{kinds[clash]}")
                refused.append({"original_line": line, "line_number": number, "error_message": message})
                continue
            self.types.update({(measurement, k): t for k, t in kinds.items()})
            self.stored.append(line)
        if not refused:
            return None
        if self.version == "2":
            return 422, {"code": "unprocessable entity", "message": "failure writing points to database: partial "
                         f"write: {refused[0]['error_message']} dropped={len(refused)}"}
        return 400, {"error": "partial write of line protocol occurred", "data": refused}


def _kind(value: str) -> str:
    return "boolean" if value in ("true", "false") else "integer" if value.endswith("i") else "float"


@pytest.fixture(params=["2", "3"], ids=["influxdb2", "influxdb3"])
def influx2(request: pytest.FixtureRequest) -> Iterator[Influx2]:
    box = Influx2(version=request.param)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            with lock:
                box.requests += 1
                answer = box.write(body) if self.path.startswith("/api/v2/write") else (404, {"error": "not found"})
            if answer is None:
                self.send_response(204)
                self.end_headers()
                return
            status, reply = answer
            payload = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield box
    server.shutdown()
    server.server_close()


def test_a_partial_write_counts_the_refused_points_rejected_and_the_rest_written(influx2: Influx2) -> None:
    w = InfluxWriter(f"http://127.0.0.1:{influx2.port}", "t", "o", "b", batch_size=100, flush_interval_s=0.05,
                     backoff_initial_s=0.02, backoff_max_s=0.1, timeout_ms=2000)
    t0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    try:
        w.write_readings([(Reading(device="plug-1", ts=t0, metrics={"aux_state": 1.0}), PLUG)])
        assert w.flush(10)
        batch = [(Reading(device="plug-1", ts=t0 + timedelta(seconds=i), metrics={"power_w": float(i)}), PLUG)
                 for i in range(1, 10)]
        batch.insert(4, (Reading(device="plug-1", ts=t0 + timedelta(seconds=30), metrics={"aux_state": True}), PLUG))
        w.write_readings(batch)
        assert w.flush(10)
        st = w.stats()
    finally:
        w.close()
    assert len(influx2.stored) == 10, "the store kept the good points"
    assert (st.written, st.rejected, st.dropped, st.buffered) == (10, 1, 0, 0), st
    assert influx2.requests == 2, "a partial write is not retried"
    assert st.last_error is None, "the store took the batch: it is up"
    words = "field type conflict" if influx2.version == "2" else "invalid column type"
    assert st.last_rejection and words in st.last_rejection and "aux_state" in st.last_rejection, st.last_rejection
