"""sup.gateway_offline (RULES.md §2.7): "Fire devices behind it are treated as sup.smoke_offline per zone."
A machine-room probe is one: its `smoke` is mr.smoke, the machine room's fire alarm (evacuate the room at
once). A machine room whose only smoke sensing is the probe, behind an edge that goes down, is blind: it
must get the zone's sup.smoke_offline (life safety: never silenced or grouped, paged to 机房值班 in a
machine room), not vanish into the edge's one alert to facilities and the shift lead."""

from __future__ import annotations

from server.domain.site import Site
from tests.server.domain.harness import EXAMPLE, Floor, load_site


def probe_only_machine_room() -> Site:
    text = EXAMPLE.read_text(encoding="utf-8")
    line = "  - {id: smoke-mr1, kind: smoke_detector, zone: mr, edge: edge-mr}\n"
    assert line in text
    return load_site(text.replace(line, ""))


def test_a_machine_room_probe_behind_a_down_edge_is_the_zones_smoke_offline() -> None:
    f = Floor(site=probe_only_machine_room(), supervise=True)
    f.advance(1000, step=5)
    assert f.raised("sup.gateway_offline", "edge-mr")
    assert f.is_open("sup.smoke_offline", "mr"), "the machine room's only smoke sensing went blind unannounced"
    f.read("mr-probe1", temperature_c=22.0, humidity_pct=45.0, smoke=False)
    assert f.cleared("sup.gateway_offline", "edge-mr")
    assert f.cleared("sup.smoke_offline", "mr"), "the zone stayed unprotected after its probe came back"
