"""The floor map stays legible at scale (issue #16 item 1), in Debian's chromium against a real floor
(tests/web/floors.py: server, edge agent, Tasmota strips, on the 200-seat demo floor and on a 2,000-seat
floor from simulators/floorgen.py), at desk (1366x768) and phone (390x844) size.

The overview colours each zone by its worst state and draws only abnormal devices; a tapped zone fills the
map with all its devices. In both views no two visible markers or labels overlap (boxes measured in the page
with getBoundingClientRect), and a pixel of a screenshot inside the zone in alarm is the critical colour."""

from __future__ import annotations

import contextlib
import struct
import zlib
from pathlib import Path
from typing import Any

from gateway.broker import EmbeddedBroker
from simulators.floorgen import generate, write
from tests.server.services.conftest import Hook
from tests.web.floors import DEMO, OVERLOADED, SILENT_SMOKE, TOKEN, Floor, raise_alarms, running_floor

with contextlib.suppress(ImportError):  # the dev extras install it; the browser fixture says when it is missing
    from playwright.sync_api import Browser, Page, expect

DESK = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
CRITICAL = (0xB7, 0x1C, 0x1C)  # style.css --critical

BOXES = """() => [...document.querySelectorAll('#map .device .mark, #map text.zone-label, #map text.value')]
  .map((e) => { const r = e.getBoundingClientRect();
    return { what: (e.closest('[data-device]') || e).getAttribute('data-device') || e.getAttribute('data-zone'),
             kind: e.classList.contains('mark') ? 'marker' : e.getAttribute('class'),
             x: r.x, y: r.y, w: r.width, h: r.height }; })
  .filter((b) => b.w > 0 && b.h > 0)"""

TARGET_PX = 24
"""WCAG 2.5.8 (target size, minimum): a tap target of at least 24 × 24 CSS px, or a 24 px circle around each
smaller one that touches no other target."""

TARGETS = """(edge) => {
  const marks = [...document.querySelectorAll('#map g.device')].map((g) => {
    const r = g.querySelector('.mark').getBoundingClientRect();
    return { g, id: g.dataset.device, x: r.x + r.width / 2, y: r.y + r.height / 2 }; });
  const missed = [];
  let closest = Infinity;
  for (const [i, m] of marks.entries()) {
    for (const n of marks.slice(i + 1)) closest = Math.min(closest, Math.hypot(m.x - n.x, m.y - n.y));
    for (const [dx, dy] of [[-edge, 0], [edge, 0], [0, -edge], [0, edge]]) {
      const x = m.x + dx, y = m.y + dy;
      if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) continue;
      const hit = document.elementFromPoint(x, y);
      const on = hit && hit.closest('g.device');
      const where = hit ? `${hit.tagName}.${hit.getAttribute('class')}@${on ? on.dataset.device : ''}` : null;
      if (!hit || on !== m.g) missed.push([m.id, dx, dy, where]);
    }
  }
  return { count: marks.length, missed, closest }; }"""


def assert_markers_are_tap_targets(page: Page) -> None:
    """Every marker takes a tap anywhere within 11 px of its centre (a 22 px disc inside its 24 px
    target), and no two markers' centres are closer than 24 px: a thumb hits the device it aimed at."""
    found: dict[str, Any] = page.evaluate(TARGETS, TARGET_PX / 2 - 1)
    assert found["count"] > 0
    missed = found["missed"]
    assert missed == [], f"{len(missed)} taps beside a marker missed it, e.g. {missed[:5]}"
    assert found["closest"] >= TARGET_PX - 0.5, f"two markers {found['closest']:.1f} px apart"


INSIDE_ZONE = """(zone) => {
  const poly = document.querySelector(`#map polygon.zone[data-zone="${zone}"]`);
  const r = poly.getBoundingClientRect();
  for (let j = 1; j < 20; j++) for (let i = 1; i < 20; i++) {
    const x = Math.round(r.x + r.width * i / 20), y = Math.round(r.y + r.height * j / 20);
    if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) continue;
    const hit = document.elementFromPoint(x, y), near = [-3, 0, 3].flatMap((dx) => [-3, 0, 3].map((dy) =>
      document.elementFromPoint(x + dx, y + dy)));
    if (hit === poly && near.every((n) => n === poly)) return { x, y };
  }
  return null; }"""


