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
    with pytest.raises(HrError, match=r"hr.yaml:2: visitors: unknown key \(typo\?\)"):
        load_hr(path)


def test_times_with_a_zone_keep_it() -> None:
    from server.adapters.hr_file import HrFeed, Leaver

    aware = datetime(2026, 11, 27, 10, tzinfo=ZoneInfo("UTC"))
    feed = HrFeed(leavers=[Leaver(person="p", left_at=aware)])
    assert feed.leave_times(ZoneInfo("Asia/Shanghai"))["p"] == aware


def test_a_feed_that_is_not_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "hr.yaml"
    path.write_text("leavers:\n  - {person: p-1, left_at: '2026-11-27 10:00'}\n  - person: p-2: oops\n")
    with pytest.raises(HrError) as caught:
        load_hr(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: (document): not valid YAML: ")
    assert "line 3, column" not in message  # not PyYAML's own format
    path.write_text("- just\n- a list\n")
    with pytest.raises(HrError, match=r"hr.yaml:1: \(document\): an HR file is a mapping with leavers"):
        load_hr(path)


def test_a_leaver_the_site_file_does_not_know_is_named_with_its_line(tmp_path: Path) -> None:
    site = parse_site(DEMO_SITE.read_text(encoding="utf-8"), str(DEMO_SITE))
    known = next(iter(site.people))
    path = tmp_path / "hr.yaml"
    path.write_text(f"leavers:\n  - {{person: {known}, left_at: '2026-11-27 10:00'}}\n"
                    "  - person: p-gone\n    left_at: '2026-11-28 10:00'\n")
    assert load_hr(path).unknown_leavers(site) == [
        f"{path}:3: leavers[1].person: unknown person 'p-gone': not in the site file, so their badge is not "
        "checked; correct the id or add the person (with the badge) to the site file"]


def test_a_key_given_twice_is_refused_at_its_line(tmp_path: Path) -> None:
    """The HR export is read by the same loader as the site file: YAML would silently keep the last of two
    `leavers:` keys, and with it forget every leaver listed under the first."""
    path = tmp_path / "hr.yaml"
    path.write_text("leavers:\n  - {person: p-1, left_at: '2026-11-27T18:00:00'}\nleavers: []\n")
    with pytest.raises(HrError, match=r"hr.yaml:3: leavers: key appears twice"):
        load_hr(path)


def test_an_empty_export_is_an_empty_feed(tmp_path: Path) -> None:
    path = tmp_path / "hr.yaml"
    path.write_text("# nothing exported yet\n")
    assert load_hr(path).leavers == []
