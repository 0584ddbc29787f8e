"""Batching of readings and events into contract messages. Pure: time comes in as monotonic seconds.

Readings are flushed when `max_readings` are pending or the oldest has waited `max_age_s`, whichever
comes first. Events that are not urgent ride the same clock. Urgent events (contract.LIFE_SAFETY_EVENTS
plus the edge's own interlock trips) are never held: the agent flushes what is pending first, so the
order on the wire is the order things happened, then sends the urgent event alone.

Order per device. Readings and events travel in different messages (telemetry, events); a flush that
sent all its readings, then all its events, would put a door's "open" reading before the badge grant
that came first, and the server would see a forced door. Pending items are therefore kept in segments, each sent as
its events message, then its readings message; an event of a device that already has a reading in
the current segment starts a new segment. So every device's items reach the wire in the order the
edge got them, and a flush is still one or two messages unless one device interleaves within it.
Order across devices within a flush is not kept (nothing on the server depends on it; ingest applies
a drain's items in time order anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.contract import LIFE_SAFETY_EVENTS, Event, EventType, Reading

URGENT_EVENTS = frozenset({*LIFE_SAFETY_EVENTS, EventType.INTERLOCK_TRIPPED})


def is_urgent(event: Event) -> bool:
    return event.type in URGENT_EVENTS


@dataclass(slots=True)
class Segment:
    """Items sent as one events message, then one readings message (each split at the size limit)."""

    events: list[Event] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    read: set[str] = field(default_factory=set)
    """Devices with a reading in this segment: an event of theirs must go in a later segment."""


class Batcher:
    def __init__(self, max_readings: int, max_age_s: float) -> None:
        self.max_readings = max_readings
        self.max_age_s = max_age_s
        self.segments: list[Segment] = [Segment()]
        self._readings = 0
        self._events = 0
        self._since: float | None = None

    def add_reading(self, reading: Reading, now: float) -> bool:
        """Queue a reading; True when the batch is full and should be flushed now."""
        if self._since is None:
            self._since = now
        segment = self.segments[-1]
        segment.readings.append(reading)
        segment.read.add(reading.device)
        self._readings += 1
        return self._readings >= self.max_readings

    def add_event(self, event: Event, now: float) -> bool:
        if self._since is None:
            self._since = now
        segment = self.segments[-1]
        if event.device in segment.read:
            segment = Segment()
            self.segments.append(segment)
        segment.events.append(event)
        self._events += 1
        return self._events >= self.max_readings

    def due(self, now: float) -> bool:
        return self._since is not None and now - self._since >= self.max_age_s

    def deadline(self) -> float | None:
        return None if self._since is None else self._since + self.max_age_s

    def take(self) -> list[Segment]:
        """Everything pending, in segments to send in order; the age clock restarts with the next item."""
        segments = [s for s in self.segments if s.events or s.readings]
        self.segments, self._readings, self._events, self._since = [Segment()], 0, 0, None
        return segments
