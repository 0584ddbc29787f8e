"""Leavers and approvals from the HR feed to the access rules, and training records to the inspection
service: at start, then hourly (RULES.md: reconcile hourly). Every pass reads the feed again, so a leaver
entered today, an approval withdrawn or extended, or a training passed counts from the next pass on,
without a restart.

A feed that cannot be used keeps the last good one in force (an unreadable upload must not turn every
leaver's badge back into a valid one): the pass logs one line naming the file, line and field, /api/health
shows it (`hr.up` false, `hr.error`), and the next good read recovers. A section that listed entries and is
now missing (an empty file, a truncated upload, an export that leaves out a list once it is empty) keeps
its last value while the sections present are applied, with a warning (`hr.kept` in /api/health); HR clears
a list on purpose by writing it empty (`leavers: []`). docs/site-file.md, "`hr.yaml`".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, tzinfo

from server.domain.inspections import Starter
from server.domain.rules.access import Approval
from server.domain.site import Site
from server.services.ingest import EngineCall
from server.services.ports import HrReader, HrSource, Trainings

log = logging.getLogger(__name__)

KEPT = "kept the last good feed"


class HrSync:
    def __init__(self, read: HrReader, first: HrSource, site: Site, engine_call: Callable[[EngineCall], object],
                 every_s: float = 3600, on_training: Callable[[Trainings | None], object] | None = None) -> None:
        self.read = read
        self.feed = first
        """The last good feed: what the access rules get until a read succeeds."""
        self.site = site
        self.engine_call = engine_call
        """Runs a call on the ingest thread, the only one that touches the rule engine (Ingest.call)."""
        self.every_s = every_s
        self.on_training = on_training
        """Gets the training records at every pass (InspectionService.use_training); None: nobody."""
        self.error: str | None = None
        """Why the last read was not used (one line), None when it was; /api/health shows it."""
        self.warnings = first.unknown_leavers(site)
        """The last good feed's leavers the site file does not know (the runtime logged them at start)."""
        self.kept: list[str] = []
        """One line per section the last read left out that still holds its earlier value; /api/health."""
        self._stop = threading.Event()
        self._pass = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._run, name="hr-feed", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                self.sync()
            except Exception:  # the next pass tries again; the rules keep what they last got
                log.exception("hr: the pass failed")
            if self._stop.wait(self.every_s):
                return

    def sync(self) -> None:
        """One pass: read the feed again, then give the access rules the last good one."""
        with self._pass:
            self._reread()
            tz, feed = self.site.tz, self.feed
            approvals, leavers = feed.approvals(tz), feed.leave_times(tz)
            active = feed.active_badges(self.site)
            self.engine_call(lambda engine, now: engine.on_approvals(approvals, now))
            self.engine_call(lambda engine, now: engine.on_hr_feed(leavers, active, now))
            if self.on_training is not None:
                self.on_training(feed.trainings(tz))

    def _reread(self) -> None:
        try:
            feed = self.read()
        except (ValueError, OSError) as exc:
            problems = str(exc).splitlines() or [f"{self.feed.source}:1: (document): {exc!r}"]
            extra = len(problems) - 1
            more = f" (and {extra} more problem{'s' if extra > 1 else ''} in this file)" if extra else ""
            self._refuse(f"{problems[0]}{more}: {KEPT}; correct the file, the next pass reads it again")
            return
        feed, kept = self._keep_missing(feed)
        for line in sorted(set(kept) - set(self.kept)):
            log.warning("hr: %s", line)
        self.kept = kept
        self._dropped_leavers(feed)
        if self.error is not None:
            log.info("hr: %s is usable again: its data is in force", feed.source)
        self.feed, self.error = feed, None
        warnings = feed.unknown_leavers(self.site)
        for warning in sorted(set(warnings) - set(self.warnings)):
            log.warning("hr: %s", warning)
        self.warnings = warnings

    def _keep_missing(self, feed: HrSource) -> tuple[HrSource, list[str]]:
        """The feed with each section that listed entries and is now missing kept at its last value, and one
        line per such section. Not taken as "nobody left" (a truncated upload would silently make every
        leaver's badge valid again), nor refused whole: an export that leaves out `visitor_approvals:` once
        the last approval ended would then keep every later leaver from being applied."""
        tz = self.site.tz
        had = {"leavers": len(self.feed.leave_times(tz)), "visitor_approvals": len(self.feed.approvals(tz)),
               "training": len((self.feed.trainings(tz) or ([], []))[0]), "new_staff": len(self.feed.starters())}
        missing = [section for section, count in had.items() if count and section not in feed.sections()]
        lines = [f"{feed.source}:1: {section}: missing, but the last good feed listed {had[section]}: kept those "
                 f"(a truncated upload?); restore the section, or write `{section}: []` to clear it on purpose"
                 for section in missing]
        return (KeptSections(feed, self.feed, frozenset(missing)) if missing else feed), lines

    def _dropped_leavers(self, feed: HrSource) -> None:
        """HR took a leaver off the list (a correction, a rehire): applied, and said once in the log, since
        that person's badge counts as valid again."""
        gone = set(self.feed.leave_times(self.site.tz)) - set(feed.leave_times(self.site.tz))
        for person in sorted(gone):
            log.warning("hr: %s: %s is no longer listed as a leaver: their badge counts as valid again",
                        feed.source, person)

    def _refuse(self, message: str) -> None:
        self.error = message
        log.warning("hr: %s", message)


class KeptSections:
    """A feed read now, with the sections it left out answered from the last good one (HrSync._keep_missing)."""

    def __init__(self, read: HrSource, last: HrSource, kept: frozenset[str]) -> None:
        self.read = read
        # a section kept pass after pass is answered by the feed that last had it, not by a chain of these
        self._by_section = {section: last._of(section) if isinstance(last, KeptSections) else last
                            for section in kept}

    def _of(self, section: str) -> HrSource:
        return self._by_section.get(section, self.read)

    @property
    def source(self) -> str:
        return self.read.source

    def sections(self) -> frozenset[str]:
        return self.read.sections() | self._by_section.keys()

    def approvals(self, tz: tzinfo) -> list[Approval]:
        return self._of("visitor_approvals").approvals(tz)

    def leave_times(self, tz: tzinfo) -> dict[str, datetime]:
        return self._of("leavers").leave_times(tz)

    def active_badges(self, site: Site) -> set[str]:
        return self._of("leavers").active_badges(site)

    def unknown_leavers(self, site: Site) -> list[str]:
        return self._of("leavers").unknown_leavers(site)

    def trainings(self, tz: tzinfo) -> Trainings | None:
        records = self._of("training").trainings(tz)
        if records is None:
            return None  # no `training:` section, kept or read: the train.* rules stay off
        return records[0], self._of("new_staff").starters()

    def starters(self) -> list[Starter]:
        return self._of("new_staff").starters()
