"""What a warden and a lead see on the live page during a drill, in Debian's chromium against the evacuation
floor of tests/e2e/test_evacuation_e2e.py (real broker, server, edge, door controllers; three people rostered
on the floor all day, none badged in), its zones drawn on the map:

- the roll call says what the API knows: rostered people who never badged are "not accounted for", as loud as
  "still inside", and the all-clear look comes only when nobody is inside or unaccounted for;
- with 48 people unaccounted for (45 more rostered), the counts stay at the top of a phone and the names wait
  behind a tap, which the next polls keep;
- the drill's alarms are marked DRILL / 演练 in the list, the header count and the map, and a real alarm during
  the drill (the door controller that never confirms its release) is not;
- a real alarm in a zone the drill made critical (a detector's fault) colours the zone, its device and the
  floor tab in its own severity: the drill's marking never hides it;
- a push's link (#alarm=N, #evacuation=ev-N) opens its target, in a fresh browser across the sign-in too."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.broker import EmbeddedBroker, free_port
from gateway.contract import Severity
from server.domain.findings import Finding, Transition
from server.settings import Settings
from tests.e2e.test_evacuation_e2e import TOKEN, Floor, _floor
from tests.server.services.conftest import Hook, Smtp, site_yaml
from tests.support.server import RunningServer, serve
from tests.support.wait import wait_for
from tests.web.test_floor_scale import INSIDE_ZONE
from tests.web.test_live_page import FILL, PHONE, open_page

with contextlib.suppress(ImportError):  # the dev extras install it; the browser fixture says when it is missing
    from playwright.sync_api import Browser, Locator, Page, Route, expect

POLYGONS = {"z1": [[0, 0], [10, 0], [10, 8], [0, 8]], "z2": [[10, 0], [20, 0], [20, 8], [10, 8]],
            "mr": [[0, 8], [6, 8], [6, 12], [0, 12]]}


@dataclass
class Mapped:
    """The evacuation floor and the address its page is served at."""

    floor: Floor
    url: str
    server: RunningServer


@pytest.fixture
def mapped(mosquitto: EmbeddedBroker, smtp: Smtp, hook: Hook, tmp_path: Path) -> Iterator[Mapped]:
    yield from _mapped(mosquitto, smtp, hook, tmp_path, extra_rostered=0)


@pytest.fixture
def crowded(mosquitto: EmbeddedBroker, smtp: Smtp, hook: Hook, tmp_path: Path) -> Iterator[Mapped]:
    """The same floor with 45 more operators rostered on it all day: 48 people, none badged in."""
    yield from _mapped(mosquitto, smtp, hook, tmp_path, extra_rostered=45)


@pytest.fixture
def two_floors(mosquitto: EmbeddedBroker, smtp: Smtp, hook: Hook, tmp_path: Path) -> Iterator[Mapped]:
    """The same floor and an empty second one (2F), so the page shows floor tabs."""
    yield from _mapped(mosquitto, smtp, hook, tmp_path, extra_rostered=0, second_floor=True)


def _mapped(mosquitto: EmbeddedBroker, smtp: Smtp, hook: Hook, tmp_path: Path,
            extra_rostered: int, second_floor: bool = False) -> Iterator[Mapped]:
    site = yaml.safe_load(site_yaml(smtp.port, hook.port))
    for zone in site["zones"]:
        zone["polygon"] = POLYGONS[zone["id"]]
    for n in range(1, extra_rostered + 1):
        site["people"].append({"id": f"p-x{n:02d}", "name": f"Operator {n:02d}", "badge": f"X{n:02d}",
                               "roles": ["operator"]})
        site["roster"].append({"person": f"p-x{n:02d}", "shift": "all", "zone": "z1" if n % 2 else "z2"})
    if second_floor:
        site["floors"].append({"id": "f2", "name": "2F"})
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site, allow_unicode=True, sort_keys=False), encoding="utf-8")
    settings = Settings(site_file=site_file, data_dir=tmp_path / "server", mqtt=mosquitto.client_settings(),
                        admin_token=TOKEN, http_port=free_port(), gap_window_s=2)
    with serve(settings, graceful_shutdown_s=None) as server:
        for floor in _floor(server, mosquitto, hook, settings, tmp_path):
            yield Mapped(floor, server.url, server)


def roll(page: Page, key: str) -> Locator:
    return page.locator(f'#evac-roll [data-roll="{key}"]')


def drill_on_a_phone(browser: Browser, mapped: Mapped) -> tuple[Page, str]:
    """A phone's page open on the floor, then a drill of f1 started: the page and the evacuation's id."""
    page = open_page(browser, mapped, PHONE, "en-GB", mobile=True, token=TOKEN)
    started = mapped.floor.client.post("/api/evacuations", json={"floor": "f1", "drill": True})
    assert started.status_code == 201, started.text
    return page, str(started.json()["id"])


def expect_roll(page: Page, accounted: int, inside: int, unknown: int, people: int = 3) -> None:
    expect(roll(page, "accounted")).to_have_text(f"Roll call: out or safe {accounted}/{people}", timeout=15_000)
    expect(roll(page, "inside")).to_have_attribute("data-n", str(inside), timeout=15_000)
    expect(roll(page, "unknown")).to_have_attribute("data-n", str(unknown), timeout=15_000)


def test_roll_call_counts_the_never_badged_as_not_accounted_for_until_they_are(
        browser: Browser, mapped: Mapped, artifacts_dir: Path) -> None:
    floor = mapped.floor
    page, ev = drill_on_a_phone(browser, mapped)
    api_roll = floor.client.get(f"/api/evacuations/{ev}/roll-call").json()
    assert len(api_roll["unknown_on_roster"]) == 3 and api_roll["inside"] == []  # what the page must say

    # nobody badged out: nobody is counted out, all three are not accounted for, no all-clear look
    banner = page.locator("#evac")
    expect(banner).to_be_visible(timeout=15_000)
    expect_roll(page, accounted=0, inside=0, unknown=3)
    expect(roll(page, "unknown")).to_have_text("Not accounted for 3")
    expect(roll(page, "unknown")).to_have_class("roll-count open")  # as loud as "still inside" would be
    expect(banner).to_have_attribute("data-roll-clear", "false")
    expect(roll(page, "clear")).to_have_count(0)
    expect(page.locator('#evac-roll .missing[data-status="unknown"]')).to_have_count(3)
    for missing in page.locator("#evac-roll .missing").all():  # few names: open without a tap
        expect(missing).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "drill-roll-call-unaccounted.png"), full_page=True)
    page.locator("#lang").click()
    expect(roll(page, "unknown")).to_have_text("去向未确认 3")
    expect(roll(page, "inside")).to_have_text("仍在楼内 0")
    page.locator("#lang").click()

    # marked safe one by one (as a warden at the assembly point does): counted out or safe, the rest not
    for n, person in enumerate(("p-op2", "p-op1"), start=1):
        marked = floor.client.post(f"/api/evacuations/{ev}/roll-call/{person}", json={"note": "at the assembly point"})
        assert marked.status_code == 200, marked.text
        expect_roll(page, accounted=n, inside=0, unknown=3 - n)
        expect(banner).to_have_attribute("data-roll-clear", "false")
    expect(page.locator('#evac-roll .missing[data-person="p-lead"]')).to_contain_text("王领班")

    # the last one marked safe: only now the all-clear look
    assert floor.client.post(f"/api/evacuations/{ev}/roll-call/p-lead", json={}).status_code == 200
    expect_roll(page, accounted=3, inside=0, unknown=0)
    expect(roll(page, "clear")).to_have_text("✔ Everyone is out or safe")
    expect(banner).to_have_attribute("data-roll-clear", "true")
    expect(page.locator("#evac-roll .missing")).to_have_count(0)
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_lead_marks_someone_safe_on_the_banner_after_a_confirm_and_the_server_decides_who_may(
        browser: Browser, mapped: Mapped, artifacts_dir: Path) -> None:
    """The roll call's names each have "Mark safe" for an account with `respond` (the permission the route
    checks): a tap asks first (cancel changes nothing), a confirm marks them in the API and the counts follow.
    A lead demoted after the page loaded is refused by the server, and the dialog says so."""
    floor = mapped.floor
    made = floor.client.put("/api/users/lead-1", json={"roles": ["shift_lead"], "service_token": True})
    assert made.status_code == 200, made.text
    page = open_page(browser, mapped, PHONE, "en-GB", mobile=True, token=made.json()["token"])
    started = floor.client.post("/api/evacuations", json={"floor": "f1", "drill": True})
    assert started.status_code == 201, started.text
    ev = str(started.json()["id"])
    expect_roll(page, accounted=0, inside=0, unknown=3)

    def status_of(person: str) -> str:
        people = floor.client.get(f"/api/evacuations/{ev}/roll-call").json()["people"]
        return str(next(p["status"] for p in people if p["person"] == person))

    button = page.locator('#evac-roll .missing[data-person="p-op1"] button.mark-safe')
    expect(button).to_have_text("Mark safe")
    box = button.bounding_box()
    assert box is not None and box["height"] >= 44  # a thumb on a phone, as every other button
    button.click()
    dialog = page.locator("#action-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#action-title")).to_have_text("Mark this person safe?")
    expect(page.locator("#reason-label")).to_have_text("Note (optional)")
    expect(page.locator("#action-alarm")).to_contain_text(
        next(p["name"] for p in floor.client.get(f"/api/evacuations/{ev}/roll-call").json()["people"]
             if p["person"] == "p-op1"))
    page.screenshot(path=str(artifacts_dir / "drill-mark-safe-confirm-phone.png"))
    page.locator("#action-cancel").click()
    expect(dialog).to_be_hidden()
    assert status_of("p-op1") == "unknown"  # the cancel marked nobody
    expect_roll(page, accounted=0, inside=0, unknown=3)

    button.click()
    page.locator("#action-reason").fill("seen at the assembly point")
    page.locator("#action-submit").click()
    expect(dialog).to_be_hidden()
    expect_roll(page, accounted=1, inside=0, unknown=2)
    assert status_of("p-op1") == "safe"
    expect(page.locator('#evac-roll .missing[data-person="p-op1"]')).to_have_count(0)

    # in 中文 the dialog is Chinese throughout (the note's label read "原因 (note)")
    page.locator("#lang").click()
    page.locator('#evac-roll .missing[data-person="p-op2"] button.mark-safe').click()
    expect(page.locator("#action-title")).to_have_text("确认此人已安全?")
    expect(page.locator("#reason-label")).to_have_text("备注(可选)")
    page.locator("#action-cancel").click()
    page.locator("#lang").click()

    # the server decides: a lead demoted to operator while the dialog is open is refused, and it says why
    page.locator('#evac-roll .missing[data-person="p-op2"] button.mark-safe').click()
    expect(dialog).to_be_visible()
    assert floor.client.put("/api/users/lead-1", json={"roles": ["operator"]}).status_code == 200
    page.locator("#action-submit").click()
    expect(page.locator("#action-dialog-error")).to_contain_text("Not allowed")
    page.locator("#action-cancel").click()
    assert status_of("p-op2") == "unknown"
    assert page.errors == []  # type: ignore[attr-defined]


def test_many_unaccounted_names_wait_behind_a_tap_under_counts_that_stay_in_sight(
        browser: Browser, crowded: Mapped, artifacts_dir: Path) -> None:
    floor = crowded.floor
    page, ev = drill_on_a_phone(browser, crowded)
    unknown = floor.client.get(f"/api/evacuations/{ev}/roll-call").json()["unknown_on_roster"]
    assert len(unknown) == 48

    # the counts are in sight at the top of the phone, the 48 names folded under them, the map not far below
    expect_roll(page, accounted=0, inside=0, unknown=48, people=48)
    names = page.locator('#evac-roll [data-roll="names"]')
    expect(names).to_have_attribute("data-n", "48")
    expect(names.locator("summary")).to_have_text("Names (48)")
    assert names.evaluate("e => e.open") is False
    person = page.locator('#evac-roll .missing[data-person="p-x07"]')
    expect(person).to_be_hidden()
    page.evaluate("window.scrollTo(0, 0)")
    for key in ("accounted", "inside", "unknown"):
        expect(roll(page, key)).to_be_in_viewport()
    map_top = page.locator("#map").evaluate("e => e.getBoundingClientRect().top")
    assert map_top < PHONE["height"], "the floor map starts on the first screen"
    page.screenshot(path=str(artifacts_dir / "drill-roll-call-many-phone.png"))

    # a tap shows every one of them (a warden looking for someone must find them), and the next polls keep
    # them open
    names.locator("summary").tap()
    expect(person).to_be_visible()
    expect(person).to_contain_text("Operator 07")
    expect(names.locator(".missing")).to_have_count(48)
    marked = floor.client.post(f"/api/evacuations/{ev}/roll-call/p-x01", json={})
    assert marked.status_code == 200, marked.text
    expect_roll(page, accounted=1, inside=0, unknown=47, people=48)  # redrawn by a poll, still open
    expect(names.locator("summary")).to_have_text("Names (47)")
    expect(person).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "drill-roll-call-many-open-phone.png"), full_page=True)
    # a second tap folds them again, in either language
    names.locator("summary").tap()
    expect(person).to_be_hidden()
    page.locator("#lang").click()
    expect(names.locator("summary")).to_have_text("名单(47 人)")
    expect(roll(page, "unknown")).to_have_text("去向未确认 47")
    expect(person).to_be_hidden()
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_drills_alarms_are_marked_in_the_list_count_and_map_and_a_real_alarm_is_not(
        browser: Browser, mapped: Mapped, artifacts_dir: Path) -> None:
    floor = mapped.floor
    page = open_page(browser, mapped, PHONE, "zh-CN", mobile=True, token=TOKEN)
    assert floor.client.post("/api/evacuations", json={"floor": "f1", "drill": True}).status_code == 201
    assert floor.client.post("/api/fire/z1/report", json={"note": "演练"}).status_code == 200
    # the drill releases every egress door; door-z2-exit never confirms: a real fault, not the drill's
    door = wait_for(lambda: [a for a in floor.alarms() if a["rule"].startswith("door.fire_release")
                             and a["device"] == "door-z2-exit"], timeout=30, what="the unreleased door's alarm")[0]
    assert door["drill"] is False
    alarms = floor.alarms()
    drills = [a for a in alarms if a["drill"]]
    assert {a["rule"] for a in drills} >= {"fire.confirmed", "evac.notice"}, alarms

    expect(page.locator("#alarm-count")).to_have_text(str(len(alarms)), timeout=15_000)
    for a in alarms:
        row = page.locator(f'#alarms li.alarm[data-id="{a["id"]}"]')
        expect(row).to_have_attribute("data-drill", "true" if a["drill"] else "false")
        expect(row.locator(".line1 .drill-tag")).to_have_count(1 if a["drill"] else 0)
    expect(page.locator(f'#alarms li.alarm[data-id="{drills[0]["id"]}"] .drill-tag')).to_have_text("演练")
    count = page.locator("#alarm-drill-count")
    expect(count).to_be_visible()
    expect(count).to_have_text(f"演练 {len(drills)}")
    # the per-severity chips count the drill's apart from the real ones
    real_critical = len([a for a in alarms if a["severity"] == "critical" and not a["drill"]])
    expect(page.locator('#alarm-sev-counts [data-sev="critical"][data-drill="false"]')).to_have_attribute(
        "data-n", str(real_critical))
    expect(page.locator('#alarm-sev-counts [data-sev="critical"][data-drill="true"]')).to_contain_text("演练")

    # the map: z1 is red by the drill alone (hatched, labelled 演练); z2's red is the real door fault
    z1, z2 = (page.locator(f'#map polygon.zone[data-zone="{z}"]') for z in ("z1", "z2"))
    expect(z1).to_have_attribute("data-severity", "critical")
    expect(z1).to_have_attribute("data-drill", "true")
    expect(z1).to_have_css("fill", re.compile("drill-hatch"))  # retried: the map is redrawn as data arrives
    expect(page.locator('#map .zone-label[data-zone="z1"]')).to_contain_text("演练")
    expect(z2).to_have_attribute("data-severity", "critical")
    expect(z2).to_have_attribute("data-drill", "false")
    expect(z2).to_have_css("fill", "rgb(183, 28, 28)")
    expect(page.locator('#map .zone-label[data-zone="z2"]')).not_to_contain_text("演练")
    expect(page.locator('#legend [data-legend="drill"]')).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / "drill-marked-phone.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_real_alarm_keeps_its_colour_and_label_in_a_zone_the_drill_made_critical(
        browser: Browser, two_floors: Mapped, artifacts_dir: Path) -> None:
    floor = two_floors.floor
    page, _ = drill_on_a_phone(browser, two_floors)
    # z2's controller confirms its release this time (as the fixture's z1 does): no real critical on the floor
    wait_for(lambda: [c for c in floor.door_cmds if c[0] == "door-z2-exit" and c[1]["action"] == "release"],
             what="z2's release command")
    floor.device.publish("access/door-z2-exit/state", json.dumps({"door": "closed", "lock": "unlocked"}).encode(),
                         qos=1, retain=True)
    assert floor.client.post("/api/fire/z1/report", json={"note": "drill"}).status_code == 200
    # a real fault during the drill: major, under the drill's critical in the same zone
    floor.device.publish("probe/smoke-z1-02/state", json.dumps({"smoke": False, "detector_fault": True}).encode(),
                         qos=1, retain=True)
    fault = wait_for(lambda: [a for a in floor.alarms() if a["rule"] == "fire.detector_fault"],
                     timeout=30, what="the detector's fault")[0]
    assert fault["drill"] is False and fault["severity"] == "major" and fault["zone"] == "z1", fault
    alarms = floor.alarms()
    assert any(a["drill"] and a["severity"] == "critical" and a["zone"] == "z1" for a in alarms), alarms
    assert not any(not a["drill"] and a["severity"] == "critical" for a in alarms), alarms
    expect(page.locator("#alarm-count")).to_have_text(str(len(alarms)), timeout=15_000)

    # the zone: the real major's colour and label, not the drill's hatching and DRILL CRITICAL
    z1 = page.locator('#map polygon.zone[data-zone="z1"]')
    expect(z1).to_have_attribute("data-severity", "major")
    expect(z1).to_have_attribute("data-drill", "false")
    expect(z1).to_have_css("fill", FILL["major"])  # retried: the map is redrawn as alarms and readings arrive
    label = page.locator('#map .zone-label[data-zone="z1"]')
    expect(label).to_contain_text("MAJOR")
    expect(label).not_to_contain_text("DRILL")
    # its faulty detector's marker and the floor's tab likewise
    marker = page.locator('#map g.device[data-device="smoke-z1-02"]')
    expect(marker).to_have_attribute("data-severity", "major")
    expect(marker).to_have_attribute("data-drill", "false")
    expect(marker.locator(".mark")).to_have_css("fill", FILL["major"])
    tab = page.locator("#floors button", has_text="1F").locator(".sev")
    expect(tab).to_have_text("MAJOR")
    expect(tab).to_have_attribute("data-drill", "false")
    # the zone's detail says so too, and the drill's critical stays in the list, marked; tapped where no
    # marker is (a marker takes the taps of its 24 px disc, and one sits at the zone's centre)
    spot = page.evaluate(INSIDE_ZONE, "z1")
    assert spot is not None, "no clear point inside z1"
    page.mouse.click(spot["x"], spot["y"])
    expect(page.locator('#detail-title .sev')).to_have_text("MAJOR")
    expect(page.locator('#alarms li.alarm[data-drill="true"][data-severity="critical"]').first).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(artifacts_dir / "drill-with-real-major-phone.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_push_link_opens_its_alarm_in_a_fresh_browser_after_sign_in_and_on_hashchange(
        browser: Browser, mapped: Mapped, artifacts_dir: Path) -> None:
    floor = mapped.floor
    started = floor.client.post("/api/evacuations", json={"floor": "f1", "drill": True})
    assert started.status_code == 201, started.text
    notice = wait_for(lambda: [a for a in floor.alarms() if a["rule"] == "evac.notice"], what="evac.notice")[0]
    confirmed = _alarm(floor, "fire.confirmed", lambda: floor.client.post("/api/fire/z1/report", json={}))

    # a fresh browser (no stored token): the sign-in box, then the alarm's detail, with the floor's name
    context = browser.new_context(viewport=PHONE, locale="en-GB", is_mobile=True, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    missing: list[str] = []  # the browser asks for nothing the server lacks (an inline icon, no /favicon.ico)
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
    refused: list[str] = []  # each would be a console error: nothing is asked without a token
    page.on("response", lambda response: refused.append(response.url) if response.status == 401 else None)
    page.goto(f"{mapped.url}/#alarm={notice['id']}")
    expect(page.locator("#login")).to_be_visible()
    # paged for a fire, not signed in yet: nothing on the page may read as all clear, since nothing was read
    page.wait_for_timeout(6_000)  # past the first poll
    for quiet in ("#empty", "#permissions-unknown", "#inspections .ok-text"):
        expect(page.locator(quiet)).to_be_hidden()
    expect(page.locator("#alarm-count")).to_have_text("")
    assert "all clear" not in page.locator("body").inner_text()
    assert refused == []
    page.locator("#token").fill(TOKEN)
    page.locator("#save").click()
    detail = page.locator("#detail")
    expect(detail).to_be_visible(timeout=15_000)
    expect(detail.locator(f'li.alarm[data-id="{notice["id"]}"]')).to_be_visible()
    expect(detail.locator("#detail-title")).to_contain_text("DRILL")
    expect(detail.locator(f'li.alarm[data-id="{notice["id"]}"] .meta')).to_contain_text("1F")  # not "f1"
    expect(page.locator("#detail-title")).to_be_in_viewport()
    expect(page.locator(f'#alarms li.alarm.targeted[data-id="{notice["id"]}"]')).to_have_count(1)
    page.screenshot(path=str(artifacts_dir / "push-link-alarm-phone.png"), full_page=True)
    assert "#" not in page.url  # the link was taken: a reload does not open it again

    # a second link while the page is open (hashchange): that alarm, its zone a tap away
    page.evaluate(f"location.hash = 'alarm={confirmed['id']}'")
    expect(detail.locator(f'li.alarm[data-id="{confirmed["id"]}"]')).to_be_visible(timeout=10_000)
    detail.locator('[data-go="zone"]').click()
    expect(detail.locator("#detail-title")).to_contain_text("坐席区一")
    expect(detail.locator('#detail-title .sev[data-drill="true"]')).to_have_text("DRILL CRITICAL")  # red by the drill

    # an evacuation's link: the banner is its card, scrolled to and highlighted
    page.evaluate(f"location.hash = 'evacuation={started.json()['id']}'")
    expect(page.locator("#evac")).to_have_class("evac targeted")
    expect(page.locator("#evac")).to_be_in_viewport()
    # an alarm that does not exist says so
    assert missing == []
    page.evaluate("location.hash = 'alarm=999999'")
    expect(page.locator("#action-error")).to_contain_text("alarm 999999")
    assert errors == []
    context.close()


def _alarm(floor: Floor, rule: str, cause: Any) -> dict[str, Any]:
    assert cause().status_code == 200
    found: dict[str, Any] = wait_for(lambda: [a for a in floor.alarms() if a["rule"] == rule], what=rule)[0]
    return found


def test_the_banner_stays_with_its_roll_call_while_the_server_cannot_be_reached(
        browser: Browser, mapped: Mapped, artifacts_dir: Path) -> None:
    """A phone that loses the server mid-evacuation (a restart, a lost network, a proxy's 503) keeps the notice
    and the last roll call, says since when they are not updated, and takes up the live ones again."""
    page, ev = drill_on_a_phone(browser, mapped)
    banner = page.locator("#evac")
    expect(banner).to_be_visible(timeout=15_000)
    expect_roll(page, accounted=0, inside=0, unknown=3)
    expect(page.locator("#evac-stale")).to_be_hidden()

    failed: list[str] = []

    def unreachable(route: Route) -> None:
        failed.append(route.request.url)
        route.fulfill(status=503, content_type="application/json", body='{"detail": "restarting"}')

    page.route("**/api/**", unreachable)
    for _ in range(40):  # the route's handler runs only while playwright is called: wait in the page
        if sum("/api/evacuations" in url for url in failed) >= 2:
            break
        page.wait_for_timeout(500)
    assert sum("/api/evacuations" in url for url in failed) >= 2, f"two polls of the evacuation: {failed}"
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("data-evacuation", ev)
    expect(page.locator("#evac-title")).to_have_text("DRILL: evacuation drill in progress")
    expect_roll(page, accounted=0, inside=0, unknown=3)
    stale = page.locator("#evac-stale")
    expect(stale).to_be_visible()
    expect(stale).to_contain_text("not updated since")
    page.screenshot(path=str(artifacts_dir / "drill-banner-unreachable-phone.png"))
    page.locator("#lang").click()
    expect(stale).to_contain_text("后未更新")
    page.locator("#lang").click()

    # the server answers again: the live roll call, no stale note
    page.unroute("**/api/**")
    marked = mapped.floor.client.post(f"/api/evacuations/{ev}/roll-call/p-op1", json={})
    assert marked.status_code == 200, marked.text
    expect_roll(page, accounted=1, inside=0, unknown=2)
    expect(stale).to_be_hidden()
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_real_evacuation_is_never_hidden_behind_a_later_drill_on_another_floor(
        browser: Browser, two_floors: Mapped, artifacts_dir: Path) -> None:
    floor = two_floors.floor
    page = open_page(browser, two_floors, PHONE, "en-GB", mobile=True, token=TOKEN)
    real = floor.client.post("/api/evacuations", json={"floor": "f1", "reason": "smoke seen by a warden"})
    assert real.status_code == 201, real.text
    drill = floor.client.post("/api/evacuations", json={"floor": "f2", "drill": True})
    assert drill.status_code == 201, drill.text
    listed = [e["id"] for e in floor.client.get("/api/evacuations").json() if e["state"] == "active"]
    assert listed == [drill.json()["id"], real.json()["id"]]  # the API lists the drill first: the newest

    banner = page.locator("#evac")
    expect(banner).to_have_attribute("data-evacuation", real.json()["id"], timeout=15_000)
    expect(banner).to_have_attribute("data-drill", "false")
    expect(page.locator("#evac-title")).to_have_text("EVACUATION IN PROGRESS")
    expect(page.locator("#evac-meta")).to_contain_text("1F")
    # the drill is named beside it, marked as one
    also = page.locator("#evac-also")
    expect(also).to_be_visible()
    expect(also).to_contain_text("DRILL 2F")
    # the floor tabs: each floor's evacuation notice (an alarm of the floor, of no zone) colours its tab
    tabs = page.locator("#floors button .sev")
    expect(tabs.nth(0)).to_have_text("CRITICAL")
    expect(tabs.nth(0)).to_have_attribute("data-drill", "false")
    expect(tabs.nth(1)).to_have_text("DRILL CRITICAL")
    page.screenshot(path=str(artifacts_dir / "evacuation-real-and-drill-phone.png"))
    page.locator("#lang").click()
    expect(page.locator("#evac-title")).to_have_text("疏散进行中")
    expect(also).to_contain_text("演练 2F")
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_refused_token_says_sign_in_again_and_claims_nothing_current(
        browser: Browser, mapped: Mapped, artifacts_dir: Path) -> None:
    """A lead's token is revoked (or expires) while the page is open: the header says so instead of "Offline",
    the sign-in box says why, the evacuation stays up marked as not updated, and signing in again goes live."""
    floor = mapped.floor
    made = floor.client.put("/api/users/lead-1", json={"roles": ["shift_lead"], "service_token": True})
    assert made.status_code == 200, made.text
    lead = made.json()["token"]
    page = open_page(browser, mapped, PHONE, "en-GB", mobile=True, token=lead)
    started = floor.client.post("/api/evacuations", json={"floor": "f1", "drill": True})
    assert started.status_code == 201, started.text
    expect_roll(page, accounted=0, inside=0, unknown=3)

    with httpx.Client(base_url=mapped.url, headers={"Authorization": f"Bearer {lead}"}) as as_lead:
        assert as_lead.post("/api/logout").status_code == 204
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "signed_out", timeout=15_000)
    expect(status).to_have_text("Not signed in")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#login-why")).to_have_text("Token invalid or expired — sign in again")
    expect(page.locator("#evac")).to_be_visible()
    expect(page.locator("#evac-stale")).to_contain_text("not updated since")
    expect(page.locator("#empty")).to_be_hidden()
    page.screenshot(path=str(artifacts_dir / "drill-token-refused-phone.png"))
    page.locator("#lang").click()
    expect(status).to_have_text("未登录")
    expect(page.locator("#login-why")).to_have_text("令牌无效或已过期,请重新登录")
    page.locator("#lang").click()

    page.locator("#token").fill(TOKEN)
    page.locator("#save").click()
    expect(status).to_have_attribute("data-state", "live", timeout=15_000)
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator("#evac-stale")).to_be_hidden(timeout=15_000)
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_refused_token_stops_the_inspections_poll(browser: Browser, mapped: Mapped) -> None:
    """docs/live-page.md: after a refused token polling stops; the minute's inspections poll too (it used to
    ask every minute and get 401). The page's clock is run forward rather than waited for."""
    floor = mapped.floor
    made = floor.client.put("/api/users/lead-1", json={"roles": ["shift_lead"], "service_token": True})
    assert made.status_code == 200, made.text
    lead = made.json()["token"]
    asked: list[str] = []
    page = open_page(browser, mapped, PHONE, "en-GB", mobile=True, token=lead,
                     before_load=lambda p: (p.clock.install(), p.on(
                         "request", lambda r: asked.append(r.url) if "/api/inspections" in r.url else None)))
    page.clock.run_for(61_000)
    for _ in range(150):  # Playwright hands over request events only while it is called
        if len(asked) >= 4:  # 2 at the start, 2 a minute later
            break
        page.wait_for_timeout(100)
    assert len(asked) >= 4, f"the inspections poll never ran while signed in: {asked}"
    with httpx.Client(base_url=mapped.url, headers={"Authorization": f"Bearer {lead}"}) as as_lead:
        assert as_lead.post("/api/logout").status_code == 204
    page.clock.run_for(6_000)  # the next 5 s poll meets the refusal
    expect(page.locator("#status")).to_have_attribute("data-state", "signed_out", timeout=15_000)
    before = len(asked)
    page.clock.run_for(125_000)
    page.wait_for_timeout(500)  # let any request it started be seen
    assert asked[before:] == [], "signed out, the page still polled the inspections"
    expect(page.locator("#status")).to_have_attribute("data-state", "signed_out")  # not "Reconnecting…"
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_critical_stays_on_the_page_under_more_than_500_newer_alarms(
        browser: Browser, mapped: Mapped, artifacts_dir: Path) -> None:
    """A floor whose devices all went silent raises hundreds of offline alarms after a critical one: the page
    counts every open alarm (the API's default page is 500) and the critical is in the list and the chips."""
    floor = mapped.floor
    confirmed = _alarm(floor, "fire.confirmed", lambda: floor.client.post("/api/fire/z1/report", json={}))
    now = datetime.now(UTC)
    flood = [Finding("sup.sensor_offline", Transition.RAISE, Severity.WARNING, f"plug-gone-{n:03d}", "z2",
                     "r1", None, "offline", now) for n in range(520)]
    mapped.server.app.state.runtime.alarms.commit(flood, now)  # through the server's own alarm service
    assert len(floor.client.get("/api/alarms?state=open&limit=5000").json()) > 520
    page = open_page(browser, mapped, PHONE, "en-GB", mobile=True, token=TOKEN)
    expect(page.locator("#alarm-count")).not_to_have_text("", timeout=15_000)

    def page_counts_every_open_alarm() -> bool:
        # compared with the API at the same moment: the floor's own devices may raise one more meanwhile
        shown = page.locator("#alarm-count").inner_text()
        return shown == str(len(floor.client.get("/api/alarms?state=open&limit=5000").json()))

    wait_for(page_counts_every_open_alarm, timeout=15, what="the page's count matching the API's open alarms",
             step=0.25)
    expect(page.locator(f'#alarms li.alarm[data-id="{confirmed["id"]}"]')).to_have_count(1)
    expect(page.locator('#alarm-sev-counts .sev[data-sev="critical"]').first).to_be_visible()
    expect(page.locator("#alarms-cut")).to_be_hidden()
    assert page.errors == []  # type: ignore[attr-defined]
