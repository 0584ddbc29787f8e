# mypy: disable-error-code="no-untyped-call,arg-type"
"""Throughput to a real VictoriaMetrics: pre-serialised line protocol vs one influxdb-client Point per
reading. Run: `.venv/bin/python -m tests.server.adapters.timeseries.bench_write [N]` (needs victoria-metrics)."""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.contract import Reading
from server.adapters.timeseries import DeviceMeta, InfluxWriter, reading_to_line
from tests.server.adapters.timeseries.services import VictoriaMetrics, require_binary


def main(n: int = 200_000) -> None:
    from influxdb_client.client.influxdb_client import InfluxDBClient
    from influxdb_client.client.write.point import Point
    from influxdb_client.client.write_api import SYNCHRONOUS
    from influxdb_client.domain.write_precision import WritePrecision

    vm = VictoriaMetrics(require_binary("victoria-metrics", "victoria-metrics"), Path(tempfile.mkdtemp()))
    vm.start()
    try:
        base = datetime.now(UTC) - timedelta(hours=2)
        meta = [DeviceMeta("hq", f"f3-z{i % 8}", "smart_plug", "f3", rated_a=10.0) for i in range(8)]
        readings = [
            (Reading(device=f"plug-{i % 2000}", ts=base + timedelta(milliseconds=i),
                     metrics={"power_w": 100.0 + i % 50, "current_a": 0.5, "voltage_v": 221.0,
                              "relay_on": True}),
             meta[i % 8])
            for i in range(n)
        ]

        t = time.perf_counter()
        lines = [reading_to_line(r, m) for r, m in readings]
        serialise = time.perf_counter() - t
        print(f"serialise only: {n / serialise:,.0f} readings/s")

        w = InfluxWriter(vm.url, "", "o", "b", batch_size=5000, flush_interval_s=0.2)
        t = time.perf_counter()
        for i in range(0, n, 1000):
            w.write_readings(readings[i:i + 1000])
        assert w.flush(600)
        pre = time.perf_counter() - t
        w.close()
        print(f"InfluxWriter (pre-serialised, 5000-line batches): {n / pre:,.0f} readings/s end to end "
              f"({w.stats()})")

        client = InfluxDBClient(url=vm.url, token="", org="o")
        api = client.write_api(write_options=SYNCHRONOUS)
        t = time.perf_counter()
        for i in range(0, n, 5000):
            points = []
            for r, m in readings[i:i + 5000]:
                p = Point(m.kind).tag("site", m.site).tag("zone", m.zone).tag("device", r.device) \
                    .tag("kind", m.kind).tag("floor", m.floor)
                for k, v in r.metrics.items():
                    p = p.field(k, v)
                points.append(p.time(r.ts, WritePrecision.MS))
            api.write("b", "o", points, write_precision=WritePrecision.MS)
        point_s = time.perf_counter() - t
        print(f"influxdb-client Point objects (5000 per call): {n / point_s:,.0f} readings/s")

        t = time.perf_counter()
        for i in range(0, n, 5000):
            points = []
            for r, m in readings[i:i + 5000]:
                p = Point(m.kind).tag("site", m.site).tag("zone", m.zone).tag("device", r.device) \
                    .tag("kind", m.kind).tag("floor", m.floor)
                for k, v in r.metrics.items():
                    p = p.field(k, v)
                points.append(p.time(r.ts, WritePrecision.MS))
        build_s = time.perf_counter() - t
        print(f"  of which building Points: {n / build_s:,.0f} readings/s")
        t = time.perf_counter()
        for i in range(0, n, 5000):
            api.write("b", "o", "\n".join(lines[i:i + 5000]), write_precision=WritePrecision.MS)
        raw = time.perf_counter() - t
        print(f"raw write_api with pre-serialised strings: {n / raw:,.0f} lines/s")
        client.close()
    finally:
        vm.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
