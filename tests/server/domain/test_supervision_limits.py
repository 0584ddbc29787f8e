"""Issue 13 item 6: supervision uses the catalog's limits (RULES.md §2.3, §2.7) or a device's own
`offline_after_s`; the edge's device_offline (its count of 3 reporting intervals, 90 s for a probe
reporting every 30 s) is a hint, never the decision."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.contract import EventType
from server.domain.site import SiteError
from tests.server.domain.harness import EXAMPLE, Floor, load_site


def solo(device: str, extra: str = "") -> Floor:
    """`device` alone behind its own edge (its silence is not an edge outage), `extra` added to its entry."""
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index(f"{{id: {device}, ")
    end = text.index("}", start)
    entry = text[start:end].replace("edge: edge-f1", "edge: edge-solo").replace("edge: edge-mr", "edge: edge-solo")
    return Floor(site=load_site(text[:start] + entry + extra + text[end:]), supervise=True)


def test_a_probe_the_edge_calls_offline_at_90_s_is_not_offline_at_150_s_and_is_at_200_s() -> None:
    f = solo("mr-probe1")
    f.read("mr-probe1", temperature_c=22.0)
    f.advance(90)
    f.event("mr-probe1", EventType.DEVICE_OFFLINE, detail="silent for 90 s (expected every 30 s)")
    assert not f.is_open("sup.probe_offline", "mr-probe1"), "the edge's word alone is not the decision"
    f.advance(60)  # 150 s of silence: ordinary jitter, still within the catalog's 200 s
    assert not f.is_open("sup.probe_offline", "mr-probe1")
    f.advance(49)
    assert not f.is_open("sup.probe_offline", "mr-probe1")
    f.advance(1)  # 200 s
    assert f.is_open("sup.probe_offline", "mr-probe1")
    f.read("mr-probe1", temperature_c=22.0)
    assert f.cleared("sup.probe_offline", "mr-probe1")


@pytest.mark.parametrize(("device", "rule", "reading"), [
    ("smoke-b1", "sup.smoke_offline", {"smoke": False}),
    ("door-main", "door.egress_controller_offline", {"door_locked": True}),
])
def test_fire_devices_are_offline_at_the_catalogs_200_s_not_at_the_edges_180_s(
        device: str, rule: str, reading: dict[str, bool]) -> None:
    f = solo(device)
    f.read(device, **reading)
    f.advance(180)
    f.event(device, EventType.DEVICE_OFFLINE)
    assert not f.is_open(rule, device)
    f.advance(19)
    assert not f.is_open(rule, device)
    f.advance(1)
    assert f.is_open(rule, device)


def test_a_late_device_offline_after_the_limit_raises_at_once() -> None:
    """The hint makes the limit be checked now: a device silent past it is offline."""
    f = solo("smoke-b1")
    f.read("smoke-b1", smoke=False)
    f.now += timedelta(seconds=250)  # no tick in between: only the edge's event can tell
    f.event("smoke-b1", EventType.DEVICE_OFFLINE)
    assert f.is_open("sup.smoke_offline", "smoke-b1")


def test_a_devices_offline_after_s_replaces_the_catalogs_limit() -> None:
    f = solo("mr-probe1", ", offline_after_s: 300")
    f.read("mr-probe1", temperature_c=22.0)
    f.advance(250)
    assert not f.is_open("sup.probe_offline", "mr-probe1")
    f.advance(50)
    assert f.is_open("sup.probe_offline", "mr-probe1")
    assert f.site.warnings == ["mr-probe1: offline_after_s 300 s > the catalog's 200 s (sup.probe_offline): "
                               "reduced supervision"]
    shorter = solo("smoke-b1", ", offline_after_s: 120")
    shorter.read("smoke-b1", smoke=False)
    shorter.advance(120)
    assert shorter.is_open("sup.smoke_offline", "smoke-b1")
    assert shorter.site.warnings == []


@pytest.mark.parametrize(("value", "says"), [
    ("-5", "offline_after_s: Input should be greater than 0"),
    ("soon", "offline_after_s: Input should be a valid number"),
    ("10", "offline_after_s: 10 s is shorter than the device's reporting_interval_s (30 s)"),
])
def test_a_bad_offline_after_s_is_a_site_file_error_naming_file_line_and_field(value: str, says: str) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("{id: mr-probe1, kind: mr_probe,", f"{{id: mr-probe1, offline_after_s: {value}, "
                        "reporting_interval_s: 30, kind: mr_probe,")
    lines = text.splitlines()
    line = next(n for n, t in enumerate(lines, 1) if "id: mr-probe1," in t)
    with pytest.raises(SiteError) as caught:
        load_site(text)
    message = str(caught.value)
    assert message.startswith(f"{EXAMPLE}:{line}: devices[") and says in message, message
