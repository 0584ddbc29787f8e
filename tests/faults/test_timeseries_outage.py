"""Fault 4 (issue 9): the time-series server is gone for 60 s while readings flow and an alarm is raised.

tests/server/adapters/timeseries measures the InfluxWriter alone (a short outage, no ingest). Here the real server
(`server.cli server`, its own process) writes to a real InfluxDB v2 write API (VictoriaMetrics, started
by the test) with its production writer (`FLOORWATCH_INFLUX__URL`), 50 readings/s arrive over MQTT
(five strips, each reading's power_w a per-strip counter), VictoriaMetrics is stopped (SIGTERM) for
60 s, an overload begins inside that window, and VictoriaMetrics comes back on the same port and data.

Asserted: ingest and alarms go on during the outage (the applied-readings counter keeps up with what
was published; the overload alarm is raised while the store is down); afterwards every reading is in
the store exactly once (points lost below the buffer bound = 0; the writer's drop counter is 0).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway import contract
from gateway.broker import EmbeddedBroker
from gateway.mqtt import MqttClient
from tests.faults.conftest import Record
from tests.server.adapters.timeseries.services import VictoriaMetrics
from tests.support.server import ServerProcess
from tests.support.wait import wait_until

OUTAGE_S = 60.0
STRIPS = [f"strip-t-{i}" for i in range(5)]
HOT = STRIPS[0]
OVERLOAD_AFTER_S = 10.0
TOKEN = "faults-ts-token"
SITE = f"""
site: {{id: tsfault, name: Series fault floor, timezone: Asia/Shanghai}}
floors: [{{id: f1, name: 1F}}]
zones: [{{id: z1, name: Zone 1, floor: f1, kind: office}}]
devices:
{chr(10).join(f"  - {{id: {s}, kind: strip_meter, zone: z1, edge: edge-ts, rated_a: 10}}" for s in STRIPS)}
thresholds:
  devices:
    {HOT}:
      elec.strip_overload: {{major_hold_s: 5, critical_hold_s: 3600, surge_ratio: 5.0}}
"""


class Edge:
    """Speaks for edge-ts: every 0.1 s one batch with a reading of each strip (50 readings/s)."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self.client = MqttClient(broker.client_settings(), "fault-ts-edge")
        self.client.start()
        assert self.client.wait_connected(10)
        self.topic = contract.edge_topic("tsfault", "edge-ts", contract.Channel.TELEMETRY)
        self.seq = 0
        self.produced = 0
        self.hot = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = datetime.now(UTC).replace(microsecond=0)
        began = time.monotonic()
        while not self.stop.is_set():
            ts = start + timedelta(milliseconds=100 * self.seq)  # distinct ms per point
            self.client.publish_payload(self.topic, contract.TelemetryBatch(
                edge="edge-ts", seq=self.seq, sent_at=datetime.now(UTC), readings=[
                    contract.Reading(device=s, ts=ts, metrics={
                        "power_w": float(self.seq), "current_a": 13.0 if s == HOT and self.hot.is_set() else 1.0})
                    for s in STRIPS]))
            self.seq += 1
            self.produced += len(STRIPS)
            ahead = began + self.seq * 0.1 - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)


