"""Canonical telemetry for the benchmark: pre-encoded MQTT PUBLISH packets of `TelemetryBatch`es on the
edges' real topics with consecutive seqs per edge, sent on a raw socket (simulators.load.RawConnection)
so that the generator costs little next to what it measures. QoS 1, as edges publish telemetry."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from benchmarks.floor import Floor
from gateway import contract
from gateway.mqtt import MqttSettings
from simulators.load import PUBLISH, RawConnection, _str, _varint

MAX_INFLIGHT = 20_000
"""QoS 1 packets sent and not yet PUBACKed before the sender waits (packet ids stay unique)."""

_METRICS: dict[str, Callable[[int], dict[str, float | bool]]] = {
    "smart_plug": lambda i: {"power_w": 40.0 + i % 50, "current_a": round(0.2 + (i % 50) / 250, 3),
                             "voltage_v": 220.0 + i % 3, "relay_on": True},
    "strip_meter": lambda i: {"power_w": 300.0 + i % 200, "current_a": round(1.4 + (i % 200) / 220, 3),
                              "voltage_v": 221.0, "energy_wh": 1000.0 + i},
    "temp_sensor": lambda i: {"temperature_c": 23.0 + (i % 10) / 10, "humidity_pct": 45.0, "battery_pct": 90.0},
}
"""Normal readings of the kinds that report telemetry all day; values below every threshold."""


def _now_text() -> str:
    return contract.format_time(datetime.now(UTC))


def packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    head = _str(topic) + struct.pack("!H", packet_id)
    return bytes([PUBLISH << 4 | 1 << 1]) + _varint(len(head) + len(payload)) + head + payload


@dataclass
class Stream:
    """Messages ready to send: (topic, payload) and how many readings each carries."""

    floor: Floor
    batch: int
    seqs: dict[str, int] = field(default_factory=dict)
    _cursor: dict[str, int] = field(default_factory=dict)

    def telemetry(self, count: int, ts: str | None = None) -> list[tuple[str, bytes]]:
        """`count` batches of `batch` normal readings, round-robin over edges and their devices."""
        ts = ts or _now_text()
        edges = [(e, [d for d in devs if d[1] in _METRICS]) for e, devs in sorted(self.floor.by_edge.items())]
        edges = [(e, devs) for e, devs in edges if devs]
        out: list[tuple[str, bytes]] = []
        for n in range(count):
            edge, devs = edges[n % len(edges)]
            cursor = self._cursor.get(edge, 0)
            readings: list[dict[str, object]] = []
            for k in range(self.batch):
                dev, kind = devs[(cursor + k) % len(devs)]
                readings.append({"device": dev, "ts": ts, "metrics": _METRICS[kind](cursor + k)})
            self._cursor[edge] = cursor + self.batch
            out.append(self._message(edge, readings, ts))
        return out

    def smoke(self, device: str, edge: str) -> tuple[str, bytes]:
        """One single-reading batch that crosses a threshold: smoke on a floor detector (fire.smoke_alarm)."""
        ts = _now_text()
        return self._message(edge, [{"device": device, "ts": ts, "metrics": {"smoke": True}}], ts)

    def _message(self, edge: str, readings: list[dict[str, object]], ts: str) -> tuple[str, bytes]:
        seq = self.seqs.get(edge, 0) + 1
        self.seqs[edge] = seq
        body = {"v": 1, "edge": edge, "seq": seq, "sent_at": ts, "readings": readings}
        topic = contract.edge_topic(self.floor.site_id, edge, contract.Channel.TELEMETRY)
        return topic, json.dumps(body, separators=(",", ":")).encode()


@dataclass
class SendResult:
    sent: int
    acked: int
    first_t: float
    last_t: float
    marks: dict[int, float]
    """index of a marked message -> time.time() just before its packet was written to the socket."""

    @property
    def rate(self) -> float:
        return self.sent / max(self.last_t - self.first_t, 1e-9)


def send(settings: MqttSettings, messages: list[tuple[str, bytes]], *, rate: float | None = None,
         marks: set[int] | None = None, timeout_s: float = 120.0, client_id: str = "bench-load") -> SendResult:
    """Publish QoS 1, as fast as the broker takes them (rate None) or paced at `rate` messages/s in 5 ms
    slices. Waits (bounded) for every PUBACK. Marked indexes get their send instant recorded."""
    conn = RawConnection(settings, client_id)
    marks = marks or set()
    got: dict[int, float] = {}
    chunk = 200 if rate is None else max(1, int(rate * 0.005))
    deadline = time.monotonic() + timeout_s
    packets = [packet(t, p, (j % 65535) + 1) for j, (t, p) in enumerate(messages)]
    try:
        first = time.time()
        start = time.perf_counter()
        i = 0
        while i < len(messages) and time.monotonic() < deadline:
            while i - conn.acked >= MAX_INFLIGHT and time.monotonic() < deadline:
                time.sleep(0.0005)
            if rate is not None:
                ahead = start + i / rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
            end = min(i + chunk, len(messages), conn.acked + MAX_INFLIGHT)
            # before the write: a server that handles the packet while send() returns must not get a
            # publish instant later than its own receipt (a negative latency)
            now = time.time()
            conn.send(b"".join(packets[i:end]))
            for j in range(i, end):
                if j in marks:
                    got[j] = now
            i = end
        last = time.time()
        while conn.acked < i and time.monotonic() < deadline:
            time.sleep(0.001)
        return SendResult(i, conn.acked, first, last, got)
    finally:
        conn.close()
