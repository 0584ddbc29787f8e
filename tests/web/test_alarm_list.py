"""The alarm list people work through (issue #16 item 2) and the page in 中文 (item 5), in Debian's chromium
on the real demo floor of tests/web/floors.py: two strip overloads in f3-z1 (critical), three offline plugs
in f3-z2 (minor), a silent smoke detector in f3-z3 (major, life safety).

Life safety comes first, then severity, then time; one rule in one zone is one row with a count that opens;
filters by severity, zone and rule family; the counts per severity in the header. In 中文 the headings are
the rule titles in Chinese, no English message shows, and times are the site's (Asia/Shanghai) while the
browser runs in Europe/London."""

from __future__ import annotations

import contextlib
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.broker import EmbeddedBroker
from tests.e2e.conftest import Stack
from tests.server.services.conftest import Hook
from tests.web.floors import DEMO, raise_alarms, running_floor
from tests.web.test_floor_scale import DESK, PHONE, open_page
from tests.web.test_live_page import open_page as open_stack_page

with contextlib.suppress(ImportError):  # the dev extras install it; the browser fixture says when it is missing
    from playwright.sync_api import Browser, Page, expect

RANK = {"critical": 4, "major": 3, "minor": 2, "warning": 1}
SITE_TZ = ZoneInfo("Asia/Shanghai")  # the demo site's timezone
ROWS = """() => [...document.querySelectorAll('#alarms > li')].map((li) => ({
  rule: li.dataset.rule, severity: li.dataset.severity, life: li.dataset.lifeSafety === 'true',
  count: Number(li.dataset.count || 1), zone: li.dataset.zone || null,
  group: li.classList.contains('alarm-group') }))"""