def test_timeseries_server_down_60s_loses_no_point_while_ingest_and_alarms_go_on(
    mosquitto: EmbeddedBroker, victoria_metrics: VictoriaMetrics, tmp_path: Path, record: Record,
) -> None:
    (tmp_path / "site.yaml").write_text(SITE)
    server = ServerProcess(mosquitto.client_settings(), tmp_path / "server", tmp_path / "site.yaml", TOKEN,
                           env={"FLOORWATCH_INFLUX__URL": victoria_metrics.url})
    server.start()
    edge = Edge(mosquitto)

    def applied() -> int:
        return int(server.health()["ingest"]["readings"])

    try:
        edge.thread.start()
        assert wait_until(lambda: victoria_metrics.export(f'strip_meter_power_w{{device="{HOT}"}}'), 30, 0.5), \
            "no point reached the store before the outage"
        victoria_metrics.stop()
        down_at = time.monotonic()
        assert wait_until(lambda: not server.health()["dependencies"]["timeseries"]["up"], 30, 0.2), \
            "health never reported the store down"
        wait_until(lambda: time.monotonic() - down_at >= OVERLOAD_AFTER_S, OVERLOAD_AFTER_S + 1, 0.1)
        edge.hot.set()
        alarm = wait_until(lambda: server.alarms("elec.strip_overload"), 30, 0.2)
        alarm_after_down_s = time.monotonic() - down_at
        wait_until(lambda: time.monotonic() - down_at >= OUTAGE_S, OUTAGE_S + 1, 0.2)
        produced_in_outage = edge.produced
        behind = produced_in_outage - applied()  # what ingest had not applied at the end of the outage
        # Ingest does not wait for the store: it applies all that was published while the store is still down.
        ingest_kept_up = wait_until(lambda: applied() >= produced_in_outage, 30, 0.2)
        buffered_peak = server.health()["dependencies"]["timeseries"]["buffered"]
        victoria_metrics.start()
        up_at = time.monotonic()
        outage_s = up_at - down_at

        time.sleep(2)  # the scenario: the floor goes on reporting for 2 s after the store is back
        edge.stop.set()
        edge.thread.join(5)
        produced = edge.produced
        assert wait_until(lambda: applied() >= produced, 30, 0.2)
        assert wait_until(lambda: server.health()["dependencies"]["timeseries"]["buffered"] == 0, 60, 0.2)
        drained_s = time.monotonic() - up_at

        def exported() -> dict[str, Any]:
            return {s: victoria_metrics.export(f'strip_meter_power_w{{device="{s}"}}') for s in STRIPS}

        def complete(points: dict[str, Any]) -> bool:
            return all(len({v for series in points[s].values() for v in series.values()}) >= edge.seq
                       for s in STRIPS)

        # the last drain's points may still be on their way into the store (and its index): read until
        # every value is there or 30 s passed; what is missing then is counted as lost below
        wait_until(lambda: complete(exported()), 30, 0.5)
        store = server.health()["dependencies"]["timeseries"]
        points = exported()
    finally:
        edge.stop.set()
        edge.client.stop()
        server.stop()

    values = {s: sorted(v for series in points[s].values() for v in series.values()) for s in STRIPS}
    expected = [float(n) for n in range(edge.seq)]
    lost = {s: len(set(expected) - set(values[s])) for s in STRIPS}
    repeated = {s: len(values[s]) - len(set(values[s])) for s in STRIPS}
    figures = {
        "outage_s": round(outage_s, 1), "readings_per_s": 10 * len(STRIPS), "produced": produced,
        "produced_during_outage_window": produced_in_outage, "ingest_behind_at_outage_end": behind,
        "writer_buffered_at_outage_end": buffered_peak, "buffer_bound": 200_000,
        "points_lost": sum(lost.values()), "points_repeated": sum(repeated.values()),
        "writer_dropped": store["dropped"], "alarm_raised_after_store_down_s": round(alarm_after_down_s, 1),
        "buffer_drained_after_return_s": round(drained_s, 1),
    }
    record("timeseries-outage", figures)

    assert outage_s >= OUTAGE_S
    assert alarm and alarm[0]["state"] == "active", "the overload alarm was not raised during the outage"
    assert alarm_after_down_s < outage_s, "the alarm came only after the store returned"
    assert ingest_kept_up, "ingest stalled while the store was down"
    assert buffered_peak > 0, "the writer buffered nothing: the outage was not felt"
    assert lost == dict.fromkeys(STRIPS, 0), f"points lost: {lost}"
    assert repeated == dict.fromkeys(STRIPS, 0), f"points stored twice: {repeated}"
    assert store["dropped"] == 0
