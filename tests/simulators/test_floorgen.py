"""The floor generator: deterministic, realistic size, and readable by the site model and the edge."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from simulators import floorgen
from simulators.model import DEMO_FLOOR, load_floor


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.yaml"))}


def test_same_arguments_same_bytes(tmp_path: Path) -> None:
    assert floorgen.main(["--seats", "200", "--out", str(tmp_path / "a")]) == 0
    assert floorgen.main(["--seats", "200", "--out", str(tmp_path / "b")]) == 0
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_committed_demo_floor_is_the_generator_output(tmp_path: Path) -> None:
    floorgen.main(["--seats", "200", "--out", str(tmp_path)])
    assert _files(tmp_path) == _files(DEMO_FLOOR), (
        "regenerate: python -m simulators.floorgen --seats 200 --out simulators/floors/demo"
    )


def test_demo_floor_has_a_realistic_size() -> None:
    floor = load_floor(DEMO_FLOOR)
    office = [z for z in floor.zones.values() if z.kind == "office"]
    assert 4 <= len(office) <= 6
    assert {z.kind for z in floor.zones.values()} >= {"office", "stairwell", "restroom", "machine_room", "lobby"}
    seats = {d.seat for d in floor.devices.values() if d.kind == "smart_plug" and d.plug_class == "essential"}
    assert len(seats) == 200
    strips = floor.devices_of("strip_meter")
    assert len(strips) >= math.ceil(200 / 4)
    for strip in strips:
        assert 1 <= len(floor.plugs_of_strip(strip.id)) <= 6
    for zone in office:
        assert len(floor.devices_of("smoke_detector", zone.id)) >= 2
        assert floor.devices_of("temp_sensor", zone.id)
    mr = next(z.id for z in floor.zones.values() if z.kind == "machine_room")
    assert floor.devices_of("mr_probe", mr) and floor.devices_of("leak_sensor", mr)
    doors = {d.door_type for d in floor.devices_of("door_controller")}
    assert doors == {"egress", "fire_door", "office", "machine_room"}
    assert 230 <= len(floor.people) <= 280
    assert sum(p.is_visitor for p in floor.people.values()) >= 5
    assert all(p.host in floor.people for p in floor.people.values() if p.is_visitor)
    assert floor.leavers and set(floor.shifts) == {"night", "day", "evening"}
    vendors = {d.vendor for d in floor.devices.values()}
    assert vendors == {"shelly", "tasmota", "zigbee2mqtt", "generic"}
    assert any(d.channel for d in floor.devices.values() if d.vendor == "tasmota")  # multi-outlet strips


def test_two_thousand_seats(tmp_path: Path) -> None:
    out = floorgen.generate(2000)
    seats = {d["seat"] for d in out.site["devices"] if d.get("class") == "essential"}
    assert len(seats) == 2000
    assert len(out.edges) == 8 and len(out.site["floors"]) == 8
    assert 2300 <= len(out.site["people"]) <= 2800
    ids = [d["id"] for d in out.site["devices"]]
    assert len(ids) == len(set(ids))
    badges = [p["badge"] for p in out.site["people"]]
    assert len(badges) == len(set(badges))


def test_site_file_is_valid_for_the_server_model() -> None:
    site_module = pytest.importorskip("server.domain.site")
    text = (DEMO_FLOOR / "site.yaml").read_text(encoding="utf-8")
    site = site_module.parse_site(text, "site.yaml")
    assert len(site.devices) == len(load_floor(DEMO_FLOOR).devices)


def test_edge_files_are_valid_edge_configurations() -> None:
    config = pytest.importorskip("edge.config")
    for path in sorted(DEMO_FLOOR.glob("edge-*.yaml")):
        edge = config.load_config(path)
        assert edge.devices and edge.site == "hq"
