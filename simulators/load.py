"""Load mode: N devices publishing at R readings per second in total, for the ingest benchmark.

    python -m simulators.cli --load --devices 2000 --rate 20000 --duration 30 [--qos 0|1] [--verify]

Why not gateway.mqtt here: paho costs one socketpair write and one threading.Condition per publish,
which caps a Python process near 18,000 messages/s. Load mode therefore pre-encodes every MQTT PUBLISH
packet (fixed header, topic, payload: real vendor payloads from simulators.vendors, a few variants per
device) and writes them in batches on a plain socket speaking the small subset of MQTT 3.1.1 it needs
(CONNECT, PUBLISH QoS 0/1, PUBACK, SUBSCRIBE, PINGREQ, DISCONNECT). It is a benchmark load generator,
not a client: everything that talks to Floorwatch itself goes through gateway.mqtt.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from gateway.mqtt import MqttSettings
from simulators.vendors import shelly, tasmota, zigbee2mqtt
from simulators.vendors.base import Publication

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = (
    1,
    2,
    3,
    4,
    8,
    9,
    12,
    13,
    14,
)
MAX_INFLIGHT = 20_000
"""QoS 1 packets sent but not acknowledged before the sender waits (packet ids must stay unique)."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str, username: str | None, keepalive: int, clean: bool = True) -> bytes:
    flags = (0x02 if clean else 0) | (0x80 if username else 0)
    body = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + _str(client_id)
    if username:
        body += _str(username)
    return bytes([CONNECT << 4]) + _varint(len(body)) + body


def publish_packet(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0, retain: bool = False) -> bytes:
    head = _str(topic) + (struct.pack("!H", packet_id) if qos else b"")
    return bytes([PUBLISH << 4 | qos << 1 | int(retain)]) + _varint(len(head) + len(payload)) + head + payload


@dataclass(slots=True)
class Template:
    """A pre-encoded PUBLISH split around its packet id, so QoS 1 only patches two bytes."""

    prefix: bytes
    suffix: bytes
    qos: int

    @classmethod
    def of(cls, pub: Publication, qos: int) -> Template:
        topic = _str(pub.topic)
        length = len(topic) + (2 if qos else 0) + len(pub.payload)
        prefix = bytes([PUBLISH << 4 | qos << 1]) + _varint(length) + topic
        return cls(prefix, pub.payload, qos)

    def encode(self, packet_id: int) -> bytes:
        if self.qos:
            return self.prefix + struct.pack("!H", packet_id) + self.suffix
        return self.prefix + self.suffix


class RawConnection:
    """One TCP connection to the broker; a reader thread counts PUBACKs and received PUBLISHes."""

    def __init__(self, settings: MqttSettings, client_id: str, keepalive: int = 60,
                 count_topics: frozenset[bytes] | None = None) -> None:
        self.count_topics = count_topics
        """Count only PUBLISHes on these topics (the run's own devices), not another publisher's; None: all."""
        self.sock = socket.create_connection((settings.host, settings.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id, settings.username, keepalive))
        ack = self._read_exact(4)
        if ack[0] >> 4 != CONNACK or ack[3] != 0:
            raise ConnectionError(f"broker refused the connection (CONNACK {ack.hex()})")
        self.sock.settimeout(None)
        self.acked = 0
        self.received = 0
        self.errors = 0
        self._next_id = 0
        self._lock = threading.Lock()
        self._closing = False
        self._reader = threading.Thread(target=self._read_loop, name=f"load-{client_id}", daemon=True)
        self._reader.start()

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    def _read_loop(self) -> None:
        buffer = bytearray()
        pubacks = bytearray()
        try:
            while True:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    return
                buffer += chunk
                pos = 0
                while True:
                    parsed = _packet_at(buffer, pos)
                    if parsed is None:
                        break
                    kind, flags, body_at, end = parsed
                    if kind == PUBACK:
                        self.acked += 1
                    elif kind == PUBLISH:
                        topic_len = struct.unpack_from("!H", buffer, body_at)[0]
                        if self.count_topics is None or bytes(
                                buffer[body_at + 2 : body_at + 2 + topic_len]) in self.count_topics:
                            self.received += 1
                        if (flags >> 1) & 3:
                            pid = buffer[body_at + 2 + topic_len : body_at + 4 + topic_len]
                            pubacks += bytes([PUBACK << 4, 2]) + pid
                    pos = end
                del buffer[:pos]
                if pubacks:
                    with self._lock:
                        self.sock.sendall(pubacks)
                    pubacks.clear()
        except OSError:
            if not self._closing:
                self.errors += 1

    def packet_ids(self) -> Iterator[int]:
        while True:
            self._next_id = self._next_id % 65535 + 1
            yield self._next_id

    def send(self, data: bytes) -> None:
        with self._lock:
            self.sock.sendall(data)

    def subscribe(self, topic_filter: str, qos: int) -> None:
        body = struct.pack("!H", 1) + _str(topic_filter) + bytes([qos])
        self.send(bytes([SUBSCRIBE << 4 | 2]) + _varint(len(body)) + body)

    def ping(self) -> None:
        self.send(bytes([PINGREQ << 4, 0]))

    def close(self) -> None:
        self._closing = True
        try:
            self.send(bytes([DISCONNECT << 4, 0]))
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._reader.join(2)


