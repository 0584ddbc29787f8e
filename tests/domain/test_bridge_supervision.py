"""A Zigbee2MQTT bridge (coordinator) that goes offline is one supervision alarm naming the bridge and its
devices, never a fire, and their own offline findings fold into it (issue #17 item 2)."""

from __future__ import annotations

from gateway.contract import Event, EventType, Severity
from server.domain.findings import Finding
from tests.domain.harness import Floor

BRIDGE = "zigbee-f1"
BEHIND = ("smoke-a1", "smoke-a2", "smoke-b1")


def bridge(f: Floor, devices: list[str], online: bool, total: int | None = None) -> list[Finding]:
    return f.call(f.engine.on_bridge("edge-f1", BRIDGE, devices, total or len(devices), online, f.now))


def silent_past_limit(f: Floor) -> None:
    """The detectors behind the bridge are heard once, then fall silent past the catalog's 200 s while the
    other devices keep reporting (the edges are up): the edge's device_offline is then more than a hint."""
    others = [d for d in f.site.devices if d not in BEHIND]
    for device in BEHIND:
        f.read(device, smoke=False)
    for _ in range(21):
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
    # The detectors then stay silent past the catalog's 200 s (the edge's own devices still report), and
    # the edge says each fell silent: folded, no alarm per detector.
    silent_past_limit(f)
    for device in BEHIND:
        f.call(f.engine.on_event(Event(device=device, ts=f.now, type=EventType.DEVICE_OFFLINE), f.now))
    assert not f.raised("sup.smoke_offline")
    assert not f.is_open("sup.gateway_offline", "edge-f1")  # the edge itself is fine
    bridge(f, list(BEHIND), online=True)
    assert f.cleared("sup.gateway_offline", f"edge-f1/{BRIDGE}")


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