def rows(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(ROWS)
    return found


def local(iso: str, tz: Any) -> str:
    return datetime.fromisoformat(iso).astimezone(tz).strftime("%H:%M:%S")


def test_the_list_sorts_groups_filters_and_counts_in_chinese_with_site_times(
        browser: Browser, mosquitto: EmbeddedBroker, hook: Hook, tmp_path: Path, artifacts_dir: Path) -> None:
    with running_floor(mosquitto, hook.port, tmp_path, DEMO) as floor:
        raise_alarms(floor, mosquitto, DEMO)
        for viewport, name in ((DESK, "desk"), (PHONE, "phone")):
            page = open_page(browser, floor, viewport, "zh-CN")
            alarms = floor.open_alarms()  # after the page loaded: the page has at least these
            expect(page.locator("#alarm-count")).to_have_text(str(len(alarms)), timeout=15_000)
            alarms = floor.open_alarms()
            by_sev = Counter(a["severity"] for a in alarms)
            for sev, n in by_sev.items():  # the counts per severity in the header
                expect(page.locator(f'#alarm-sev-counts [data-sev="{sev}"]')).to_have_attribute("data-n", str(n))

            # order: life safety first (a major smoke detector before the critical overloads), then severity
            listed = rows(page)
            assert listed[0]["rule"] == "sup.smoke_offline" and listed[0]["life"] and listed[0]["severity"] == "major"
            keys = [(r["life"], RANK[r["severity"]]) for r in listed]
            assert keys == sorted(keys, reverse=True), listed
            assert sum(r["count"] for r in listed) == len(alarms)
            strips = next(r for r in listed if r["rule"] == "elec.strip_overload")
            assert strips == {"rule": "elec.strip_overload", "severity": "critical", "life": False, "count": 2,
                              "zone": "f3-z1", "group": True}
            offline = next(r for r in listed if r["rule"] == "sup.sensor_offline")
            assert offline["count"] == 3 and offline["zone"] == "f3-z2"

            # the group opens to its alarms, with Chinese headings, no English text, times of the site
            group = page.locator('#alarms li.alarm-group[data-rule="elec.strip_overload"]')
            expect(group.locator(".rule")).to_have_text("插线板过载")
            expect(group.locator("li.alarm")).to_have_count(0)
            group.locator("button.group-toggle").click()
            expect(group.locator("button.group-toggle")).to_have_attribute("aria-expanded", "true")
            items = group.locator("li.alarm")
            expect(items).to_have_count(2)
            overloads = {a["id"]: a for a in alarms if a["rule"] == "elec.strip_overload"}
            assert {int(i) for i in items.evaluate_all("ls => ls.map((l) => l.dataset.id)")} == set(overloads)
            for alarm_id, alarm in overloads.items():
                item = group.locator(f'li.alarm[data-id="{alarm_id}"]')
                expect(item.locator(".rule")).to_have_text("插线板过载")
                expect(item.locator(".meta")).to_contain_text(local(alarm["raised_at"], SITE_TZ))
                meta = item.locator(".meta").inner_text()
                assert local(alarm["raised_at"], ZoneInfo("Europe/London")) not in meta  # not the browser's zone
                assert "T" not in meta.split("·")[1]  # no ISO time
                assert all(not m.isascii() for m in item.locator(".msg").all_inner_texts())  # no English message
            page.screenshot(path=str(artifacts_dir / f"alarm-list-{name}-zh.png"), full_page=name == "phone")
            page.locator(".alarms-card").screenshot(path=str(artifacts_dir / f"alarms-{name}-zh.png"), scale="css")

            # filters: severity, zone, rule family; the header says how many of how many are shown
            page.locator("#filter-severity").select_option("critical")
            expect(page.locator("#alarm-shown")).to_have_text(f"显示 {by_sev['critical']} / {len(alarms)}")
            assert {r["severity"] for r in rows(page)} == {"critical"}
            page.locator("#filter-severity").select_option("")
            page.locator("#filter-zone").select_option("f3-z2")
            assert [(r["rule"], r["count"]) for r in rows(page)] == [
                (rule, n) for rule, n in Counter(a["rule"] for a in alarms if a["zone"] == "f3-z2").items()]
            page.locator("#filter-zone").select_option("")
            page.locator("#filter-family").select_option("sup")
            listed = rows(page)
            assert {r["rule"].split(".")[0] for r in listed} == {"sup"}
            assert sum(r["count"] for r in listed) == sum(1 for a in alarms if a["rule"].startswith("sup."))
            expect(page.locator("#alarm-shown")).to_be_visible()
            page.locator("#filter-family").select_option("")
            expect(page.locator("#alarm-shown")).to_be_hidden()

            # English: the same list with English titles
            page.locator("#lang").click()
            expect(group.locator(".group-toggle .rule")).to_have_text("Strip overloaded")
            expect(page.locator('#alarms li[data-rule="sup.smoke_offline"] .rule').first).to_have_text(
                "Smoke detector offline")
            assert page.errors == []  # type: ignore[attr-defined]
            page.context.close()


def test_times_are_the_sites_for_a_zone_name_an_offset_and_inside_messages(browser: Browser, stack: Stack) -> None:
    """The page's time helpers in the page itself: a site zone given as an IANA name or as an offset (the
    site file allows both), whatever the browser's zone, and ISO times inside a server's message."""
    page = open_stack_page(browser, stack, DESK, "en-GB", mobile=False, timezone="Europe/London")
    at = "2020-01-15T10:00:00Z"
    for tz, shown in (("Asia/Shanghai", "18:00:00"), ("+05:30", "15:30:00"), ("-03:00", "07:00:00")):
        assert page.evaluate("([tz, at]) => { state.tz = tz; return time(at); }", [tz, at]) == shown, tz
    page.evaluate("state.tz = 'Asia/Shanghai'")
    # not today: with the date, and a time after 16:00 UTC is the next day in Shanghai
    text = page.evaluate("localiseTimes('open since 2020-01-15T10:00:00+00:00, seen 2020-01-15T23:30:00Z')")
    assert text == "open since 15/01/2020, 18:00:00, seen 16/01/2020, 07:30:00"
    assert page.errors == []  # type: ignore[attr-defined]
