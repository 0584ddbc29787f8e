"""A Zigbee2MQTT bridge (coordinator) that goes offline is one supervision alarm naming the bridge and its
devices, never a fire, and their own offline findings fold into it (issue #17 item 2), except smoke detectors:
their zones become one sup.smoke_offline each, as behind a down edge (RULES.md §2.7). When the bridge is back,
or a device reports, the device is supervised on its own again."""

from __future__ import annotations

from gateway.contract import Event, EventType, Severity
from server.domain.findings import Finding
from tests.server.domain.harness import Floor

BRIDGE = "zigbee-f1"
BEHIND = ("smoke-a1", "smoke-a2", "smoke-b1")


def bridge(f: Floor, devices: list[str], online: bool, total: int | None = None) -> list[Finding]:
    return f.call(f.engine.on_bridge("edge-f1", BRIDGE, devices, total or len(devices), online, f.now))


def silent_past_limit(f: Floor) -> None:
    """The detectors behind the bridge stay silent (their silence starts at the engine's first tick) past the
    catalog's 200 s while the other devices keep reporting (the edges are up)."""
    others_report(f, 210)


def others_report(f: Floor, seconds: int, quiet: tuple[str, ...] = BEHIND) -> None:
    """`seconds` pass with every device but `quiet` reporting every 10 s (the edges are up)."""
    others = [d for d in f.site.devices if d not in quiet]
    for _ in range(seconds // 10):
        f.advance(10)
        for device in others:
            f.read(device)


def test_one_alarm_per_bridge_naming_its_devices_and_never_a_fire() -> None:
    f = Floor(supervise=True)
    bridge(f, ["smoke-a1", "smoke-a2"], online=False, total=3)
    bridge(f, ["smoke-b1"], online=False, total=3)  # the rest of a long list, in a second event
    raised = f.raised("sup.gateway_offline", f"edge-f1/{BRIDGE}")
    assert len(raised) == 1 and raised[0].severity is Severity.MAJOR
    assert f.severity("sup.gateway_offline", f"edge-f1/{BRIDGE}") is Severity.MAJOR
    assert not [x for x in f.findings if x.rule.startswith("fire.")]
    assert not f.raised("sup.smoke_offline")  # within the catalog's 200 s: not yet offline
    # The detectors then stay silent past the catalog's 200 s (the edge's own devices still report), and
    # the edge says each fell silent: no alarm per detector, one sup.smoke_offline per zone.
    silent_past_limit(f)
    for device in BEHIND:
        f.call(f.engine.on_event(Event(device=device, ts=f.now, type=EventType.DEVICE_OFFLINE), f.now))
    assert sorted(x.subject for x in f.raised("sup.smoke_offline")) == ["ops-a", "ops-b"]
    assert f.severity("sup.smoke_offline", "ops-a") is Severity.MAJOR
    assert f.severity("sup.smoke_offline", "ops-b") is Severity.MAJOR
    assert f.raised("sup.smoke_offline", "ops-a")[0].message.startswith(
        f"Detectors of the zone offline behind Zigbee bridge edge-f1/{BRIDGE}: ")
    assert not f.is_open("sup.gateway_offline", "edge-f1")  # the edge itself is fine
    bridge(f, list(BEHIND), online=True)
    assert f.cleared("sup.gateway_offline", f"edge-f1/{BRIDGE}")
    assert f.cleared("sup.smoke_offline", "ops-a") and f.cleared("sup.smoke_offline", "ops-b")


def test_a_zone_unprotected_behind_a_bridge_is_critical_next_to_a_fire() -> None:
    f = Floor(supervise=True)
    bridge(f, ["smoke-a1", "smoke-a2"], online=False)
    others_report(f, 200, quiet=("smoke-a1", "smoke-a2"))
    assert f.severity("sup.smoke_offline", "ops-a") is Severity.MAJOR
    f.read("smoke-b1", smoke=True)  # ops-b is next to ops-a
    assert f.severity("sup.smoke_offline", "ops-a") is Severity.CRITICAL
    assert not f.raised("sup.smoke_offline", "smoke-a1") and not f.raised("sup.smoke_offline", "smoke-a2")


def test_a_detector_already_offline_when_its_bridge_goes_down_becomes_its_zones_alarm() -> None:
    f = Floor(supervise=True)
    f.read("smoke-b1", smoke=False)
    others_report(f, 200, quiet=("smoke-b1",))
    assert f.is_open("sup.smoke_offline", "smoke-b1")
    bridge(f, ["smoke-b1"], online=False)
    assert not f.is_open("sup.smoke_offline", "smoke-b1")
    assert f.is_open("sup.smoke_offline", "ops-b")


def test_the_zone_alarm_clears_when_the_zones_detectors_report() -> None:
    f = Floor(supervise=True)
    bridge(f, list(BEHIND), online=False)
    silent_past_limit(f)
    assert f.is_open("sup.smoke_offline", "ops-a") and f.is_open("sup.smoke_offline", "ops-b")
    f.read("smoke-a1", smoke=False)
    assert f.is_open("sup.smoke_offline", "ops-a"), "smoke-a2 is still lost behind the bridge"
    f.read("smoke-a2", smoke=False)
    assert f.cleared("sup.smoke_offline", "ops-a")
    assert f.is_open("sup.smoke_offline", "ops-b")
    assert f.is_open("sup.gateway_offline", f"edge-f1/{BRIDGE}")  # smoke-b1 has not reported
    f.read("smoke-b1", smoke=False)
    assert f.cleared("sup.smoke_offline", "ops-b")
    assert f.cleared("sup.gateway_offline", f"edge-f1/{BRIDGE}"), "every device behind it reports"


def test_a_detector_still_silent_when_its_bridge_is_back_is_offline_on_its_own() -> None:
    f = Floor(supervise=True)
    bridge(f, list(BEHIND), online=False)
    silent_past_limit(f)
    f.read("smoke-a1", smoke=False)
    f.read("smoke-b1", smoke=False)
    bridge(f, list(BEHIND), online=True)
    assert f.is_open("sup.smoke_offline", "smoke-a2"), "silent past its limit: its own alarm at once"
    assert f.cleared("sup.smoke_offline", "ops-a")
    # smoke-a1 and smoke-b1 spoke just before: their timers run again and fire at the catalog's 200 s.
    others_report(f, 190, quiet=BEHIND)
    assert not f.is_open("sup.smoke_offline", "smoke-a1")
    others_report(f, 10, quiet=BEHIND)
    assert f.is_open("sup.smoke_offline", "smoke-a1") and f.is_open("sup.smoke_offline", "smoke-b1")


def test_a_detector_that_reports_during_the_outage_is_supervised_alone_again() -> None:
    f = Floor(supervise=True)
    bridge(f, ["smoke-a1", "smoke-a2"], online=False)
    f.read("smoke-a1", smoke=False)  # it reports, so it is not lost behind the bridge
    others_report(f, 200, quiet=("smoke-a1", "smoke-a2"))
    assert f.is_open("sup.smoke_offline", "smoke-a1"), "silent 200 s after it reported: its own alarm"
    assert not f.is_open("sup.smoke_offline", "smoke-a2")  # still behind the down bridge: its zone's alarm
    assert f.is_open("sup.smoke_offline", "ops-a")
    assert f.is_open("sup.gateway_offline", f"edge-f1/{BRIDGE}")


def test_the_message_names_the_bridge_and_its_devices() -> None:
    f = Floor(supervise=True)
    [found] = bridge(f, ["smoke-a1", "smoke-a2"], online=False, total=3)
    assert found.message == ("Zigbee bridge zigbee-f1 on edge edge-f1 offline: its devices are unsupervised "
                             "(smoke-a1, smoke-a2; 3 devices in all)")


def test_a_detector_not_behind_the_bridge_is_still_supervised_alone() -> None:
    f = Floor(supervise=True)
    bridge(f, ["smoke-a1"], online=False)
    silent_past_limit(f)
    f.call(f.engine.on_event(Event(device="smoke-b1", ts=f.now, type=EventType.DEVICE_OFFLINE), f.now))
    assert f.raised("sup.smoke_offline", "smoke-b1")
    assert not f.raised("sup.smoke_offline", "smoke-a1")


def test_the_folded_devices_survive_a_restart() -> None:
    f = Floor(supervise=True)
    bridge(f, ["smoke-a1"], online=False)
    restarted = Floor(supervise=True)
    restarted.engine.restore(f.engine.snapshot())
    restarted.findings.clear()
    restarted.call(restarted.engine.on_event(
        Event(device="smoke-a1", ts=restarted.now, type=EventType.DEVICE_OFFLINE), restarted.now))
    assert not restarted.raised("sup.smoke_offline")
    bridge(restarted, ["smoke-a1"], online=True)
    assert restarted.cleared("sup.gateway_offline", f"edge-f1/{BRIDGE}")


def test_the_online_an_edge_reports_at_start_up_changes_nothing_for_a_bridge_that_was_up() -> None:
    f = Floor(supervise=True)
    assert bridge(f, list(BEHIND), online=True) == []
    silent_past_limit(f)  # the detectors' own timers still run: each is offline on its own
    assert sorted(x.subject for x in f.raised("sup.smoke_offline")) == list(BEHIND)


def test_an_edge_coming_back_leaves_the_zone_of_detectors_still_behind_a_down_bridge_open() -> None:
    f = Floor(supervise=True)
    bridge(f, ["smoke-a1", "smoke-a2"], online=False)
    others_report(f, 200, quiet=("smoke-a1", "smoke-a2"))
    assert f.is_open("sup.smoke_offline", "ops-a")
    f.call(f.engine.on_edge_status("edge-f1", False, f.now))
    f.call(f.engine.on_edge_status("edge-f1", True, f.now))
    others_report(f, 10, quiet=("smoke-a1", "smoke-a2"))
    assert not f.cleared("sup.smoke_offline", "ops-a"), "its detectors are still lost behind the bridge"
    assert len(f.raised("sup.smoke_offline", "ops-a")) == 1
