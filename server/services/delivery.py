"""Running pushes concurrently: a bounded pool of threads with one FIFO lane per channel.

Why lanes: a page to one destination must not overtake an earlier one to the same destination (a
"cleared" after its "raised"), while a slow destination (a webhook that answers after 10 s, an SMTP
server that stalls) must not hold the others. Each lane (one channel, so every recipient behind it) runs
one job at a time, in submission order; different lanes run side by side on up to `threads` threads.
Threads, not processes: a send is network I/O (apprise over urllib3/smtplib), which releases the GIL.

`attempt` bounds one send by a wall-clock timeout, so a stalled channel gives its pool thread back and
its lease (server/services/notify/outbox.py) never runs out under a live worker. The timed-out send's thread is
left to finish on its own (a socket cannot be interrupted from outside), and its lane stays closed until
it has: the lane's next message (a "cleared" after its "raised", or the retry) cannot overtake a send that
may still arrive. If the left send does arrive, the retry repeats it with the same Idempotency-Key.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class AttemptTimeout(RuntimeError):
    """A send that did not return within its timeout."""


HOLD_MAX_S = 120.0
"""The longest a lane waits for a send its attempt timeout cut off (a notification row's lease is as long)."""

_left = threading.local()
"""The send a timed-out `attempt` left running on this thread's current lane job (see `Lanes._work`)."""


class Lanes:
    """Jobs keyed by lane: FIFO within a lane, lanes concurrent on at most `threads` threads."""

    def __init__(self, threads: int, name: str) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        self.name = name
        self._cond = threading.Condition()
        self._queues: dict[str, deque[Callable[[], None]]] = {}
        self._running: set[str] = set()
        self._ready: deque[str] = deque()
        """Lanes with a job waiting and none running: each lane at most once here."""
        self._workers: list[threading.Thread] = []
        self._stopping = False

    def submit(self, lane: str, job: Callable[[], None]) -> None:
        with self._cond:
            if self._stopping:  # a service started again after a stop: threads come back on demand
                self._stopping = False
                self._workers = [w for w in self._workers if w.is_alive()]
            queue = self._queues.get(lane)
            if queue is None:
                queue = self._queues[lane] = deque()
            idle = not queue and lane not in self._running
            queue.append(job)
            if idle:
                self._ready.append(lane)
                self._cond.notify()
            if len(self._workers) < self.threads and len(self._ready) > self._idle_workers():
                self._spawn()

    def depth(self, lane: str) -> int:
        """Jobs of `lane` waiting or running."""
        with self._cond:
            return len(self._queues.get(lane, ())) + (lane in self._running)

    def depths(self) -> dict[str, int]:
        with self._cond:
            lanes = set(self._queues) | self._running
            return {lane: len(self._queues.get(lane, ())) + (lane in self._running) for lane in lanes}

    def stop(self, timeout: float) -> None:
        """Let running and queued jobs finish for up to `timeout` seconds, then return; a job still
        running is left to end on its own (the caller's outbox keeps its row leased)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout / max(1, len(workers)))

    def _idle_workers(self) -> int:
        return len(self._workers) - len(self._running)

    def _spawn(self) -> None:
        worker = threading.Thread(target=self._work, name=f"{self.name}-{len(self._workers)}", daemon=True)
        self._workers.append(worker)
        worker.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._ready:
                    if self._stopping:
                        return
                    self._cond.wait()
                lane = self._ready.popleft()
                job = self._queues[lane].popleft()
                self._running.add(lane)
            _left.thread = None
            try:
                job()
            except Exception:
                log.exception("%s: a job of lane %s failed", self.name, lane)
            left: threading.Thread | None = _left.thread
            _left.thread = None
            if left is not None and left.is_alive():
                # the lane stays running until the left send ends; this pool thread serves other lanes
                threading.Thread(target=self._release_after, args=(lane, left), name=f"{self.name}-hold",
                                 daemon=True).start()
            else:
                self._release(lane)

    def _release_after(self, lane: str, left: threading.Thread) -> None:
        left.join(HOLD_MAX_S)
        if left.is_alive():  # a send that never returns must not close its channel for good
            log.error("%s: lane %s reopened while a cut-off send still runs after %.0f s", self.name, lane,
                      HOLD_MAX_S)
        self._release(lane)

    def _release(self, lane: str) -> None:
        with self._cond:
            self._running.discard(lane)
            if self._queues[lane]:
                self._ready.append(lane)  # at the back: a busy lane takes turns with the others
                self._cond.notify()
                if len(self._workers) < self.threads and len(self._ready) > self._idle_workers():
                    self._spawn()
            else:
                del self._queues[lane]


def attempt(fn: Callable[[], T], timeout: float, what: str) -> T:
    """`fn()` on a thread of its own, or AttemptTimeout after `timeout` seconds (the thread is left)."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed to the caller, who records it as the attempt's error
            error.append(exc)

    thread = threading.Thread(target=run, name=f"attempt-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        _left.thread = thread  # on a lane thread, its lane waits for it (Lanes._work)
        raise AttemptTimeout(f"{what}: no answer within {timeout:g} s")
    if error:
        raise error[0]
    return result[0]


class Serial:
    """One thread that runs posted calls in order, so a caller does not wait for them (delivery results
    fed to the rule engine wait for the ingest thread; a delivery must not). The queue is bounded: when
    `limit` calls wait, `post` waits for room, so a stalled consumer slows its posters down instead of
    growing without end (nothing posted is dropped while it runs)."""

    def __init__(self, name: str, limit: int = 10_000) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.name = name
        self.limit = limit
        self._queue: deque[Callable[[], object] | None] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def post(self, fn: Callable[[], object]) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            while len(self._queue) >= self.limit and self._thread is not None:
                self._cond.wait()
            self._queue.append(fn)
            self._cond.notify_all()

    def waiting(self) -> int:
        """Calls posted and not yet started."""
        with self._cond:
            return len(self._queue)

    def stop(self, timeout: float) -> None:
        with self._cond:
            thread = self._thread
            self._queue.appendleft(None)  # ahead of what waits: the thread ends after the call it runs
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            self._thread = None
            self._queue.clear()
            self._cond.notify_all()  # a poster waiting for room stops waiting

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                fn = self._queue.popleft()
                self._cond.notify_all()  # room for a waiting poster
            if fn is None:
                return
            try:
                fn()
            except Exception:
                log.exception("%s: a posted call failed", self.name)
