"""The HR feed file: leavers and approvals in the site's local time, errors with file and line."""

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from server.adapters.hr_file import HrError, load_hr
from server.domain.site import parse_site
from server.settings import DEMO_SITE


def test_the_demo_floors_feed_reads_in_site_local_time() -> None:
    site = parse_site(DEMO_SITE.read_text(encoding="utf-8"), str(DEMO_SITE))
    feed = load_hr(DEMO_SITE.parent / "hr.yaml")
    leavers = feed.leave_times(site.tz)
    assert leavers and all(t.tzinfo is not None for t in leavers.values())
    first = feed.leavers[0]
    assert leavers[first.person] == first.left_at.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    badges = feed.active_badges(site)
    assert site.people[first.person].badge in badges  # not collected: still honoured by the doors
    assert all(a.end > a.start for a in feed.approvals(site.tz))


def test_a_bad_feed_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "hr.yaml"
    path.write_text("leavers:\n  - {person: p-1, left_at: yesterday}\n")
    with pytest.raises(HrError, match=r"hr.yaml:2: leavers\[0\].left_at"):
        load_hr(path)
    path.write_text("leavers: []\nvisitors: []\n")
    with pytest.raises(HrError, match=r"hr.yaml:2: visitors: Extra inputs"):
        load_hr(path)


def test_times_with_a_zone_keep_it() -> None:
    from server.adapters.hr_file import HrFeed, Leaver

    aware = datetime(2026, 11, 27, 10, tzinfo=ZoneInfo("UTC"))
    feed = HrFeed(leavers=[Leaver(person="p", left_at=aware)])
    assert feed.leave_times(ZoneInfo("Asia/Shanghai"))["p"] == aware