def _packet_at(buffer: bytearray, pos: int) -> tuple[int, int, int, int] | None:
    """(type, flags, body offset, end offset) of the complete packet at `pos`, or None if incomplete."""
    if pos >= len(buffer):
        return None
    first = buffer[pos]
    length, shift, i = 0, 0, pos + 1
    while True:
        if i >= len(buffer):
            return None
        byte = buffer[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            break
        shift += 7
    end = i + length
    if end > len(buffer):
        return None
    return first >> 4, first & 0x0F, i, end


# --------------------------------------------------------------------------------------------------
# Devices and their payload templates
# --------------------------------------------------------------------------------------------------


VARIANTS = 4
"""Payload variants per device: readings differ between messages, encoding cost stays out of the loop."""


def device_publications(devices: int, seed: int) -> list[list[Publication]]:
    """Real vendor payloads for `devices` devices (floor mix: ~55 % Shelly plugs, ~25 % Tasmota meters,
    ~20 % Zigbee2MQTT sensors), `VARIANTS` each."""
    rng = random.Random(f"load:{seed}")
    now = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    out: list[list[Publication]] = []
    for i in range(devices):
        roll = i % 20
        variants: list[Publication] = []
        for _ in range(VARIANTS):
            if roll < 11:
                power = rng.uniform(80, 300)
                state = shelly.SwitchState(
                    apower=power,
                    voltage=rng.uniform(218, 224),
                    current=power / 220 / 0.93,
                    total_wh=rng.uniform(1e3, 6e4),
                    minute_ts=int(now.timestamp()) // 60 * 60,
                    temp_c=rng.uniform(32, 40),
                )
                variants.append(shelly.encode_status(f"shellyplusplugs-load{i:06d}", state))
            elif roll < 16:
                power = rng.uniform(300, 1600)
                chan = tasmota.ChannelEnergy(
                    power_w=power, current_a=power / 220 / 0.92, total_kwh=rng.uniform(10, 900)
                )
                variants.append(
                    tasmota.encode_sensor(f"load-strip-{i:06d}", tasmota.TasmotaState(channels=[chan]), now)
                )
            else:
                z = zigbee2mqtt.ZigbeeState(
                    role="temp_humidity" if roll < 19 else "smoke",
                    temperature=rng.uniform(22, 26),
                    humidity=rng.uniform(40, 55),
                    battery=rng.uniform(40, 100),
                )
                variants.append(zigbee2mqtt.encode_state(f"load_sensor_{i:06d}", z))
        out.append(variants)
    return out


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    devices: int
    rate_target: float
    duration_s: float
    qos: int
    sent: int = 0
    acked: int = 0
    received: int | None = None
    elapsed_s: float = 0.0
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)

    @property
    def rate_achieved(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "devices": self.devices,
            "rate_target": self.rate_target,
            "duration_s": self.duration_s,
            "qos": self.qos,
            "sent": self.sent,
            "acked": self.acked if self.qos else None,
            "received": self.received,
            "elapsed_s": round(self.elapsed_s, 3),
            "rate_achieved": round(self.rate_achieved, 1),
            "errors": self.errors,
            "error_messages": self.error_messages[:5],
        }


def _bar(done: int, total: int, rate: float, errors: int, width: int = 30) -> str:
    frac = min(done / total, 1.0) if total else 1.0
    filled = int(frac * width)
    return (
        f"\r[{'#' * filled}{'.' * (width - filled)}] {frac:6.1%} {done:>10,}/{total:,} msgs "
        f"{rate:>9,.0f} msg/s  errors {errors}"
    )


