"""What each hourly HR pass does with the feed it reads (server/services/hr_sync.py): a leaver HR takes off
the list is applied and said in the log; a list HR empties on purpose (`leavers: []`) is applied; a section
that vanished keeps its last value while the sections present are applied; a file with several problems is
refused in one line and the last good feed stays in force. The real file adapter; the rule engine's two
entry points are recorded."""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from server.adapters.hr_file import load_hr
from server.domain.inspections import Course, Starter
from server.domain.rules.access import Approval
from server.domain.site import Site
from server.services.hr_sync import HrSync
from server.services.ports import Trainings
from tests.server.services.conftest import T0, make_site, site_yaml

APPROVAL = ("visitor_approvals:\n"
            "  - {visitor: p-op, approved_by: p-lead, from: '2026-11-27 08:00', until: '2026-11-27 18:00'}\n")


class Engine:
    """The rule engine's HR entry points, as the last pass gave them."""

    def __init__(self) -> None:
        self.approvals: list[Approval] = []
        self.leavers: dict[str, datetime] = {}
        self.trainings: list[Trainings | None] = []
        """What the inspection service was given at each pass."""

    def on_approvals(self, approvals: list[Approval], now: datetime) -> None:
        self.approvals = list(approvals)

    def on_hr_feed(self, leavers: dict[str, datetime], active: set[str], now: datetime) -> None:
        self.leavers = dict(leavers)


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(site_yaml(2525, 8080), tmp_path)


def _sync(tmp_path: Path, site: Site, first: str) -> tuple[HrSync, Engine, Path]:
    path = tmp_path / "hr.yaml"
    path.write_text(first, encoding="utf-8")
    engine = Engine()

    def call(fn: Any) -> object:
        return fn(engine, T0)

    sync = HrSync(lambda: load_hr(path), load_hr(path), site, call, on_training=engine.trainings.append)
    sync.sync()
    return sync, engine, path


def test_a_leaver_taken_off_the_list_is_applied_and_logged(
    tmp_path: Path, site: Site, caplog: pytest.LogCaptureFixture,
) -> None:
    person = "p-lead"
    sync, engine, path = _sync(tmp_path, site, f"leavers:\n  - {{person: {person}, left_at: '2026-11-27 10:00'}}\n")
    assert list(engine.leavers) == [person]
    path.write_text("leavers: []\n", encoding="utf-8")  # HR's correction: applied, not refused
    with caplog.at_level(logging.WARNING, logger="server.services.hr_sync"):
        sync.sync()
    assert engine.leavers == {} and sync.error is None
    assert [r.getMessage() for r in caplog.records] == [
        f"hr: {path}: {person} is no longer listed as a leaver: their badge counts as valid again"]


def test_a_vanished_section_keeps_its_last_value_and_the_sections_present_are_applied(
    tmp_path: Path, site: Site, caplog: pytest.LogCaptureFixture,
) -> None:
    """The HR export leaves out `visitor_approvals:` once the last approval ended: that section keeps its
    last value (a warning, not a refusal of the whole file), so a leaver added the next day is applied."""
    sync, engine, path = _sync(tmp_path, site, "leavers: []\n" + APPROVAL)
    assert [a.person for a in engine.approvals] == ["p-op"]
    path.write_text("leavers: []\n", encoding="utf-8")  # the approvals section is gone
    with caplog.at_level(logging.WARNING, logger="server.services.hr_sync"):
        sync.sync()
        path.write_text("leavers:\n  - {person: p-lead, left_at: '2026-11-28 10:00'}\n", encoding="utf-8")
        sync.sync()  # the next day's leaver, the approvals still left out
    assert list(engine.leavers) == ["p-lead"], "a leaver was not applied because another section was missing"
    assert [a.person for a in engine.approvals] == ["p-op"] and sync.error is None
    kept = (f"{path}:1: visitor_approvals: missing, but the last good feed listed 1: kept those (a truncated "
            "upload?); restore the section, or write `visitor_approvals: []` to clear it on purpose")
    assert sync.kept == [kept]
    assert [r.getMessage() for r in caplog.records] == [f"hr: {kept}"], "said once, not at every pass"
    path.write_text("leavers: []\nvisitor_approvals: []\n", encoding="utf-8")
    sync.sync()
    assert engine.approvals == [] and engine.leavers == {} and sync.error is None and sync.kept == []


def test_a_file_with_several_problems_is_one_line_naming_the_first(tmp_path: Path, site: Site) -> None:
    sync, engine, path = _sync(tmp_path, site, APPROVAL)
    path.write_text("leavers:\n  - {person: p-op, left_at: never}\n  - {person: p-op}\n", encoding="utf-8")
    sync.sync()
    assert sync.error is not None and "\n" not in sync.error
    assert sync.error.startswith(f"{path}:2: leavers[0].left_at: ")
    assert sync.error.endswith(" (and 1 more problem in this file): kept the last good feed; correct the file, "
                               "the next pass reads it again")
    assert [a.person for a in engine.approvals] == ["p-op"]


def test_training_passed_after_start_reaches_the_inspection_service(tmp_path: Path, site: Site) -> None:
    sync, engine, path = _sync(tmp_path, site, "training: []\nnew_staff:\n  - {person: p-lead, starts: 2026-11-30}\n")
    assert engine.trainings[-1] == ([], [Starter("p-lead", date(2026, 11, 30))])
    path.write_text("training:\n  - {person: p-lead, course: induction, passed_at: '2026-11-28 09:00'}\n"
                    "new_staff:\n  - {person: p-lead, starts: 2026-11-30}\n", encoding="utf-8")
    sync.sync()
    latest = engine.trainings[-1]
    assert latest is not None and [(t.person, t.course) for t in latest[0]] == [("p-lead", Course.INDUCTION)]
    path.write_text("new_staff:\n  - {person: p-op, starts: 2026-12-01}\n", encoding="utf-8")
    sync.sync()  # training lost with its records: kept; the starters present are applied
    assert engine.trainings[-1] == (latest[0], [Starter("p-op", date(2026, 12, 1))]) and sync.error is None
    assert [line.split(": kept")[0] for line in sync.kept] == [
        f"{path}:1: training: missing, but the last good feed listed 1"]