def pixel(png: bytes) -> tuple[int, int, int]:
    """The top-left pixel of a PNG. Every PNG filter leaves the first pixel of the first row as stored
    (its left, upper and upper-left neighbours are zero), so no unfiltering is needed."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, depth, colour = 8, b"", 0, 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            depth, colour = body[8], body[9]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and colour in (2, 6), f"unexpected PNG format: depth {depth}, colour type {colour}"
    raw = zlib.decompress(idat)
    return raw[1], raw[2], raw[3]  # raw[0] is the first row's filter byte


def assert_nothing_overlaps(page: Page) -> list[dict[str, Any]]:
    boxes: list[dict[str, Any]] = page.evaluate(BOXES)
    clashes = [(a["kind"], a["what"], b["kind"], b["what"]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
               if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
               and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]]
    assert clashes == [], f"{len(clashes)} overlapping pairs, e.g. {clashes[:5]}"
    return boxes


def open_page(browser: Browser, floor: Floor, viewport: dict[str, int], locale: str) -> Page:
    mobile = viewport["width"] < 600
    context = browser.new_context(viewport=viewport, locale=locale, is_mobile=mobile, has_touch=mobile,
                                  device_scale_factor=2 if mobile else 1, timezone_id="Europe/London")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(f"{floor.url}/#token={TOKEN}")
    expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=30_000)
    return page


def check_map(browser: Browser, floor: Floor, viewport: dict[str, int], shots: Path, name: str) -> dict[str, int]:
    """Overview and zone view at one size; returns what was drawn, for the report."""
    page = open_page(browser, floor, viewport, "zh-CN")
    z1 = page.locator('#map polygon.zone[data-zone="f3-z1"]')
    expect(z1).to_have_attribute("data-severity", "critical", timeout=20_000)
    expect(z1).to_have_attribute("data-alarms", "2")
    expect(page.locator('#map polygon.zone[data-zone="f3-z2"]')).to_have_attribute("data-offline", "3", timeout=20_000)
    expect(page.locator('#map polygon.zone[data-zone="f3-z3"]')).to_have_attribute("data-severity", "major")

    # the overview: only abnormal devices, each of those drawn, nothing overlapping
    expect(page.locator('#map [data-device="strip-f3-01"]')).to_have_count(1)
    drawn = page.eval_on_selector_all(
        "#map g.device", "gs => gs.map((g) => [g.dataset.device, g.dataset.severity, g.dataset.online])")
    assert {d for d, _, _ in drawn} == {*OVERLOADED, SILENT_SMOKE, *floor.offline}
    assert all(sev != "none" or online == "false" for _, sev, online in drawn), drawn
    overview = assert_nothing_overlaps(page)
    assert_markers_are_tap_targets(page)
    if viewport is DESK:  # room for the zone's words on a desk; on a phone the colour and the tap tell
        expect(page.locator('#map text.zone-label[data-zone="f3-z1"]')).to_contain_text("紧急")

    # a pixel of the screen inside f3-z1, clear of labels and markers, is the critical colour
    spot = page.evaluate(INSIDE_ZONE, "f3-z1")
    assert spot is not None, "no clear point inside f3-z1"
    sample = pixel(page.screenshot(clip={"x": spot["x"], "y": spot["y"], "width": 1, "height": 1}))
    assert all(abs(a - b) <= 2 for a, b in zip(sample, CRITICAL, strict=True)), f"{sample} is not {CRITICAL}"
    page.screenshot(path=str(shots / f"floor-{name}-overview.png"))
    page.locator(".map-card").screenshot(path=str(shots / f"map-{name}-overview.png"), scale="css")

    # the zone opens: every device of it on the map (or counted), still nothing overlapping
    zone_devices = [d for d in floor.api.get("/api/floor").json()["devices"] if d["zone"] == "f3-z1"]
    page.mouse.click(spot["x"], spot["y"])
    expect(page.locator("#map")).to_have_attribute("data-view", "zone")
    expect(page.locator("#map-zoom")).to_be_visible()
    markers = page.locator("#map g.device").count()
    hidden = int(page.locator("#map").get_attribute("data-hidden") or 0)
    assert markers + hidden == len(zone_devices)
    page.screenshot(path=str(shots / f"floor-{name}-zone.png"))
    page.locator(".map-card").screenshot(path=str(shots / f"map-{name}-zone.png"), scale="css")
    zone = assert_nothing_overlaps(page)
    assert_markers_are_tap_targets(page)
    labels = sum(1 for b in zone if b["kind"] == "value")
    assert labels > 0  # the overloaded strips' readings at least
    expect(page.locator('#map [data-device="strip-f3-01"] text.value')).to_contain_text("13 A")
    page.locator("#map-back").click()
    expect(page.locator("#map")).to_have_attribute("data-view", "floor")
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()
    return {"overview_items": len(overview), "zone_markers": markers, "zone_hidden": hidden,
            "zone_labels": labels}


def test_demo_floor_map_is_legible_on_desk_and_phone(browser: Browser, mosquitto: EmbeddedBroker, hook: Hook,
                                                     tmp_path: Path, artifacts_dir: Path) -> None:
    with running_floor(mosquitto, hook.port, tmp_path, DEMO) as floor:
        raise_alarms(floor, mosquitto, DEMO)
        for viewport, name in ((DESK, "demo-desk"), (PHONE, "demo-phone")):
            print(name, check_map(browser, floor, viewport, artifacts_dir, name))


def test_2000_seat_floor_map_is_legible_on_desk_and_phone(browser: Browser, mosquitto: EmbeddedBroker, hook: Hook,
                                                          tmp_path: Path, artifacts_dir: Path) -> None:
    site_dir = tmp_path / "floor2000"
    write(generate(2000), site_dir, 2000, 1)
    run = tmp_path / "run"
    run.mkdir()
    with running_floor(mosquitto, hook.port, run, site_dir) as floor:
        raise_alarms(floor, mosquitto, site_dir)
        assert len(floor.api.get("/api/floor").json()["devices"]) > 3000
        for viewport, name in ((DESK, "2000-desk"), (PHONE, "2000-phone")):
            print(name, check_map(browser, floor, viewport, artifacts_dir, name))


def test_a_zone_with_more_offline_devices_than_room_counts_the_rest_without_piling_them_up(
        browser: Browser, mosquitto: EmbeddedBroker, hook: Hook, tmp_path: Path, artifacts_dir: Path) -> None:
    """All 50 seat plugs of f3-z2 silent (as in a partial outage): on a phone the overview has no room for
    50 markers in the zone; it draws what fits, counts the rest, and the zone still says 50 offline."""
    with running_floor(mosquitto, hook.port, tmp_path, DEMO, offline_plugs=100) as floor:
        assert len(floor.offline) == 50
        raise_alarms(floor, mosquitto, DEMO)
        for viewport, name in ((PHONE, "crowded-phone"), (DESK, "crowded-desk")):
            page = open_page(browser, floor, viewport, "en-GB")
            z2 = page.locator('#map polygon.zone[data-zone="f3-z2"]')
            expect(z2).to_have_attribute("data-offline", "50", timeout=20_000)
            drawn = page.eval_on_selector_all("#map g.device", "gs => gs.map((g) => g.dataset.device)")
            hidden = int(z2.get_attribute("data-hidden") or 0)
            in_z2 = [d for d in drawn if d in floor.offline]
            assert len(in_z2) + hidden == 50
            print(name, {"offline_markers": len(in_z2), "counted_not_drawn": hidden})
            if viewport is PHONE:
                assert hidden > 0  # no room for 50 markers in a 70-pixel-wide zone
            assert_nothing_overlaps(page)
            assert_markers_are_tap_targets(page)
            page.screenshot(path=str(artifacts_dir / f"floor-{name}-overview.png"))
            spot = page.evaluate(INSIDE_ZONE, "f3-z2")
            assert spot is not None
            page.mouse.click(spot["x"], spot["y"])  # the zone view has room for every device
            expect(page.locator("#map")).to_have_attribute("data-view", "zone")
            devices = [d for d in floor.api.get("/api/floor").json()["devices"] if d["zone"] == "f3-z2"]
            expect(page.locator("#map g.device")).to_have_count(len(devices))
            expect(page.locator("#map")).to_have_attribute("data-hidden", "0")
            assert_nothing_overlaps(page)
            assert_markers_are_tap_targets(page)
            page.screenshot(path=str(artifacts_dir / f"floor-{name}-zone.png"))
            assert page.errors == []  # type: ignore[attr-defined]
            page.context.close()
