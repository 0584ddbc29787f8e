"""The access log that the roll call reads: every badge event (access granted, request to exit) of a
known person at a known door, as `access_log` rows (person ids, never badge numbers).

Its own thread writes it, off the ingest path. A message is acknowledged to the broker only once its
events are written (`recorded`, which the runtime's ack asks without waiting: a batch not written yet is
asked about again at ingest's next checkpoint, so a slow write never holds the rules), and a write
retries while the database is unreachable, so neither a crash nor an outage loses a badge event: the
broker hands an unacknowledged message over again, and the table's key (the event's identity) makes a
repeat add nothing, whether it reaches the same worker after a crash, the next owner after a takeover, or
an old owner that has not noticed the loss yet. Not fenced: an old owner's row is the same fact the next
owner writes. The evacuation's badge-in check after each write (`on_recorded`) is retried with it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from sqlalchemy.exc import InterfaceError, InternalError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gateway import contract
from gateway.mqtt import Incoming
from server.domain.evacuation import Access
from server.domain.site import Site
from server.services.ports import AccessLogStore

log = logging.getLogger(__name__)

ACCESS_EVENTS = {contract.EventType.ACCESS_GRANTED, contract.EventType.REQUEST_TO_EXIT}
RETRY_MAX_S = 5.0
RETRIED = (OperationalError, InterfaceError, InternalError, PoolTimeout)
"""What a database that is down, failing over (a read-only node) or out of connections raises: retried.
Anything else is a defect in this code, logged, and the batch is acknowledged (never held for ever)."""


class AccessLog:
    def __init__(self, store: AccessLogStore, site: Site) -> None:
        self.store = store
        self.site = site
        self._inbox: queue.SimpleQueue[Incoming | None] = queue.SimpleQueue()
        self._written: dict[int, threading.Event] = {}
        """id of an event batch handed in and not yet acknowledged -> set once its events are written. The
        message stays alive (ingest keeps it until its ack), so its id is not reused meanwhile."""
        self._stopping = threading.Event()
        self.refused = 0
        """Writes (or their `on_recorded` call) the database refused and that were retried."""
        self.retrying = False
        """A write is being retried now: the roll call may lack the newest badge events (health: degraded)."""
        self._thread: threading.Thread | None = None
        self.on_recorded: Callable[[list[Access]], None] | None = None
        """Told each batch's badge events once they are written (again for a batch handed over again): the
        evacuation's machine-room instruction to a person who badges in there (EvacuationService.on_access).
        A database error it raises (RETRIED) is retried with the write and holds the batch's ack, as a
        refused write does (its pushes' dedupe keys make a repeat send nothing twice)."""

    def submit(self, message: Incoming) -> None:
        """From the MQTT thread: keep event batches (cheap topic check only)."""
        if message.topic.endswith("/events"):
            self._written[id(message)] = threading.Event()
            self._inbox.put(message)

    def recorded(self, message: Incoming) -> bool:
        """Whether the message may be acknowledged as far as the access log goes (ingest thread, never
        waits): not an event batch, or its events are written. Until then it stays unacknowledged, so a
        crash or a stop leaves it with the broker, which hands it over again."""
        written = self._written.get(id(message))
        if written is None:
            return True
        if not written.is_set():
            return False
        del self._written[id(message)]
        return True

    def pending(self) -> int:
        """Event batches handed in whose events are not written yet."""
        return sum(not written.is_set() for written in list(self._written.values()))

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._inbox.put(None)
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while (message := self._inbox.get()) is not None:
            delay = 0.5
            while True:
                try:
                    self.record(message)
                    self.retrying = False
                    break
                except RETRIED as exc:
                    self.refused += 1
                    self.retrying = True
                    if self._stopping.is_set():
                        return  # unacknowledged: the broker hands it over again
                    log.error("access log: the database refused the write or the evacuation's badge-in check "
                              "(%s); retrying in %.1f s",
                              type(getattr(exc, "orig", None) or exc).__name__, delay)
                    self._stopping.wait(delay)
                    delay = min(RETRY_MAX_S, delay * 2)
                except Exception:  # a defect, not an outage: its ack must not wait for ever
                    log.exception("access log write failed; the batch's events are not in the roll call")
                    break
            if (written := self._written.get(id(message))) is not None:
                written.set()

    def record(self, message: Incoming) -> int:
        """Write a batch's badge events to the access log; how many were new (a repeat adds nothing)."""
        try:
            partial = contract.decode_batch(contract.EventBatch, message.payload)
        except contract.ContractError:
            return 0
        if partial.batch is None:
            return 0
        events: list[Access] = []
        for event in partial.batch.events:
            if event.type not in ACCESS_EVENTS or event.device not in self.site.devices:
                continue
            person = self.site.person_with_badge(event.badge)
            if person is None:
                continue
            events.append(Access(person.id, event.device, event.direction, event.ts, event.type.value))
        if not events:
            return 0
        added = self.store.add_new(events)
        if self.on_recorded is not None:
            try:
                self.on_recorded(events)
            except RETRIED:
                raise  # its database is down: retried with the write, so the badge-in instruction is not lost
            except Exception:  # a defect: the events are written, the roll call has them, the batch may be acked
                log.exception("access log: telling the evacuation of %d badge events failed", len(events))
        return added