def run_load(
    settings: MqttSettings,
    *,
    devices: int,
    rate: float,
    duration: float,
    qos: int = 0,
    connections: int = 1,
    verify: bool = False,
    seed: int = 1,
    progress: TextIO | None = None,
) -> LoadResult:
    """Publish `rate * duration` messages from `devices` devices, paced evenly; count what happened."""
    if devices < 1 or rate <= 0 or duration <= 0:
        raise ValueError("devices, rate and duration must be positive")
    total = round(rate * duration)
    result = LoadResult(devices, rate, duration, qos)
    publications = device_publications(devices, seed)
    templates = [[Template.of(p, qos) for p in variants] for variants in publications]
    order = [(d, v) for v in range(VARIANTS) for d in range(devices)]  # every device before any repeats
    subscriber: RawConnection | None = None
    if verify:
        # A floor may already be playing on the broker: its messages match the same filters, so only the
        # run's own topics are counted (received never exceeds sent because of someone else).
        own = frozenset(p.topic.encode() for variants in publications for p in variants)
        subscriber = RawConnection(settings, f"floorwatch-load-verify-{seed}", count_topics=own)
        for topic_filter in ("+/status/switch:0", "tele/+/SENSOR", "zigbee2mqtt/+"):
            subscriber.subscribe(topic_filter, qos)
        time.sleep(0.3)  # let the SUBACKs land before the first message
    conns = [RawConnection(settings, f"floorwatch-load-{seed}-{k}") for k in range(max(1, connections))]
    ids = [c.packet_ids() for c in conns]
    start = time.monotonic()
    last_bar = last_ping = start
    sent = 0
    batch_cap = max(1, int(rate / 200))  # ~5 ms worth of messages per write
    try:
        while sent < total:
            now = time.monotonic()
            due = min(total, int((now - start) * rate) + 1) - sent
            if due <= 0:
                time.sleep(min(0.002, (sent + 1) / rate - (now - start)))
                continue
            count = min(due, batch_cap)
            k = (sent // batch_cap) % len(conns)
            conn = conns[k]
            if qos:
                while sent - sum(c.acked for c in conns) > MAX_INFLIGHT:
                    time.sleep(0.001)
            chunk = b"".join(
                templates[d][v].encode(next(ids[k])) for d, v in (order[(sent + j) % len(order)] for j in range(count))
            )
            try:
                conn.send(chunk)
            except OSError as exc:
                result.errors += count
                result.error_messages.append(str(exc))
                break
            sent += count
            if now - last_ping > 20:
                for c in conns:
                    c.ping()
                last_ping = now
            if progress is not None and now - last_bar >= 0.25:
                progress.write(_bar(sent, total, sent / max(now - start, 1e-9), result.errors))
                progress.flush()
                last_bar = now
        result.elapsed_s = time.monotonic() - start
        result.sent = sent
        if qos:  # wait for the broker's acknowledgements (bounded)
            deadline = time.monotonic() + 10
            while sum(c.acked for c in conns) < sent and time.monotonic() < deadline:
                time.sleep(0.01)
        if subscriber is not None:
            deadline = time.monotonic() + 10
            previous = -1
            while subscriber.received < sent and time.monotonic() < deadline:
                if subscriber.received == previous and time.monotonic() > deadline - 8:
                    break  # nothing more is arriving
                previous = subscriber.received
                time.sleep(0.2)
            result.received = subscriber.received
    finally:
        result.acked = sum(c.acked for c in conns)
        result.errors += sum(c.errors for c in conns)
        for c in conns:
            c.close()
        if subscriber is not None:
            subscriber.close()
        if progress is not None:
            progress.write(_bar(result.sent, total, result.rate_achieved, result.errors) + "\n")
            progress.flush()
    return result


def main_load(
    settings: MqttSettings,
    *,
    devices: int,
    rate: float,
    duration: float,
    qos: int,
    connections: int,
    verify: bool,
    seed: int,
    progress: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    try:
        result = run_load(
            settings,
            devices=devices,
            rate=rate,
            duration=duration,
            qos=qos,
            connections=connections,
            verify=verify,
            seed=seed,
            progress=err if progress else None,
        )
    except (OSError, ConnectionError) as exc:
        print(f"load mode: cannot reach the broker at {settings.host}:{settings.port}: {exc}", file=err)
        return 3
    summary = result.as_dict()
    print(
        f"sent {result.sent:,} messages from {devices:,} devices in {result.elapsed_s:.2f} s: "
        f"{result.rate_achieved:,.0f} msg/s (target {rate:,.0f}); errors {result.errors}"
        + (f"; acked {result.acked:,}" if qos else "")
        + (f"; received {result.received:,}" if result.received is not None else ""),
        file=out,
    )
    print(json.dumps(summary), file=out)
    return 0 if result.errors == 0 else 1
