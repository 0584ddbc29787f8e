"""Leavers and approvals from the HR feed to the access rules: at start, then hourly (RULES.md: reconcile hourly)."""

from __future__ import annotations

import threading
from collections.abc import Callable

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

    def start(self) -> None:
        threading.Thread(target=self._run, name="hr-feed", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        tz, site = self.site.tz, self.site
        approvals, leavers = self.hr.approvals(tz), self.hr.leave_times(tz)
        active = self.hr.active_badges(site)
        while True:
            self.engine_call(lambda engine, now: engine.on_approvals(approvals, now))
            self.engine_call(lambda engine, now: engine.on_hr_feed(leavers, active, now))
            if self._stop.wait(self.every_s):
                return
