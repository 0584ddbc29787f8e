"""The bounded buffer and its flushing thread, shared by both writers."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Generic, TypeVar

from server.adapters.timeseries.writer import WriterStats

log = logging.getLogger(__name__)


T = TypeVar("T")


class RetryableError(Exception):
    """The store is unreachable or busy: keep the batch and try again later."""


class RejectedError(Exception):
    """The store refused the batch for good: count it as rejected and move on."""


class PartialWriteError(RejectedError):
    """The store kept the batch but `rejected` of its entries (InfluxDB's partial write): those are counted
    rejected, the rest written; nothing is retried (the refused ones would be refused again)."""

    def __init__(self, message: str, rejected: int) -> None:
        super().__init__(message)
        self.rejected = rejected


class BufferedWriter(Generic[T]):
    """A bounded FIFO drained in batches by one background thread, with retries and backoff.

    The batch being sent stays at the head of the buffer until the store acknowledges it, so a failed
    send loses nothing; if the buffer overflows meanwhile, the oldest entries (possibly the ones being
    sent) are dropped and counted. Should a send succeed although some of its entries had been counted
    as dropped meanwhile, the count is corrected: ``dropped`` is exactly what never reached the store.

    With ``hold_s > 0`` a full buffer holds the caller instead, for as long as the store keeps writing:
    the wait ends when there is room, or once no batch was settled for ``hold_s`` since the buffer
    filled (the store is down or stuck). From then on the writer is *stalled*: callers are not held
    and the oldest entries make room, until the next batch is settled.
    """

    def __init__(
        self, *, name: str, batch_size: int, flush_interval_s: float, max_buffer: int,
        backoff_initial_s: float, backoff_max_s: float, hold_s: float = 0.0,
    ) -> None:
        if batch_size < 1 or max_buffer < 1:
            raise ValueError("batch_size and max_buffer must be positive")
        if hold_s < 0 or not math.isfinite(hold_s):
            raise ValueError(f"hold_s must be a finite number of seconds >= 0, not {hold_s!r}")
        self._hold_s = hold_s
        self._full_since: float | None = None  # a caller found the buffer full, no batch settled since
        self._holding = 0
        self._held = 0
        self._held_s = 0.0
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_buffer = max_buffer
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._buf: deque[T] = deque()
        self._cond = threading.Condition()
        self._head_drops = 0  # entries dropped from the head since start (for in-flight accounting)
        self._written = 0
        self._dropped = 0
        self._retries = 0
        self._rejected = 0
        self._last_rejection: str | None = None
        self._last_error: str | None = None
        self._flush_waiters = 0
        self._closing = False
        self._stop = False
        self._wake = threading.Event()  # set by close(): cuts a retry pause short
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _start(self) -> None:
        self._thread.start()

    # -- producer side ------------------------------------------------------------------------------

    def _append(self, items: Sequence[T]) -> None:
        if not items:
            return
        with self._cond:
            if self._stop:
                self._dropped += len(items)
                self._last_error = "write after close"
                return
            buf = self._buf
            if self._hold_s > 0 and buf and len(buf) + len(items) > self._max_buffer:
                self._hold(len(items))
            overflow = len(buf) + len(items) - self._max_buffer
            if overflow > 0:
                from_buf = min(overflow, len(buf))
                for _ in range(from_buf):
                    buf.popleft()
                self._head_drops += from_buf
                self._dropped += overflow
                skip = overflow - from_buf  # more new items than the whole bound: keep the newest
                buf.extend(items[skip:] if skip else items)
            else:
                buf.extend(items)
            if len(buf) >= self._batch_size:
                self._cond.notify_all()

    def _hold(self, n: int) -> None:
        """Wait (holding `_cond`'s lock between waits) until `n` more entries fit, the store stalls, or close."""
        started = time.monotonic()
        if self._full_since is not None and started - self._full_since >= self._hold_s:
            return  # stalled already: no new wait until the store settles a batch
        self._held += 1
        self._holding += 1
        self._cond.notify_all()  # the writer sends at once, whatever the batch size
        try:
            while self._buf and len(self._buf) + n > self._max_buffer and not self._stop:
                now = time.monotonic()
                if self._full_since is None:
                    self._full_since = now
                left = self._full_since + self._hold_s - now
                if left <= 0:
                    return  # stalled: the oldest entries make room
                self._cond.wait(min(left, 0.5))
        finally:
            self._holding -= 1
            self._held_s += time.monotonic() - started

    def flush(self, timeout_s: float | None = None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                while self._buf:
                    if not self._thread.is_alive():
                        return False
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining if remaining is not None else 0.5)
                return True
            finally:
                self._flush_waiters -= 1

    def close(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._wake.set()
        if self._thread.is_alive():
            self.flush(timeout_s)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=max(timeout_s, 1.0))
        with self._cond:
            if self._buf:
                self._dropped += len(self._buf)
                self._last_error = f"closed with {len(self._buf)} entries unwritten"
                log.warning("time-series writer closed with %d entries unwritten", len(self._buf))
                self._buf.clear()
        self._release()

    def stats(self) -> WriterStats:
        with self._cond:
            stalled = self._full_since is not None and time.monotonic() - self._full_since >= self._hold_s
            return WriterStats(
                written=self._written, buffered=len(self._buf), dropped=self._dropped,
                retries=self._retries, rejected=self._rejected, last_error=self._last_error,
                last_rejection=self._last_rejection,
                max_buffer=self._max_buffer, held=self._held, held_s=self._held_s, stalled=stalled,
            )

    # -- consumer side ------------------------------------------------------------------------------

    def _send(self, batch: list[T]) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Close clients and connections (after the thread stopped)."""

    def _tick(self) -> None:
        """Periodic housekeeping in the writer thread (retention, for example)."""

    def _run(self) -> None:
        backoff = self._backoff_initial_s
        last_send = time.monotonic()
        while True:
            batch: list[T] | None = None
            with self._cond:
                if self._stop:
                    return
                now = time.monotonic()
                waited = now - last_send
                buf = self._buf
                if buf and (
                    len(buf) >= self._batch_size or waited >= self._flush_interval_s
                    or self._flush_waiters or self._closing or self._holding
                ):
                    n = min(len(buf), self._batch_size)
                    batch = [buf[i] for i in range(n)]
                    drops_before = self._head_drops
                else:
                    timeout = self._flush_interval_s - waited if buf else 1.0
                    self._cond.wait(min(max(timeout, 0.01), 1.0))
            self._tick()
            if batch is None:
                continue
            try:
                self._send(batch)
            except PartialWriteError as exc:
                refused = min(max(exc.rejected, 0), len(batch))
                self._settle(len(batch), drops_before, rejected=False, error=None, refused=refused, why=str(exc))
                log.error("time-series store rejected %d of %d entries: %s", refused, len(batch), exc)
            except RejectedError as exc:
                self._settle(len(batch), drops_before, rejected=True, error=str(exc))
                log.error("time-series store rejected %d entries: %s", len(batch), exc)
            except Exception as exc:  # RetryableError and anything unexpected: keep the batch
                with self._cond:
                    self._retries += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    closing = self._closing
                delay = backoff * (0.5 + random.random() / 2)  # jitter only, not security
                # Writes do not cut the pause short (no hammering during an outage); close() does.
                self._wake.wait(min(delay, 0.2) if closing else delay)
                backoff = min(backoff * 2, self._backoff_max_s)
                continue
            else:
                self._settle(len(batch), drops_before, rejected=False, error=None)
            backoff = self._backoff_initial_s
            last_send = time.monotonic()

    def _settle(self, n: int, drops_before: int, *, rejected: bool, error: str | None, refused: int = 0,
                why: str | None = None) -> None:
        """`refused`: entries of a batch the store took that it refused (a partial write), `why` its words."""
        with self._cond:
            dropped_meanwhile = min(n, self._head_drops - drops_before)
            for _ in range(min(n - dropped_meanwhile, len(self._buf))):
                self._buf.popleft()
            if rejected:
                self._rejected += n
                self._dropped -= dropped_meanwhile  # counted as rejected instead
                self._last_error = error
                self._last_rejection = error
            else:
                if refused:
                    self._rejected += refused
                    self._last_rejection = why
                    n -= refused
                self._written += n
                self._dropped -= dropped_meanwhile  # they arrived after all
                self._last_error = None  # the store takes writes again: /api/health reports it up
            # Later head drops must not be credited to this batch again.
            self._head_drops -= dropped_meanwhile
            self._full_since = None  # the store took a batch: it is not stalled
            self._cond.notify_all()
