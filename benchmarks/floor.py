"""A generated floor of about N devices (simulators.floorgen), written where the server can read it,
and the facts the load generator needs: each device's edge and kind."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from simulators.floorgen import dump, generate

DEVICES_PER_SEAT = 1222 / 700
"""floorgen's mix: about 1.75 devices per seat (plugs, strips, detectors, sensors, doors)."""


@dataclass
class Floor:
    site_id: str
    site_file: Path
    devices: int
    by_edge: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """edge -> [(device id, kind)]"""
    detectors: list[tuple[str, str, str]] = field(default_factory=list)
    """(device, edge, zone) of floor smoke detectors, one per zone first."""


def make_floor(devices: int, directory: Path, webhook_port: int | None = None) -> Floor:
    seats = max(8, round(devices / DEVICES_PER_SEAT))
    out = generate(seats)
    site = out.site
    if webhook_port is not None:
        site["contacts"] = {role: [re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{webhook_port}", url) for url in urls]
                            for role, urls in site["contacts"].items()}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "site.yaml"
    path.write_text(dump(site, "benchmark floor"), encoding="utf-8")
    site_id = site["site"]["id"] if isinstance(site["site"], dict) else str(site["site"])
    floor = Floor(site_id, path, len(site["devices"]))
    by_edge: dict[str, list[tuple[str, str]]] = defaultdict(list)
    first_per_zone: list[tuple[str, str, str]] = []
    others: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for d in site["devices"]:
        by_edge[d["edge"]].append((d["id"], d["kind"]))
        if d["kind"] == "smoke_detector":
            item = (d["id"], d["edge"], d["zone"])
            (others if d["zone"] in seen else first_per_zone).append(item)
            seen.add(d["zone"])
    floor.by_edge = dict(by_edge)
    floor.detectors = first_per_zone + others
    return floor
