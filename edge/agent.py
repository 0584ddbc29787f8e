"""The edge agent: vendor messages in from the floor broker, canonical batches out to the uplink.

Threads:
- paho's network threads (one per broker) run the MQTT callbacks, which only put messages on
  `_inbox` (EXAMPLES.md 4: the MQTT thread only hands off);
- one worker thread does everything else in order: decoding, supervision, interlocks, batching,
  writing the outbox, publishing from it, acknowledgements and commands. One thread means no locks
  around the state, and the order of the outbox is the order things happened.

Delivery: every outgoing message is committed to the SQLite outbox before it is published; it is
deleted when the broker acknowledges it (QoS 1 PUBACK via `on_published`). At most `window` messages
are handed to paho at a time; paho re-sends those itself after a reconnect (same mid), and the worker
carries on after the last one it handed over, so nothing is sent twice by us and nothing is skipped.
After a restart everything still in the outbox is sent again, in order, with its original seq.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from edge import __version__
from edge.batching import Batcher, is_urgent
from edge.commands import CommandTracker, RateLimitedLog, load_keys
from edge.config import EdgeConfig, Vendor
from edge.drivers import DecodeError, Driver, UnsupportedCommand, Zigbee2MqttDriver, build_drivers
from edge.drivers.base import Metrics
from edge.interlocks import PlugOverloadInterlock, SmokeSirenInterlock, Sound, Trip
from edge.outbox import Outbox
from edge.supervision import Change, Supervisor
from gateway import contract, signing
from gateway.contract import (
    Action,
    Channel,
    Command,
    CommandResult,
    ContractError,
    EdgeState,
    EdgeStatus,
    Event,
    EventBatch,
    EventType,
    Reading,
    TelemetryBatch,
)
from gateway.mqtt import Incoming, MqttClient, Will, topic_matches

log = logging.getLogger(__name__)

_AVAILABILITY = {EventType.DEVICE_ONLINE: True, EventType.DEVICE_OFFLINE: False}
BatchItem = TypeVar("BatchItem", Reading, Event)
MAX_UNKNOWN_REPORTS = 1000
"""A floor broker full of strangers (a misconfigured shared broker) still costs a bounded memory."""
FLOOR_SESSION_EXPIRY_S = 300
REDELIVERY_WINDOW_S = 10.0
REFUSED_RETRY_S = 30.0
"""How often one message the broker refused is offered again on the same connection (e.g. its ACL was fixed)."""
"""After the floor connection returns: how late a device's QoS 1 copy can come (its reconnect back-off)."""
"""How long the floor broker keeps the edge's session while it is away (MQTT 5; see `start`)."""


