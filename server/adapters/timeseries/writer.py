"""The interface every time-series writer offers (the server writes through it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable

from gateway.contract import Event, Reading
from server.adapters.timeseries.points import PointIn, SampleValue
from server.domain.device_meta import DeviceMeta


@dataclass(frozen=True, slots=True)
class WriterStats:
    written: int
    """Entries (lines or points) the store acknowledged."""
    buffered: int
    """Entries waiting, including a batch being sent."""
    dropped: int
    """Entries lost because the buffer was full (oldest first)."""
    retries: int
    """Failed attempts that were retried."""
    rejected: int
    """Entries the store refused for good (a 4xx such as a field type conflict); not retried."""
    last_error: str | None
    max_buffer: int = 0
    """The bound of the buffer (entries)."""
    held: int = 0
    """Times a caller was held because the buffer was full (back-pressure)."""
    held_s: float = 0.0
    """Seconds callers spent held, in total."""
    stalled: bool = False
    """The buffer is full and the store wrote nothing for ``hold_s``: new entries push out the oldest."""
    last_rejection: str | None = None
    """The store's words for the last entries it refused (kept after it takes writes again)."""


class Sample(NamedTuple):
    ts: datetime
    value: SampleValue


@runtime_checkable
class TimeSeriesWriter(Protocol):
    def write(self, points: Sequence[PointIn]) -> None:
        """Append points to the buffer; never blocks on I/O."""

    def write_readings(self, readings: Iterable[tuple[Reading, DeviceMeta]]) -> None:
        """The hot path: append canonical readings with their device metadata."""

    def write_events(self, events: Iterable[tuple[Event, DeviceMeta]]) -> None:
        """Append access, fire and supervision events (the `event` measurement) with their device metadata."""

    def flush(self, timeout_s: float | None = None) -> bool:
        """Block until everything buffered is written (True) or the timeout passed (False)."""

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what can be flushed within the timeout, then stop the thread and release the client."""

    def stats(self) -> WriterStats: ...

    def query_readings(
        self, device: str, metric: str, since: datetime, until: datetime | None = None, limit: int = 10_000
    ) -> list[Sample]:
        """Samples of one metric of one device in [since, until], oldest first, at most ``limit``."""
