"""A service's background pass, repeated on a daemon thread from start to stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class Periodic:
    """Runs `run_pass` (its result unused) every `period_s`, the first one period after `start`, until `stop`;
    a pass that raises is logged on `log` as `failure` and the next pass runs as planned."""

    def __init__(self, name: str, period_s: float, run_pass: Callable[[], object], log: logging.Logger,
                 failure: str) -> None:
        self.name = name
        self.period_s = period_s
        self.run_pass = run_pass
        self.log = log
        self.failure = failure
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.run_pass()
            except Exception:
                self.log.exception(self.failure)