def unknown_device_id(vendor: Vendor, address: str) -> str:
    """A contract device id for a vendor address that may hold capitals or other characters
    (tasmota_7C2E4F → tasmota.tasmota_7c2e4f); the exact address goes in the event's detail."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", address.lower()).strip("-._")
    return f"{vendor.value}.{cleaned}"[:64] if cleaned else f"{vendor.value}.unnamed"


DECODE_ERROR_PAYLOAD_BYTES = 64
"""How much of an undecodable payload goes upstream: enough to recognise it, little enough to be cheap."""


def decode_error_event(device: str, topic: str, reason: str, payload: bytes, ts: datetime,
                       suppressed: int) -> Event:
    sample = payload[:DECODE_ERROR_PAYLOAD_BYTES].decode("utf-8", "replace")
    for cut in (150, 60, 20):  # escapes (quotes, control bytes) can make the JSON overshoot: keep it whole
        detail = json.dumps({"topic": topic[:cut], "reason": reason[:cut], "payload": sample[:cut]},
                            ensure_ascii=False)
        if len(detail) <= 500:
            break
    return Event(device=device, ts=ts, type=EventType.DECODE_ERROR, count=suppressed, detail=detail)


class Clock(Protocol):
    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class EdgeAgent:
    """`start()` connects and returns; `stop()` drains and disconnects; `run_forever()` for the CLI."""

    def __init__(
        self,
        config: EdgeConfig,
        *,
        clock: Clock | None = None,
        version: str = __version__,
        window: int | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.version = version
        self.window = window or min(config.uplink.max_inflight, 500)
        """How many queued messages may wait for a PUBACK at once."""
        self.refused_retry_s = REFUSED_RETRY_S
        self.decode_errors = 0
        self.command_keys = load_keys(config.commands)
        """Current then previous command key; empty: commands are unsigned (broker ACL only)."""
        self.client_id = f"fw-edge-{config.edge}"
        self.drivers: dict[Vendor, Driver] = build_drivers(
            config.devices, client_id=self.client_id, discover=config.supervision.report_unknown_devices
        )
        self._unknown: set[tuple[Vendor, str]] = set()
        """Unconfigured devices reported in this run (each once; bounded by MAX_UNKNOWN_REPORTS)."""
        z2m = self.drivers.get(Vendor.ZIGBEE2MQTT)
        if isinstance(z2m, Zigbee2MqttDriver):
            z2m.siren_duration_s = config.interlocks.smoke_siren.duration_s  # the siren's own timer
        self._routes: list[tuple[str, Driver]] = [
            (f, d) for d in self.drivers.values() for f in d.topic_filters()
        ]
        self._discovery: list[tuple[str, Driver]] = [
            (f, d) for d in self.drivers.values() for f in d.discovery_filters()
        ]
        self._route_cache: dict[str, Driver | None] = {}
        self._last_payload: dict[str, int] = {}
        """Per topic: hash of the last device payload, to spot a QoS 1 redelivery after a reconnect."""
        self._floor_up_at = float("-inf")
        self._floor_connected_before = False
        self._topics = {ch: contract.edge_topic(config.site, config.edge, ch) for ch in Channel}
        self._inbox: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._stopped = threading.Event()
        self._worker: threading.Thread | None = None
        self.outbox: Outbox | None = None
        self.uplink: MqttClient | None = None
        self.floor: MqttClient | None = None
        self.discovery: MqttClient | None = None
        """A clean session at QoS 0 for the drivers' discovery filters: the broker queues nothing of it."""

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        config = self.config
        now = self.clock.monotonic()
        self.outbox = Outbox(config.buffer.path, config.buffer.max_messages)
        self.batcher = Batcher(config.batch.max_readings, config.batch.max_age_ms / 1000)
        self.supervisor = Supervisor(config.devices, config.supervision.silent_after_intervals, now)
        self.overload = PlugOverloadInterlock(config.interlocks.plug_overload, config.devices)
        self.smoke_siren = SmokeSirenInterlock(config.interlocks.smoke_siren, config.devices)
        self.tracker = CommandTracker(config.commands.confirm_timeout_s)
        self._errors = RateLimitedLog(60.0)
        self._inflight: dict[int, int] = {}  # mid -> outbox row id
        self._acked: list[int] = []
        self._cursor = 0  # last outbox row id handed to paho on this run
        self._refused: set[int] = set()  # outbox row ids the broker refused (kept on disk, not deleted)
        self._probe: int | None = None  # mid of the refused row offered again to see if the broker takes it now
        self._next_refused_retry = now + self.refused_retry_s
        self._uplink_up = False
        self._next_status = now
        self._next_supervision = now + 1.0
        self._next_prune = now
        self._draining_until: float | None = None
        self._killed = False
        offline = EdgeStatus(
            edge=config.edge, state=EdgeState.OFFLINE, ts=self.clock.now(), version=self.version
        )
        self.uplink = MqttClient(
            config.uplink,
            f"{self.client_id}-uplink",
            on_message=lambda m: self._inbox.put(("command", m.payload)),
            on_connection=lambda up: self._inbox.put(("uplink", up)),
            on_published=lambda mid: self._inbox.put(("ack", mid)),
            on_refused=lambda mid, reason: self._inbox.put(("refused", mid)),
            credentials_from="uplink.username and uplink.password of the edge file",
            will=Will(self._topics[Channel.STATUS], contract.encode(offline), qos=1, retain=True),
            persistent_session=True,  # commands sent during a short blip are still delivered
        )
        self.uplink.subscribe(self._topics[Channel.COMMANDS], 1)
        # A persistent floor session: the broker keeps our subscriptions and queues what devices publish
        # while we reconnect (a broker restart, an edge restart), e.g. a detector alarm that a faster
        # Zigbee2MQTT republishes first. It expires after FLOOR_SESSION_EXPIRY_S: readings replayed
        # later than that would carry their arrival time and mislead more than they help.
        self.floor = MqttClient(
            config.floor_broker, f"{self.client_id}-floor", on_message=self._on_floor_message,
            on_connection=lambda up: self._inbox.put(("floor_link", up)),
            credentials_from="floor_broker.username and floor_broker.password of the edge file",
            persistent_session=True, session_expiry_s=FLOOR_SESSION_EXPIRY_S,
        )
        for topic_filter, _ in self._routes:
            self.floor.subscribe(topic_filter, 1)
        if self._discovery:
            # Strangers' traffic (bridge logging, every unconfigured device's state) on the persistent
            # session would fill the broker's bounded queue during a restart and push configured detectors'
            # messages out; on its own clean session at QoS 0 it is never queued.
            self.discovery = MqttClient(
                config.floor_broker, f"{self.client_id}-discover", on_message=self._on_discovery_message,
                credentials_from="floor_broker.username and floor_broker.password of the edge file",
            )
            for topic_filter, _ in self._discovery:
                self.discovery.subscribe(topic_filter, 0)
        self._worker = threading.Thread(target=self._run, name=f"edge-{config.edge}-worker", daemon=True)
        self._worker.start()
        self.uplink.start()
        self.floor.start()
        if self.discovery is not None:
            self.discovery.start()
        if self.command_keys:
            log.info("commands must be signed (key %s)", ", ".join(signing.key_id(k) for k in self.command_keys))
        else:
            log.warning("commands are unsigned: no commands.key_file, so the broker's ACL alone decides "
                        "who may command this edge")
        log.info(
            "edge %s/%s started: %d devices, %d vendor topic filters, %d messages buffered, next seq %d",
            config.site,
            config.edge,
            len(config.devices),
            len(self._routes),
            len(self.outbox),
            self.outbox.next_seq,
        )

    def stop(self, drain_s: float = 3.0) -> None:
        """Flush what is pending, wait up to `drain_s` for the broker to take the outbox, disconnect
        with a retained offline status (no Last Will: this is a clean stop)."""
        if self._worker is None:
            return
        if self.floor is not None:
            self.floor.stop()  # no new device messages while draining
        if self.discovery is not None:
            self.discovery.stop()
        self._inbox.put(("stop", drain_s))
        self._worker.join(drain_s + 10)
        if self.uplink is not None:
            status = self._status(EdgeState.OFFLINE)
            self.uplink.stop(final=(self._topics[Channel.STATUS], contract.encode(status), 1, True))
        if self.outbox is not None:
            self.outbox.close()
        self._worker = None
        self._stopped.set()

    def kill(self) -> None:
        """Stop as a crash would: no flush, no clean disconnect (the broker sends the Last Will)."""
        self._killed = True
        if self.uplink is not None:
            self.uplink.kill()
        if self.floor is not None:
            self.floor.kill()
        if self.discovery is not None:
            self.discovery.kill()
        self._inbox.put(("stop", 0.0))
        if self._worker is not None:
            self._worker.join(10)
        if self.outbox is not None:
            self.outbox.close()
        self._worker = None
        self._stopped.set()

    def run_forever(self) -> None:
        """Run until SIGINT or SIGTERM, then stop cleanly (started here unless `start` ran already)."""
        if self.outbox is None:
            self.start()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: self._stopped.set())
        self._stopped.wait()
        self._stopped.clear()
        self.stop()

    # -- callbacks (paho threads: hand off only) ---------------------------------------------------

    def _on_floor_message(self, message: Incoming) -> None:
        self._inbox.put(("floor", message.topic, message.payload, self.clock.now()))

    def _on_discovery_message(self, message: Incoming) -> None:
        self._inbox.put(("discovery", message.topic, message.payload, self.clock.now()))

    # -- the worker --------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            timeout = self._timeout()
            try:
                items = [self._inbox.get(timeout=timeout)]
            except queue.Empty:
                items = []
            while len(items) < 5000:
                try:
                    items.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            for item in items:
                try:
                    self._handle(item)
                except Exception:  # a bug in one message's handling must not stop the floor's safety
                    log.exception("edge worker failed on a %s message", item[0])
            if self._killed:
                return
            try:
                self._timers()
                self._flush_acks()
                self._pump()
            except Exception:
                log.exception("edge worker timers failed")
            if self._draining_until is not None and (
                (not len(self._require_outbox()) and not self._inflight)
                or self.clock.monotonic() >= self._draining_until
            ):
                return

    def _timeout(self) -> float:
        now = self.clock.monotonic()
        deadlines = [
            d
            for d in (
                self.batcher.deadline(),
                self.tracker.deadline(),
                self.overload.next_deadline(),
                self._next_supervision,
                self._next_status,
            )
            if d is not None
        ]
        wait = min(deadlines) - now if deadlines else 0.5
        return max(0.005, min(wait, 0.5))

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        if kind == "floor":
            self._on_device_message(item[1], item[2], item[3])
        elif kind == "discovery":
            self._on_discovery(item[1], item[2], item[3])
        elif kind == "ack":
            row_id = self._inflight.pop(item[1], None)
            if row_id is not None:
                self._acked.append(row_id)
                self._refused.discard(row_id)
            if item[1] == self._probe:  # the broker takes what it refused: send the rest of it now
                self._probe = None
                self._resend_refused()
        elif kind == "refused":
            # The broker dropped it (its ACL: this edge's id or user is not the one it allows): the row
            # stays in the outbox and its window slot is freed, so later messages (fire events too) still
            # go out. Refused rows are sent again on the next connection, and after a probe the broker
            # takes (_retry_refused).
            row_id = self._inflight.pop(item[1], None)
            if row_id is not None:
                self._refused.add(row_id)
            if item[1] == self._probe:
                self._probe = None
        elif kind == "uplink":
            self._uplink_up = bool(item[1])
            self._probe = None  # its PUBACK, if any, came on the connection that ended
            if self._uplink_up:
                self._next_status = self.clock.monotonic()  # say we are online right away
                self._resend_refused()
        elif kind == "floor_link":
            if item[1] and self._floor_connected_before:  # a reconnect: devices may send copies now
                self._floor_up_at = self.clock.monotonic()
            self._floor_connected_before |= bool(item[1])
        elif kind == "command":
            self._on_command(item[1])
        elif kind == "stop":
            self._flush_batches()
            for pending in self.tracker.expired(float("inf")):
                self._answer(
                    pending.command,
                    ok=False,
                    error="edge stopped before the device confirmed",
                    reported=pending.last or None,
                )
            self._draining_until = self.clock.monotonic() + float(item[1])

    # -- device messages ---------------------------------------------------------------------------

    def _driver_for(self, topic: str) -> Driver | None:
        if topic not in self._route_cache:
            self._route_cache[topic] = next((d for f, d in self._routes if topic_matches(f, topic)), None)
        return self._route_cache[topic]

    def _on_device_message(self, topic: str, payload: bytes, received: datetime) -> None:
        driver = self._driver_for(topic)
        if driver is None:
            return
        now = self.clock.monotonic()
        if self._redelivered(topic, payload, now):
            for device in driver.devices_at(topic):  # it was heard, all the same
                change = self.supervisor.seen(device, now)
                if change is not None:
                    self._change(change, received)
            return
        if driver.discover:
            address = driver.announced(topic, payload)
            if address is not None:
                self._report_unknown(driver.vendor, address, topic, received)
                return
        try:
            items = driver.decode(topic, payload, received)
        except DecodeError as exc:
            self._decode_error(driver, topic, exc.reason, exc.device, now, payload, received)
            return
        except Exception as exc:  # e.g. a value the contract rejects: counted like any bad payload
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            self._decode_error(driver, topic, reason, None, now, payload, received)
            return
        for item in items:
            if isinstance(item, Event):
                online = _AVAILABILITY.get(item.type)
                if online is None:
                    self._event(item)
                else:
                    change = self.supervisor.availability(item.device, online, now, item.detail or "")
                    if change is not None:
                        self._change(change, item.ts)
            else:
                self._reading(item, now)

    def _decode_error(self, driver: Driver, topic: str, reason: str, device: str | None, now: float,
                      payload: bytes, received: datetime) -> None:
        self.decode_errors += 1
        key = device or next(iter(driver.devices_at(topic)), topic)
        if self._errors.allow(key, now):
            more = self._errors.take_suppressed(key)
            log.warning(
                "cannot decode %s message for %s on %s: %s%s",
                driver.vendor.value,
                key,
                topic,
                reason,
                f" ({more} more in the last minute)" if more else "",
            )
            # The same once-a-minute sample goes upstream, where the server keeps it with its dead letters.
            self._event(decode_error_event(key if key != topic else self.config.edge, topic, reason, payload,
                                           received, more))

    def _reading(self, reading: Reading, now: float) -> None:
        change = self.supervisor.seen(reading.device, now)
        if change is not None:
            self._change(change, reading.ts)
        if self.batcher.add_reading(reading, now):
            self._flush_batches()
        trip = self.overload.observe(reading.device, reading.metrics, now)
        if trip is not None:
            self._trip(trip)
        for sound in self.smoke_siren.observe(reading.device, reading.metrics, now):
            self._sound(sound)
        for command, metrics in self.tracker.observe(reading):
            self._answer(command, ok=True, reported=metrics)

    def _change(self, change: Change, ts: datetime) -> None:
        self._event(Event(device=change.device, ts=ts, type=change.type, detail=change.detail[:500]))

    def _redelivered(self, topic: str, payload: bytes, now: float) -> bool:
        """A device's QoS 1 is at least once: after a broker restart it sends again what the broker took
        but never acknowledged, and a subscriber can't see the DUP flag of the device's hop. So in the
        first REDELIVERY_WINDOW_S after our floor connection comes back, the same bytes again on a topic
        are taken as that copy and applied once. Outside that window nothing is dropped: a device that
        repeats an identical heartbeat is heard every time."""
        key = hash(payload)
        last = self._last_payload.get(topic)
        self._last_payload[topic] = key
        return last == key and now - self._floor_up_at < REDELIVERY_WINDOW_S

    def _on_discovery(self, topic: str, payload: bytes, received: datetime) -> None:
        """Only strangers' announcements: a configured device's messages come on the floor session."""
        driver = next((d for f, d in self._discovery if topic_matches(f, topic)), None)
        if driver is None:
            return
        address = driver.announced(topic, payload)
        if address is not None:
            self._report_unknown(driver.vendor, address, topic, received)

    def _report_unknown(self, vendor: Vendor, address: str, topic: str, received: datetime) -> None:
        """An unconfigured device came online on the floor broker: say so upstream, once per run."""
        key = (vendor, address)
        if key in self._unknown or len(self._unknown) >= MAX_UNKNOWN_REPORTS:
            return
        self._unknown.add(key)
        log.warning("unconfigured %s device %r announced itself on %s", vendor.value, address, topic)
        self._event(Event(
            device=unknown_device_id(vendor, address),
            ts=received,
            type=EventType.UNKNOWN_DEVICE,
            detail=f"{vendor.value} device {address!r} announced itself on {topic[:300]}; "
                   "it is in no configuration of this edge",
        ))

    def _event(self, event: Event) -> None:
        if is_urgent(event):
            self._flush_batches()  # what happened before goes first
            self._emit_events([event])
        elif self.batcher.add_event(event, self.clock.monotonic()):
            self._flush_batches()

    # -- local interlocks --------------------------------------------------------------------------

    def _local_command(self, device_id: str, action: Action, reason: str) -> bool:
        device = self.config.device(device_id)
        driver = self.drivers.get(device.vendor) if device is not None else None
        if device is None or driver is None or self.floor is None:
            return False
        now = self.clock.now()
        command = Command(
            id=f"local-{uuid.uuid4().hex[:16]}",
            device=device_id,
            action=action,
            reason=reason,
            issued_at=now,
            expires_at=now + timedelta(minutes=1),
        )
        try:
            topic, payload = driver.encode(command)
        except UnsupportedCommand as exc:
            log.error("local interlock cannot %s %s: %s", action.value, device_id, exc)
            return False
        self.floor.publish(topic, payload, qos=1)
        return True

    def _trip(self, trip: Trip) -> None:
        sent = self._local_command(trip.device, Action.RELAY_OFF, "edge interlock: plug overload")
        log.warning(
            "interlock: %s drew %.2f A (limit %.2f A) for %.0f s: relay off %s",
            trip.device,
            trip.current_a,
            trip.limit_a,
            trip.held_s,
            "sent" if sent else "NOT sent",
        )
        detail = trip.describe() if sent else f"{trip.describe()} FAILED: no driver can switch it"
        self._event(
            Event(
                device=trip.device, ts=self.clock.now(), type=EventType.INTERLOCK_TRIPPED, detail=detail[:500]
            )
        )

    def _sound(self, sound: Sound) -> None:
        sent = self._local_command(sound.siren, Action.SIREN_ON, f"edge interlock: smoke at {sound.detector}")
        log.warning(
            "interlock: smoke at %s: siren %s %s", sound.detector, sound.siren, "on" if sent else "NOT on"
        )
        detail = (
            f"siren sounded for smoke at {sound.detector}" if sent else f"siren FAILED for {sound.detector}"
        )
        self._event(
            Event(device=sound.siren, ts=self.clock.now(), type=EventType.INTERLOCK_TRIPPED, detail=detail)
        )

    # -- commands from the server ------------------------------------------------------------------

    def _on_command(self, payload: bytes) -> None:
        try:
            command = contract.decode_payload(Command, payload)
        except ContractError as exc:
            log.warning("refused an invalid command: %s", exc)
            return
        if self.command_keys:
            why = signing.refusal(command, self.command_keys)
            if why is not None:
                # Checked before the replay ledger: a forged message changes nothing here, not even the
                # ledger (its id stays free for the server's real command). The log names key ids only.
                log.warning("refused command %s (%s %s): bad signature: %s",
                            command.id, command.action.value, command.device, why)
                self._answer(command, ok=False, error="bad_signature")
                return
        outbox = self._require_outbox()
        if not outbox.remember_command(command.id, self.clock.now().timestamp()):
            # Answered once already: a replay (or a redelivery) is neither run nor answered again.
            log.warning(
                "command %s for %s was already handled: refused as a replay", command.id, command.device
            )
            return
        if command.expired(self.clock.now()):
            self._answer(command, ok=False, error="expired")
            return
        device = self.config.device(command.device)
        driver = self.drivers.get(device.vendor) if device is not None else None
        if device is None or driver is None or self.floor is None:
            self._answer(command, ok=False, error=f"unknown device {command.device}")
            return
        try:
            topic, vendor_payload = driver.encode(command)
        except UnsupportedCommand as exc:
            self._answer(command, ok=False, error=str(exc)[:500])
            return
        log.info("command %s: %s %s (%s)", command.id, command.action.value, command.device, command.reason)
        self.floor.publish(topic, vendor_payload, qos=1)
        self.tracker.expect(command, self.clock.monotonic())

    def _answer(
        self, command: Command, *, ok: bool, error: str | None = None, reported: Metrics | None = None
    ) -> None:
        result = CommandResult(
            id=command.id,
            ok=ok,
            ts=self.clock.now(),
            error=error,
            device=command.device,
            reported=reported or None,
        )
        if self.command_keys:  # the server knows the answer is ours: signed with the key it signed with
            named = signing.signature_key_id(command.sig)
            key = next((k for k in self.command_keys if signing.key_id(k) == named), self.command_keys[0])
            result = signing.signed(result, key)
        delivery = contract.DELIVERY[Channel.COMMAND_RESULT]
        self._require_outbox().append(
            self._topics[Channel.COMMAND_RESULT], contract.encode(result), delivery.qos, delivery.retain
        )

    # -- outgoing ----------------------------------------------------------------------------------

    def _require_outbox(self) -> Outbox:
        assert self.outbox is not None, "start() first"
        return self.outbox

    def _flush_batches(self) -> None:
        # Segment by segment, events before readings: each device's items keep their order (batching.py).
        size = self.config.batch.max_readings
        for segment in self.batcher.take():
            for start in range(0, len(segment.events), size):
                self._emit_events(segment.events[start : start + size])
            for start in range(0, len(segment.readings), size):
                self._emit_readings(segment.readings[start : start + size])

    def _emit(self, channel: Channel, make: Callable[[int], contract._Payload], *, trim: bool = True) -> None:
        delivery = contract.DELIVERY[channel]
        topic = self._topics[channel]
        self._require_outbox().append_with_seq(
            lambda seq: (topic, contract.encode(make(seq)), delivery.qos, delivery.retain), trim=trim
        )

    def _emit_readings(self, readings: list[Reading]) -> None:
        self._emit_split(
            Channel.TELEMETRY,
            readings,
            lambda seq, part: TelemetryBatch(edge=self.config.edge, seq=seq, sent_at=self.clock.now(), readings=part),
        )

    def _emit_events(self, events: list[Event]) -> None:
        self._emit_split(
            Channel.EVENTS,
            events,
            lambda seq, part: EventBatch(edge=self.config.edge, seq=seq, sent_at=self.clock.now(), events=part),
        )

    def _emit_split(
        self, channel: Channel, items: list[BatchItem], batch: Callable[[int, list[BatchItem]], contract._Payload]
    ) -> None:
        """`items` in one batch, or halved until each part fits the payload size limit."""
        try:
            self._emit(channel, lambda seq: batch(seq, items))
        except ContractError:
            if len(items) < 2:
                raise
            half = len(items) // 2
            self._emit_split(channel, items[:half], batch)
            self._emit_split(channel, items[half:], batch)

    def _status(self, state: EdgeState) -> EdgeStatus:
        outbox = self.outbox
        return EdgeStatus(
            edge=self.config.edge,
            state=state,
            ts=self.clock.now(),
            version=self.version,
            buffered=len(outbox) if outbox is not None else 0,
            decode_errors=self.decode_errors,
            last_seq=outbox.last_seq if outbox is not None else None,
        )

    def _timers(self) -> None:
        now = self.clock.monotonic()
        if self.batcher.due(now):
            self._flush_batches()
        for trip in self.overload.tick(now):
            self._trip(trip)
        for sound in self.smoke_siren.tick(now):
            self._sound(sound)
        if now >= self._next_supervision:
            self._next_supervision = now + 1.0
            for change in self.supervisor.tick(now):
                self._change(change, self.clock.now())
        for pending in self.tracker.expired(now):
            self._answer(
                pending.command, ok=False, error="no confirmation from device", reported=pending.last or None
            )
        outbox = self._require_outbox()
        if self._uplink_up:
            dropped = outbox.take_dropped()
            if dropped:
                log.warning(
                    "outbox bound of %d messages hit: %d oldest dropped", outbox.max_messages, dropped
                )
                self._flush_batches()
                overflow = Event(
                    device=self._edge_device_id(),
                    ts=self.clock.now(),
                    type=EventType.BUFFER_OVERFLOW,
                    count=dropped,
                    detail=f"{dropped} oldest queued messages dropped at the bound of {outbox.max_messages}",
                )
                self._emit(
                    Channel.EVENTS,
                    lambda seq: EventBatch(
                        edge=self.config.edge, seq=seq, sent_at=self.clock.now(), events=[overflow]
                    ),
                    trim=False,
                )
            if now >= self._next_status and self.uplink is not None:
                self._next_status = now + self.config.supervision.status_interval_s
                self.uplink.publish_payload(self._topics[Channel.STATUS], self._status(EdgeState.ONLINE))
            if now >= self._next_refused_retry:
                self._next_refused_retry = now + self.refused_retry_s
                self._retry_refused()
        if now >= self._next_prune:
            self._next_prune = now + 3600
            outbox.forget_commands_before(self.clock.now().timestamp() - 7 * 24 * 3600)

    def _edge_device_id(self) -> str:
        # Edge-level events name the edge itself as the device (edge ids are valid device ids).
        return self.config.edge

    def _flush_acks(self) -> None:
        if self._acked:
            self._require_outbox().remove(self._acked)
            self._acked = []

    def _resend_refused(self) -> None:
        """Send what the broker refused again, from the oldest such row on (the server drops repeats by seq)."""
        if not self._refused:
            return
        self._cursor = min(min(self._refused) - 1, self._cursor)
        self._refused.clear()

    def _retry_refused(self) -> None:
        """Offer the oldest refused row alone: the rest follows only once the broker takes it, so a broker
        that still refuses gets one message per retry, not the whole backlog."""
        if not self._refused or self._probe is not None or self.uplink is None or len(self._inflight) >= self.window:
            return
        rows = self._require_outbox().after(min(self._refused) - 1, 1)
        if not rows:  # dropped at the outbox bound meanwhile
            self._refused.clear()
            return
        row = rows[0]
        self._refused = {r for r in self._refused if r >= row.id}
        self._probe = self.uplink.publish(row.topic, row.payload, row.qos, row.retain)
        self._inflight[self._probe] = row.id

    def _pump(self) -> None:
        if not self._uplink_up or self.uplink is None:
            return
        room = self.window - len(self._inflight)
        if room <= 0:
            return
        for row in self._require_outbox().after(self._cursor, room):
            mid = self.uplink.publish(row.topic, row.payload, row.qos, row.retain)
            self._inflight[mid] = row.id
            self._cursor = row.id
