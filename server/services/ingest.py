"""Ingest: validate, de-duplicate by (edge, seq), evaluate rules, apply alarms, store, then ack.

The MQTT thread only hands messages to `Ingest.submit`; one worker thread drains the inbox in
batches. For each drain, everything the messages caused (alarm changes, audit rows, dead letters,
sequence state) is committed in ONE transaction, and only then are the messages acknowledged to the
broker. A crash before the commit means the broker delivers them again, and the persisted sequence
state makes the replay idempotent: nothing is lost and nothing is applied twice.

Order. Readings and events come in separate messages (telemetry, events), so the rule engine gets a
drain's readings and events merged in time order (`_Pending`), not message by message: a door's
"open" reading that reached the server before the badge grant that came first (an older edge sent
each flush's readings before its events) is still applied after the grant. At the same instant a
badge or request-to-exit goes first: an access panel authorises, then the door moves. What comes in
a later drain is applied then; door.forced_open's grant tolerance covers an open reported just before
its grant across drains (server/domain/rules/doors.py). Status messages and calls from other threads
apply what is pending first, so they see everything that came before them.

Back-pressure: a drain's readings go to the time-series store after its alarm changes have committed
(a page never waits for history). When the store's buffer is full, `series.write_readings` holds this
thread (see `server.adapters.timeseries`), so no checkpoint and no ack happens meanwhile; the client's unacked
messages reach the broker's Receive Maximum and the broker keeps the rest in its queue. A point is
dropped only once the store wrote nothing for its `hold_s`, so that a dead store cannot stall the alarms,
and then `sup.series_dropped` is raised with the count.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import TypeVar

from sqlalchemy.exc import OperationalError

from gateway import contract
from gateway.mqtt import Incoming
from server.domain.dead_letters import DeadLetter
from server.domain.device_meta import DeviceMeta
from server.domain.findings import Finding, Transition
from server.domain.leases import LeaseLost
from server.domain.rules import RuleEngine, electrical
from server.domain.sequence import SequenceTracker, Verdict
from server.domain.site import Site
from server.services.alarms import AlarmService
from server.services.live import LiveState
from server.services.ports import SeriesSink

log = logging.getLogger(__name__)

B = TypeVar("B", contract.TelemetryBatch, contract.EventBatch)
MESSAGE_LOSS_RULE = "sup.message_loss"
SERIES_DROPPED_RULE = "sup.series_dropped"
SERIES_SUBJECT = "timeseries"
DEAD_LETTER_PAYLOAD_CAP = 8192
CHECKPOINT_SHARE = 10.0
"""A checkpoint comes at most every `CHECKPOINT_SHARE` times its own duration (<= ~10 % of the thread)."""
CHECKPOINT_MAX_S = 10.0


@dataclass(slots=True)
class IngestStats:
    messages: int = 0
    readings: int = 0
    events: int = 0
    duplicates: int = 0
    late: int = 0
    invalid: int = 0
    unknown_devices: int = 0
    edge_decode_errors: int = 0
    """Vendor payloads the edges could not decode, as their decode_error events count them."""
    stale_readings: int = 0
    future_readings: int = 0
    lost: int = 0
    drains: int = 0
    sql_retries: int = 0
    last_drain_ms: float = 0.0
    checkpoints: int = 0
    checkpoint_rows: int = 0
    """Rule-engine rows written or deleted by all checkpoints (only what changed since the one before)."""
    last_checkpoint_rows: int = 0
    unknown_device_ids: set[str] = field(default_factory=set)


class ReasonLog:
    """Logs a bad-input reason at most once per source per minute (contract-v1.md §4)."""

    def __init__(self, every: timedelta = timedelta(minutes=1)) -> None:
        self.every = every
        self._last: dict[str, datetime] = {}
        self.suppressed = 0

    def warn(self, source: str, reason: str, now: datetime) -> None:
        last = self._last.get(source)
        if last is not None and now - last < self.every:
            self.suppressed += 1
            return
        self._last[source] = now
        log.warning("bad input from %s: %s", source, reason)


EngineCall = Callable[[RuleEngine, datetime], list[Finding]]
_BY_TIME = itemgetter(0, 1)
FIRST_AT_SAME_INSTANT = frozenset({contract.EventType.ACCESS_GRANTED, contract.EventType.REQUEST_TO_EXIT})
"""Events applied before anything else of the same instant (the authorisation precedes the door moving)."""


@dataclass(slots=True)
class _Pending:
    """A drain's readings and events waiting for the rule engine, applied in time order, and its readings
    waiting for the time-series store (written after the drain's alarms commit: see `Ingest.process`)."""

    items: list[tuple[datetime, int, contract.Reading | contract.Event]] = field(default_factory=list)
    events: bool = False
    series: list[list[tuple[contract.Reading, DeviceMeta]]] = field(default_factory=list)
    """Per message: the writer's hold waits until one message's points fit, never a whole drain's."""
    event_series: list[list[tuple[contract.Event, DeviceMeta]]] = field(default_factory=list)
    """Per message, the events of known devices (the boards' `event` measurement)."""

    # Times past `now` count as `now`, as the rule engine counts them (a device clock is never trusted ahead).
    def reading(self, reading: contract.Reading, now: datetime) -> None:
        self.items.append((min(reading.ts, now), 1, reading))

    def event(self, event: contract.Event, now: datetime) -> None:
        rank = 0 if event.type in FIRST_AT_SAME_INSTANT else 1
        self.items.append((min(event.ts, now), rank, event))
        self.events = True

    def take(self) -> list[contract.Reading | contract.Event]:
        """Everything pending, by (time, badge first at the same instant), else in arrival order (the
        sort is stable); then empty. Readings alone keep their arrival order: only an event (a grant
        before the door state it explains) needs the merge, and the sort costs on a drain of readings."""
        items, self.items = self.items, []
        if self.events:
            items.sort(key=_BY_TIME)
            self.events = False
        return [item[2] for item in items]


@dataclass(slots=True)
class _Call:
    """A request from another thread to give the rule engine an input (see `Ingest.call`)."""

    fn: EngineCall
    done: Future[list[Finding]]


class Ingest:
    """Owns the rule engine: only the ingest worker thread touches it.

    Other threads (API handlers, the response services) give the engine inputs through `call(fn)`:
    `fn(engine, now)` runs ON the ingest thread, between drains, its findings are committed with that
    drain's transaction (alarm listeners hear of them after the commit, as for readings), and the
    caller gets the findings back, or the exception `fn` raised (e.g. PermissionError from all_clear).
    `fn` reaches a device's state only through `engine.ctx.devices[...]` / `.get` (never `dict.get` on it,
    never a `DeviceState` kept from an earlier call): the checkpoint re-dumps only the devices looked up.
    """

    def __init__(
        self,
        site: Site,
        engine: RuleEngine,
        alarms: AlarmService,
        series: SeriesSink,
        live: LiveState,
        *,
        clock: Callable[[], datetime],
        ack: Callable[[Incoming], bool | None] = lambda _m: None,
        sequences: SequenceTracker | None = None,
        max_age: timedelta = timedelta(hours=24),
        max_future: timedelta = timedelta(minutes=2),
        on_command_result: Callable[[str, contract.CommandResult], None] | None = None,
        on_interlock: Callable[[str, contract.Event], None] | None = None,
        tick_s: float = 1.0,
        snapshot_s: float = 1.0,
    ) -> None:
        self.site = site
        self.engine = engine
        self.alarms = alarms
        self.series = series
        self.live = live
        self.clock = clock
        self.ack = ack
        """Acknowledges a message a checkpoint covers; False: not yet (an event batch whose badge events are
        not in the access log yet), and the next checkpoint asks again."""
        self.sequences = sequences or SequenceTracker()
        self.max_age = max_age
        self.max_future = max_future
        self.on_command_result = on_command_result
        self.on_interlock = on_interlock
        """An edge's interlock switched a plug off by itself: the relay guard must know (CommandService)."""
        self.tick_s = tick_s
        """How often timers run (holds that ran out with no new reading, supervision, gaps)."""
        self.snapshot_s = snapshot_s
        """How often the rule engine's pending state is saved (at most; with the drain's commit)."""
        self._last_snapshot = 0.0
        self._checkpoint_s = 0.0
        """How long the last checkpoint (snapshot + commit) took."""
        self._dirty = False
        self._series_dropped = 0
        """The writer's drop count when it was last looked at (at a tick)."""
        # an alarm raised before a restart is still open: it clears here once the store takes points again
        self._series_alarm = any(a.rule == SERIES_DROPPED_RULE and a.condition_active for a in alarms.open_alarms())
        self._unacked: list[Incoming] = []
        self._stopping = False
        self.fenced = False
        """The partition's lease was lost: this ingest stopped and commits nothing more."""
        self.stats = IngestStats()
        self.reasons = ReasonLog()
        self._inbox: queue.SimpleQueue[Incoming | _Call | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._meta = {
            d.id: DeviceMeta(site=site.id, zone=d.zone, kind=d.kind.value, floor=site.floor_of(d), rated_a=d.rated_a)
            for d in site.devices.values()
        }

    # -- hand-off from the MQTT thread -----------------------------------------------------------

    def submit(self, message: Incoming) -> None:
        self._inbox.put(message)

    def call(self, fn: EngineCall, timeout: float = 10.0) -> list[Finding]:
        """Run `fn(engine, now)` on the ingest thread and commit its findings; thread-safe.

        If the worker is not running (tests that drive `process` by hand), `fn` runs on the caller's
        thread and is committed at once: there is then no other thread touching the engine."""
        if self.fenced:
            raise LeaseLost("this worker no longer owns the partition")
        if self._worker is None or threading.current_thread() is self._worker:
            findings = fn(self.engine, self.clock())
            self._dirty = True  # `fn` changed the engine: the next tick's checkpoint must cover it
            self.alarms.commit(findings, self.clock())
            return findings
        item = _Call(fn, Future())
        self._inbox.put(item)
        if self.fenced:  # fenced while this call was on its way in: nobody drains the inbox any more
            self._fail_calls()
        return item.done.result(timeout)

    def run_between_drains(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the ingest thread, between drains: where alarm listeners normally run."""
        def call(_engine: RuleEngine, _now: datetime) -> list[Finding]:
            fn()
            return []

        self.call(call, timeout=120)

    def _fail_calls(self) -> None:
        """After the lease is lost: callers waiting on `call` get LeaseLost instead of a timeout."""
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Call):
                item.done.set_exception(LeaseLost("this worker no longer owns the partition"))

    def start(self) -> None:
        self._worker = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._stopping = True
        if self._worker is not None:
            self._inbox.put(None)
            self._worker.join(10)
            self._worker = None

    def _run(self) -> None:
        next_tick = time.monotonic()
        while True:
            timeout = max(0.0, next_tick - time.monotonic())
            batch: list[Incoming | _Call] = []
            try:
                first = self._inbox.get(timeout=timeout)
                if first is None:
                    return
                batch.append(first)
                while len(batch) < 500:
                    item = self._inbox.get_nowait()
                    if item is None:
                        self.process(batch)
                        return
                    batch.append(item)
            except queue.Empty:
                pass
            tick = time.monotonic() >= next_tick
            if tick:
                next_tick = time.monotonic() + self.tick_s
            try:
                self.process(batch, tick=tick)
            except LeaseLost:
                # Another worker owns the partition now and gets everything unacknowledged from the broker.
                log.error("ingest stops: the partition's lease is lost; %d messages stay unacknowledged",
                          len(self._unacked) + len(batch))
                self.fenced = True
                self._fail_calls()
                return
            except Exception:  # the consumer must never stop; what failed is redelivered (no ack)
                log.exception("ingest drain failed; %d messages stay unacknowledged", len(batch))
                time.sleep(1)

    # -- one drain -------------------------------------------------------------------------------

    def process(self, messages: Iterable[Incoming | _Call], *, tick: bool = False) -> None:
        drain = list(messages)
        try:
            self._process(drain, tick)
        except BaseException as exc:
            self._dirty = True  # the engine may have taken inputs that no checkpoint covers yet
            # Every call this drain took from the inbox gets the drain's failure (LeaseLost from a command
            # result's fence, say): its caller answers at once instead of waiting out its timeout.
            for item in drain:
                if isinstance(item, _Call) and not item.done.done():
                    item.done.set_exception(exc)
            raise

    def _process(self, messages: list[Incoming | _Call], tick: bool) -> None:
        started = time.perf_counter()
        now = self.clock()
        findings: list[Finding] = []
        dead: list[DeadLetter] = []
        handled: list[Incoming] = []
        calls: list[tuple[_Call, list[Finding] | BaseException]] = []
        pending = _Pending()
        for message in messages:
            if isinstance(message, _Call):
                findings += self._apply(pending, now)
                # No full re-dump: every fn reaches device state through `ctx.devices`, which records it
                # (tests/server/domain/test_call_checkpoint.py holds every kind of call to that).
                try:
                    made = message.fn(self.engine, now)
                except Exception as exc:  # handed back to the caller, never stops the consumer
                    calls.append((message, exc))
                else:
                    findings += made
                    calls.append((message, made))
                continue
            handled.append(message)
            self.stats.messages += 1
            try:
                findings += self._one(message, now, dead, pending)
            except contract.ContractError as exc:
                self._dead(dead, message.topic, _source(message.topic), str(exc), message.payload, now)
        findings += self._apply(pending, now)
        if tick:
            findings += self.engine.tick(now)
            findings += self._series_watch(now)
            for loss in self.sequences.expire(now):
                self.stats.lost += loss.count
                findings.append(self._loss_finding(loss.edge, loss.count, loss.first_seq, loss.last_seq, now))
        # The rule engine's state and the sequence state are saved together, about once a second (less
        # often on a site so large that saving takes over a tenth of that, see `_every`),
        # and messages are acknowledged only once a save covers them: after a crash the broker
        # redelivers exactly what the restored state has not seen (alarms themselves commit at once).
        self._unacked.extend(handled)
        self._dirty = self._dirty or bool(handled or findings or calls)
        checkpoint = bool(calls) or (tick and self._dirty and time.monotonic() - self._last_snapshot >= self._every())
        if pending.series or pending.event_series:
            # A full series buffer holds this thread (back-pressure): the drain's alarm changes commit
            # first, so that a page never waits for history; the checkpoint, and so the ack, waits.
            if findings or dead:
                self._commit(findings, now, dead, False)
                findings, dead = [], []
            for stored in pending.series:
                self.series.write_readings(stored)
            for events in pending.event_series:
                self.series.write_events(events)
        committing = time.monotonic()
        if checkpoint:
            # Cleared before the commit: an alarm listener's engine call during it (after the delta) sets it again.
            self._dirty = False
        self._commit(findings, now, dead, checkpoint)
        for call, outcome in calls:
            if isinstance(outcome, BaseException):
                call.done.set_exception(outcome)
            else:
                call.done.set_result(outcome)
        if checkpoint:
            self._last_snapshot = time.monotonic()
            self._checkpoint_s = self._last_snapshot - committing
            self._unacked = [message for message in self._unacked if self.ack(message) is False]
            self._dirty = self._dirty or bool(self._unacked)  # the next tick's checkpoint asks again
        if tick:
            try:
                self.alarms.end_shelves(now)
            except Exception:  # retried at the next tick; never redeliver a drain that committed
                log.exception("ending due shelves failed; retried at the next tick")
        self.stats.drains += 1
        self.stats.last_drain_ms = (time.perf_counter() - started) * 1000

    def _every(self) -> float:
        """Seconds between checkpoints: `snapshot_s`, stretched so that saving the state (which grows
        with the site) takes at most ~1/CHECKPOINT_SHARE of the ingest thread, capped at CHECKPOINT_MAX_S.
        A longer interval only widens what the broker redelivers after a crash (acks wait for it)."""
        return max(self.snapshot_s, min(CHECKPOINT_MAX_S, self._checkpoint_s * CHECKPOINT_SHARE))

    def _commit(self, findings: list[Finding], now: datetime, dead: list[DeadLetter], checkpoint: bool) -> None:
        """Commit, retrying while the database is unreachable: ingest then waits (the broker keeps
        queueing) rather than dropping an alarm change it has already decided on."""
        delay = 0.5
        while True:
            try:
                delta = self.engine.delta() if checkpoint else None
                self.alarms.commit(findings, now, dead_letters=dead,
                                   sequences=self.sequences.snapshot() if checkpoint else None,
                                   engine_state=delta)
                if delta is not None:  # committed: the baseline of the next checkpoint's delta
                    self.engine.saved(delta)
                    self.stats.checkpoints += 1
                    self.stats.last_checkpoint_rows = self.alarms.rule_rows_written
                    self.stats.checkpoint_rows += self.alarms.rule_rows_written
                if delay > 0.5:
                    log.warning("database reachable again; ingest resumes")
                return
            except OperationalError as exc:
                if self._stopping:
                    raise
                if delay == 0.5:
                    log.error("database unreachable (%s); ingest holds its alarm changes and retries",
                              type(exc.orig).__name__ if exc.orig else exc)
                self.stats.sql_retries += 1
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _one(self, message: Incoming, now: datetime, dead: list[DeadLetter], pending: _Pending) -> list[Finding]:
        route = contract.parse_topic(message.topic)
        if route.channel is contract.Channel.TELEMETRY:
            self._telemetry(route, message, now, dead, pending)
            return []
        if route.channel is contract.Channel.EVENTS:
            return self._events(route, message, now, dead, pending)
        if route.channel is contract.Channel.STATUS:
            status = contract.decode_payload(contract.EdgeStatus, message.payload)
            return self._apply(pending, now) + self._status(route, status, now)
        if route.channel is contract.Channel.COMMAND_RESULT:
            result = contract.decode_payload(contract.CommandResult, message.payload)
            if self.on_command_result is not None and route.edge is not None:
                self.on_command_result(route.edge, result)
            return []
        return []  # our own outbound channels echoed back to us: nothing to do

    def _accept(self, route: contract.Route, edge: str, seq: int, now: datetime) -> bool:
        if route.edge != edge:
            raise contract.ContractError(f"payload edge {edge!r} does not match topic edge {route.edge!r}")
        verdict = self.sequences.observe(edge, seq, now)
        if verdict is Verdict.DUPLICATE:
            self.stats.duplicates += 1
            return False
        if verdict is Verdict.LATE:
            self.stats.late += 1
        return True

    def _batch(self, model: type[B], route: contract.Route, message: Incoming, now: datetime,
               dead: list[DeadLetter]) -> B | None:
        """Decode a batch, drop it if its seq was applied before, dead-letter its bad items; the valid
        items, or None when nothing is left to apply."""
        partial = contract.decode_batch(model, message.payload)
        if not self._accept(route, partial.edge, partial.seq, now):
            return None
        for bad in partial.rejected:
            self._dead(dead, message.topic, partial.edge, bad.reason, bad.raw, now)
        return partial.batch

    def _apply(self, pending: _Pending, now: datetime) -> list[Finding]:
        """Give the rule engine what is pending, in time order."""
        findings: list[Finding] = []
        for item in pending.take():
            if isinstance(item, contract.Reading):
                self.live.reading(item.device, item.ts, item.metrics, now)
                findings += self.engine.on_reading(item.device, item.ts, item.metrics, now)
            else:
                online = {contract.EventType.DEVICE_OFFLINE: False,
                          contract.EventType.DEVICE_ONLINE: True}.get(item.type)
                self.live.event(item.device, item.type.value, now, online)
                findings += self.engine.on_event(item, now)
        return findings

    def _telemetry(self, route: contract.Route, message: Incoming, now: datetime,
                   dead: list[DeadLetter], pending: _Pending) -> None:
        batch = self._batch(contract.TelemetryBatch, route, message, now, dead)
        if batch is None:
            return
        stored: list[tuple[contract.Reading, DeviceMeta]] = []
        for reading in batch.readings:
            meta = self._meta.get(reading.device)
            if meta is None:
                self._unknown(dead, message.topic, batch.edge, reading.device, reading, now)
                continue
            ts = reading.ts
            if ts - now > self.max_future:
                # A device clock far ahead: keep the value at its arrival time, say so once a minute.
                self.stats.future_readings += 1
                self.reasons.warn(reading.device, f"timestamp {ts.isoformat()} is in the future", now)
                reading = reading.model_copy(update={"ts": now})
                ts = now
            stored.append((reading, meta))
            self.stats.readings += 1
            if now - ts > self.max_age:
                self.stats.stale_readings += 1  # history, not news: store it, evaluate nothing
                continue
            pending.reading(reading, now)
        if stored:
            pending.series.append(stored)

    def _events(self, route: contract.Route, message: Incoming, now: datetime,
                dead: list[DeadLetter], pending: _Pending) -> list[Finding]:
        batch = self._batch(contract.EventBatch, route, message, now, dead)
        if batch is None:
            return []
        findings: list[Finding] = []
        known = [(event, meta) for event in batch.events if (meta := self._meta.get(event.device)) is not None]
        if known:
            pending.event_series.append(known)
        for event in batch.events:
            if event.type is contract.EventType.UNKNOWN_DEVICE:
                # Unknown by definition: not a dead letter but the finding the edge reports.
                self.stats.events += 1
                findings.append(electrical.unknown_device(self.site.id, batch.edge, event.device, event.detail,
                                                          min(event.ts, now)))
                continue
            if event.type is contract.EventType.DECODE_ERROR:
                # The edge could not decode a device's payload: shown with the dead letters.
                self.stats.events += 1
                self.stats.edge_decode_errors += 1 + (event.count or 0)
                self._edge_decode_error(dead, batch.edge, event, now)
                continue
            if event.device not in self._meta and event.type is not contract.EventType.BUFFER_OVERFLOW:
                self._unknown(dead, message.topic, batch.edge, event.device, event, now)
                continue
            self.stats.events += 1
            if event.type in (contract.EventType.BRIDGE_OFFLINE, contract.EventType.BRIDGE_ONLINE):
                self.live.event(event.device, event.type.value, now, None)
                bridge, behind = _bridge_detail(event.detail, event.device)
                findings += self.engine.on_bridge(batch.edge, bridge, behind, event.count or len(behind),
                                                  event.type is contract.EventType.BRIDGE_ONLINE, now)
                continue
            if event.type is contract.EventType.BUFFER_OVERFLOW:
                self.live.event(event.device, event.type.value, now, None)
                # The edge itself dropped messages: as much a loss as a broker gap.
                findings.append(self._loss_finding(batch.edge, event.count or 0, None, None, now,
                                                   where="the edge's buffer overflowed"))
                continue
            if event.type is contract.EventType.INTERLOCK_TRIPPED and self.on_interlock is not None:
                self.on_interlock(batch.edge, event)
            pending.event(event, now)
        return findings

    def _status(self, route: contract.Route, status: contract.EdgeStatus, now: datetime) -> list[Finding]:
        if route.edge != status.edge:
            raise contract.ContractError(f"payload edge {status.edge!r} does not match topic edge {route.edge!r}")
        online = status.state is contract.EdgeState.ONLINE
        if online and status.last_seq is not None and self.sequences.rebase(status.edge, status.last_seq):
            log.warning("edge %s restarted its sequence at %d", status.edge, status.last_seq + 1)
        self.live.edge(status.edge, online, now)
        return self.engine.on_edge_status(status.edge, online, now)

    def _series_watch(self, now: datetime) -> list[Finding]:
        """Raise `sup.series_dropped` when the time-series writer dropped points since the last tick (the
        value is its running total); clear it once the store takes batches again and the buffer has room."""
        st = self.series.stats()
        new, self._series_dropped = st.dropped - self._series_dropped, st.dropped
        if new > 0:
            self._series_alarm = True
            return [Finding(
                rule=SERIES_DROPPED_RULE, transition=Transition.RAISE, severity=contract.Severity.MAJOR,
                subject=SERIES_SUBJECT, zone=None, site=self.site.id, value=float(st.dropped),
                message=(f"{st.dropped} time-series points dropped ({new} since the last check): the buffer of "
                         f"{st.max_buffer} points was full and the store wrote nothing for too long; "
                         f"history has a hole, alarms go on ({st.last_error or 'no error reported'})"),
                message_zh=f"时序数据丢弃 {st.dropped} 个点:缓冲区已满且存储长时间无写入", ts=now)]
        if self._series_alarm and not st.stalled and st.buffered < st.max_buffer:
            self._series_alarm = False
            return [Finding(
                rule=SERIES_DROPPED_RULE, transition=Transition.CLEAR, severity=contract.Severity.MAJOR,
                subject=SERIES_SUBJECT, zone=None, site=self.site.id, value=float(st.dropped),
                message="the time-series store takes points again", ts=now)]
        return []

    def _loss_finding(self, edge: str, count: int, first: int | None, last: int | None, now: datetime,
                      where: str = "a gap in seq that did not fill") -> Finding:
        span = f" (seq {first}..{last})" if first is not None else ""
        return Finding(
            rule=MESSAGE_LOSS_RULE, transition=Transition.RAISE, severity=contract.Severity.MAJOR,
            subject=edge, zone=None, site=self.site.id, value=float(count),
            message=f"{count} messages from edge {edge} were lost{span}: {where}",
            message_zh=f"边缘网关 {edge} 丢失 {count} 条消息", ts=now,
        )

    def _unknown(self, dead: list[DeadLetter], topic: str, edge: str, device: str, item: object,
                 now: datetime) -> None:
        self.stats.unknown_devices += 1
        if device not in self.stats.unknown_device_ids and len(self.stats.unknown_device_ids) < 10_000:
            self.stats.unknown_device_ids.add(device)
            payload = item.model_dump_json() if isinstance(item, contract._Payload) else str(item)
            self._dead(dead, topic, edge, f"unknown device {device!r}: not in the site file", payload, now,
                       count_invalid=False)

    def _edge_decode_error(self, dead: list[DeadLetter], edge: str, event: contract.Event, now: datetime) -> None:
        try:
            sample = json.loads(event.detail or "{}")
        except ValueError:
            sample = {}
        if not isinstance(sample, dict):
            sample = {}
        more = f" ({event.count} more in the minute before)" if event.count else ""
        reason = f"edge {edge} could not decode {event.device}: {sample.get('reason', '?')}{more}"
        self._dead(dead, str(sample.get("topic", ""))[:300], edge, reason, str(sample.get("payload", "")), now,
                   count_invalid=False)

    def _dead(self, dead: list[DeadLetter], topic: str, source: str, reason: str, raw: object, now: datetime,
              count_invalid: bool = True) -> None:
        if count_invalid:
            self.stats.invalid += 1
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (
            raw if isinstance(raw, str) else _json(raw))
        dead.append(DeadLetter(now, topic, source, reason, text[:DEAD_LETTER_PAYLOAD_CAP]))
        self.reasons.warn(source, reason, now)


def _bridge_detail(detail: str | None, device: str) -> tuple[str, list[str]]:
    """(bridge, devices) from a bridge event's detail JSON; at least the event's own device."""
    try:
        data = json.loads(detail or "{}")
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    bridge = data.get("bridge")
    listed = data.get("devices")
    devices = [d for d in listed if isinstance(d, str)] if isinstance(listed, list) else []
    return (bridge[:200] if isinstance(bridge, str) and bridge else "zigbee2mqtt"), devices or [device]


def _source(topic: str) -> str:
    try:
        route = contract.parse_topic(topic)
    except contract.ContractError:
        return topic[:128]
    return route.edge or route.site


def _json(value: object) -> str:
    import json

    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)
