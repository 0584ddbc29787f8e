"""Leavers and approvals from the HR feed to the access rules: at start, then hourly (RULES.md: reconcile hourly)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from server.domain.rules.access import Approval
from server.domain.site import Site
from server.services.ingest import EngineCall
from server.services.ports import HrSource


class HrSync:
    def __init__(self, hr: HrSource, site: Site, engine_call: Callable[[EngineCall], object],
                 every_s: float = 3600) -> None:
        self.hr = hr
        self.site = site
        self.engine_call = engine_call
        """Runs a call on the ingest thread, the only one that touches the rule engine (Ingest.call)."""
        self.every_s = every_s
        self._stop = threading.Event()
        self._read: tuple[list[Approval], dict[str, datetime], set[str]] | None = None

    def start(self) -> None:
        threading.Thread(target=self._run, name="hr-feed", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            self.sync()
            if self._stop.wait(self.every_s):
                return

    def sync(self) -> None:
        """One pass: the feed to the access rules."""
        if self._read is None:
            tz, site = self.site.tz, self.site
            self._read = (self.hr.approvals(tz), self.hr.leave_times(tz), self.hr.active_badges(site))
        approvals, leavers, active = self._read
        self.engine_call(lambda engine, now: engine.on_approvals(approvals, now))
        self.engine_call(lambda engine, now: engine.on_hr_feed(leavers, active, now))
