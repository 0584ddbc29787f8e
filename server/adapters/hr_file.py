"""The HR feed from a file beside the site file (`hr.yaml`): leavers, visitor approvals, training.

A real deployment replaces this with its HR system's export; the rules only need who left when (and
whether the badge came back) and which visits were approved (access.leaver_badge_active,
access.revoked_badge_used, access.visitor_unapproved, access.visitor_overstay). The inspection
service reads training records and new starters (train.fire_annual_overdue, train.new_staff); a
file without a `training:` section leaves the train.* rules off.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from gateway.yamlfile import YamlFileError, is_blank, parse_yaml
from server.domain.inspections import Course, Starter, Training
from server.domain.rules.access import Approval
from server.domain.site import Site


class HrError(ValueError):
    """An HR file that cannot be used; the message is `file:line: field: reason`."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Leaver(_Strict):
    person: str
    left_at: datetime
    badge_collected: bool = False


class VisitorApproval(_Strict):
    visitor: str
    approved_by: str
    start: datetime = Field(alias="from")
    until: datetime
    machine_room: bool = False


class TrainingRecord(_Strict):
    person: str
    course: Course
    passed_at: datetime


class NewStarter(_Strict):
    person: str
    starts: date


class HrFeed(_Strict):
    leavers: list[Leaver] = []
    visitor_approvals: list[VisitorApproval] = []
    training: list[TrainingRecord] | None = None
    """None (no section): training is not tracked here and the train.* rules stay off."""
    new_staff: list[NewStarter] = []
    _source: str = PrivateAttr(default="hr.yaml")
    _leaver_lines: list[int] = PrivateAttr(default_factory=list)

    @property
    def source(self) -> str:
        return self._source

    def sections(self) -> frozenset[str]:
        return frozenset(self.model_fields_set)

    def unknown_leavers(self, site: Site) -> list[str]:
        """One `file:line` warning per leaver the site file does not know: the access rules can check
        only a badge the site file lists, so such a leaver's badge would go unchecked."""
        out = []
        for i, leaver in enumerate(self.leavers):
            if leaver.person not in site.people:
                line = self._leaver_lines[i] if i < len(self._leaver_lines) else 1
                out.append(f"{self._source}:{line}: leavers[{i}].person: unknown person {leaver.person!r}: "
                           "not in the site file, so their badge is not checked; correct the id or add the "
                           "person (with the badge) to the site file")
        return out

    def trainings(self, tz: tzinfo) -> tuple[list[Training], list[Starter]] | None:
        if self.training is None:
            return None
        return [Training(t.person, t.course, _local(t.passed_at, tz)) for t in self.training], self.starters()

    def starters(self) -> list[Starter]:
        return [Starter(s.person, s.starts) for s in self.new_staff]

    def leave_times(self, tz: tzinfo) -> dict[str, datetime]:
        return {leaver.person: _local(leaver.left_at, tz) for leaver in self.leavers}

    def active_badges(self, site: Site) -> set[str]:
        """Badges the access system still honours: everyone's, except leavers' that were collected."""
        collected = {leaver.person for leaver in self.leavers if leaver.badge_collected}
        return {p.badge for p in site.people.values() if p.badge and p.id not in collected}

    def approvals(self, tz: tzinfo) -> list[Approval]:
        return [Approval(a.visitor, _local(a.start, tz), _local(a.until, tz), a.machine_room)
                for a in self.visitor_approvals]


def _local(when: datetime, tz: tzinfo) -> datetime:
    """Times without a zone in an HR export are the site's local time."""
    return when if when.tzinfo is not None else when.replace(tzinfo=tz)


def load_hr(path: Path) -> HrFeed:
    """The HR export, read by the one YAML loader: every problem (duplicate keys included) at its line."""
    shape = "an HR file is a mapping with leavers, visitor_approvals, training and new_staff (each optional)"
    try:
        text = path.read_text(encoding="utf-8")
        if is_blank(text):
            return _sourced(HrFeed(), path, [])  # an export with nothing in it yet
        doc = parse_yaml(text, str(path), shape)
    except (OSError, UnicodeDecodeError, YamlFileError) as exc:
        raise HrError(str(exc) if isinstance(exc, YamlFileError) else f"{path}:1: (document): cannot read: {exc}"
                      ) from None
    feed: HrFeed | None = None
    try:
        feed = HrFeed.model_validate(doc.data)
    except ValidationError as exc:
        doc.add_validation(exc)
    if doc.problems or feed is None:
        raise HrError("\n".join(doc.problems))
    return _sourced(feed, path, [doc.line(("leavers", i, "person")) for i in range(len(feed.leavers))])


def _sourced(feed: HrFeed, path: Path, leaver_lines: list[int]) -> HrFeed:
    feed._source = str(path)
    feed._leaver_lines = leaver_lines
    return feed
