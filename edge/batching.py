"""Batching of readings and events into contract messages. Pure: time comes in as monotonic seconds.

Readings are flushed when `max_readings` are pending or the oldest has waited `max_age_s`, whichever
comes first. Events that are not urgent ride the same clock. Urgent events (contract.LIFE_SAFETY_EVENTS
plus the edge's own interlock trips) are never held: the agent flushes what is pending first, so the
order on the wire is the order things happened, then sends the urgent event alone.
"""

from __future__ import annotations

from gateway.contract import LIFE_SAFETY_EVENTS, Event, EventType, Reading

URGENT_EVENTS = frozenset({*LIFE_SAFETY_EVENTS, EventType.INTERLOCK_TRIPPED})


def is_urgent(event: Event) -> bool:
    return event.type in URGENT_EVENTS


class Batcher:
    def __init__(self, max_readings: int, max_age_s: float) -> None:
        self.max_readings = max_readings
        self.max_age_s = max_age_s
        self.readings: list[Reading] = []
        self.events: list[Event] = []
        self._since: float | None = None

    def add_reading(self, reading: Reading, now: float) -> bool:
        """Queue a reading; True when the batch is full and should be flushed now."""
        if self._since is None:
            self._since = now
        self.readings.append(reading)
        return len(self.readings) >= self.max_readings

    def add_event(self, event: Event, now: float) -> bool:
        if self._since is None:
            self._since = now
        self.events.append(event)
        return len(self.events) >= self.max_readings

    def due(self, now: float) -> bool:
        return self._since is not None and now - self._since >= self.max_age_s

    def deadline(self) -> float | None:
        return None if self._since is None else self._since + self.max_age_s

    def take(self) -> tuple[list[Reading], list[Event]]:
        """Everything pending, readings then events; the age clock restarts with the next item."""
        readings, events = self.readings, self.events
        self.readings, self.events, self._since = [], [], None
        return readings, events
