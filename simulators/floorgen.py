"""Deterministic generator of demo floors: `python -m simulators.floorgen --seats 200 --out DIR`.

Writes, for N seats (one floor per up to 250 seats, floors f3, f4, ...):

- `site.yaml`       the site model (server/domain/site.py shape): site, floors, zones with polygons,
                    devices (kind, zone, edge, rated_a, strip, essential, cuttable, class, seat, door_type,
                    heartbeat/reporting intervals), people with badges and roles, shifts, roster, contacts
- `edge-<floor>.yaml` the edge agent configuration per floor: site, edge, uplink, floor_broker, buffer,
                    batch, interlocks and the device list with each device's vendor dialect and address
- `hr.yaml`         leavers (revoked badges) and visitor approvals, which the site model does not hold

Per floor: 4-6 office zones of ~50 seats; one strip meter per 4 seats with the 4 seat plugs and a spare
non-essential plug registered on it (the last office zone uses 4-outlet metered Tasmota strips instead);
a printer per office zone; smoke detectors (one per ~75 m2), temperature/humidity sensors and a siren per
zone; a lobby with reception, a stairwell behind a fire door, restrooms, a machine room with two inlet
probes, a leak sensor and a smoke detector; egress doors, office doors, manual call points. People: ~1.25
per seat (three 8-hour shifts: night 00-08, day 08-16, evening 16-24), shift leads, supervisors, machine-room
duty, facilities, visitors with hosts, and a few leavers whose badges are revoked.

The same arguments always give byte-identical files (seeded RNG, fixed reference date).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

SEATS_PER_FLOOR = 250
SEATS_PER_ZONE = 50
SEATS_PER_STRIP = 4
FLOOR_W, FLOOR_H = 72.0, 40.0  # metres; office zones split the width, services take a 10 m band

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红波辉鹏飞宇浩凯丹琳雪梅晨阳欣怡子涵佳琪俊宏"


@dataclass
class Output:
    site: dict[str, Any]
    edges: dict[str, dict[str, Any]]
    hr: dict[str, Any]


@dataclass
class _Ctx:
    rng: random.Random
    site_id: str
    day: date
    devices: list[dict[str, Any]] = field(default_factory=list)
    edge_devices: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    people: list[dict[str, Any]] = field(default_factory=list)
    roster: list[dict[str, Any]] = field(default_factory=list)
    leavers: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    badge_no: int = 100000
    visitor_no: int = 90000
    person_no: int = 0

    def mac(self, key: str) -> str:
        """A stable fake MAC suffix (Shelly ids and Tasmota topics carry one)."""
        return hashlib.sha256(f"{self.site_id}:{key}".encode()).hexdigest()[:12]

    def add(self, edge: str, site_entry: dict[str, Any], edge_entry: dict[str, Any]) -> None:
        """Register a device in the site model and, with its dialect, in its edge's configuration."""
        self.devices.append({**site_entry, "edge": edge})
        entry: dict[str, Any] = {k: site_entry[k] for k in ("id", "kind", "zone") if k in site_entry}
        entry.update(edge_entry)
        # edge/config.py DeviceConfig: rated_a only on metered kinds; cuttable xor essential
        for key in ("rated_a", "cuttable", "essential", "strip", "siren", "door_type"):
            value = site_entry.get(key, edge_entry.get(key))
            if value not in (None, False):
                entry[key] = value
        interval = site_entry.get("reporting_interval_s", site_entry.get("heartbeat_s"))
        if interval is not None:
            entry["reporting_interval_s"] = interval
        entry.pop("siren_of_zone", None)
        self.edge_devices.setdefault(edge, []).append(entry)

    def name(self) -> str:
        return self.rng.choice(SURNAMES) + "".join(self.rng.choice(GIVEN) for _ in range(self.rng.choice((1, 2))))

    def person(self, prefix: str, roles: list[str], **extra: Any) -> str:
        self.person_no += 1
        pid = f"{prefix}-{self.person_no:05d}"
        if extra.pop("visitor", False):
            self.visitor_no += 1
            badge = f"V{self.visitor_no}"
            entry: dict[str, Any] = {
                "id": pid,
                "name": self.name(),
                "badge": badge,
                "is_visitor": True,
                **extra,
            }
        else:
            self.badge_no += 1
            entry = {"id": pid, "name": self.name(), "badge": f"B{self.badge_no}", "roles": roles, **extra}
        self.people.append(entry)
        return pid


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    x0, y0, x1, y1 = float(x0), float(y0), float(x1), float(y1)
    return [
        [round(x0, 1), round(y0, 1)],
        [round(x1, 1), round(y0, 1)],
        [round(x1, 1), round(y1, 1)],
        [round(x0, 1), round(y1, 1)],
    ]


def _zigbee(name: str) -> dict[str, Any]:
    return {"vendor": "zigbee2mqtt", "address": name}


def _floor(ctx: _Ctx, number: int, seats: int, zones_out: list[dict[str, Any]]) -> str:
    fid = f"f{number}"
    edge = f"edge-{fid}"
    n_zones = max(4, min(6, round(seats / SEATS_PER_ZONE)))
    office_h = FLOOR_H - 10.0
    zone_w = FLOOR_W / n_zones
    office_zones = [f"{fid}-z{i + 1}" for i in range(n_zones)]
    for i, zid in enumerate(office_zones):
        zones_out.append(
            {
                "id": zid,
                "name": f"{fid.upper()} 坐席区 {i + 1}",
                "floor": fid,
                "kind": "office",
                "hvac_mode": "heating",
                "polygon": _rect(i * zone_w, 0, (i + 1) * zone_w, office_h),
                "adjacent": [z for j, z in enumerate(office_zones) if abs(i - j) == 1],
            }
        )
    services = [
        ("lobby", "前台大厅", "lobby", 0.0, 20.0),
        ("stair", "楼梯间", "stairwell", 20.0, 28.0),
        ("wc", "卫生间", "restroom", 28.0, 40.0),
        ("mr", "机房", "machine_room", 40.0, 56.0),
    ]
    for key, label, kind, x0, x1 in services:
        zones_out.append(
            {
                "id": f"{fid}-{key}",
                "name": f"{fid.upper()} {label}",
                "floor": fid,
                "kind": kind,
                "polygon": _rect(x0, office_h, x1, FLOOR_H),
                "adjacent": [office_zones[min(int(x0 // zone_w), n_zones - 1)]],
            }
        )

    # --- seats, strips, plugs
    per_zone = [seats // n_zones + (1 if i < seats % n_zones else 0) for i in range(n_zones)]
    seat_ids: list[tuple[str, str]] = []  # (seat, zone)
    strip_no = 0
    seat_no = 0
    for zi, zid in enumerate(office_zones):
        tasmota_zone = zi == n_zones - 1  # the last zone runs metered 4-outlet Tasmota strips
        zone_seats = [f"{fid}-s{seat_no + k + 1:03d}" for k in range(per_zone[zi])]
        seat_no += per_zone[zi]
        seat_ids += [(s, zid) for s in zone_seats]
        for g in range(0, len(zone_seats), SEATS_PER_STRIP):
            strip_no += 1
            group = zone_seats[g : g + SEATS_PER_STRIP]
            strip = f"strip-{fid}-{strip_no:02d}"
            topic = f"{fid}-strip-{strip_no:02d}"
            ctx.add(
                edge,
                {"id": strip, "kind": "strip_meter", "zone": zid, "rated_a": 10, "reporting_interval_s": 10},
                {"vendor": "tasmota", "address": topic},
            )
            for k, seat in enumerate(group):
                plug = f"plug-{seat}"
                site = {
                    "id": plug,
                    "kind": "smart_plug",
                    "zone": zid,
                    "rated_a": 10,
                    "strip": strip,
                    "class": "essential",
                    "essential": True,
                    "cuttable": False,
                    "seat": seat,
                    "reporting_interval_s": 10,
                }
                if tasmota_zone:
                    ctx.add(edge, site, {"vendor": "tasmota", "address": topic, "channel": k + 1})
                else:
                    ctx.add(edge, site, {"vendor": "shelly", "address": f"shellyplusplugs-{ctx.mac(plug)}"})
            if not tasmota_zone:
                spare = f"plug-{strip}-spare"
                ctx.add(
                    edge,
                    {
                        "id": spare,
                        "kind": "smart_plug",
                        "zone": zid,
                        "rated_a": 10,
                        "strip": strip,
                        "class": "non_essential",
                        "essential": False,
                        "cuttable": True,
                        "seat": group[0],
                        "reporting_interval_s": 10,
                    },
                    {"vendor": "shelly", "address": f"shellyplusplugs-{ctx.mac(spare)}"},
                )
            if g == 0 and not tasmota_zone:
                printer = f"plug-{zid}-printer"
                ctx.add(
                    edge,
                    {
                        "id": printer,
                        "kind": "smart_plug",
                        "zone": zid,
                        "rated_a": 10,
                        "strip": strip,
                        "class": "printer",
                        "essential": False,
                        "cuttable": False,
                        "reporting_interval_s": 10,
                    },
                    {"vendor": "shelly", "address": f"shellyplusplugs-{ctx.mac(printer)}"},
                )

    # --- fire, environment, sirens
    zone_area = zone_w * office_h
    for zid in office_zones:
        short = zid.split("-", 1)[1]
        for k in range(max(2, math.ceil(zone_area / 75.0))):
            name = f"{fid}_{short}_smoke_{k + 1}"
            ctx.add(
                edge,
                {"id": f"smoke-{zid}-{k + 1:02d}", "kind": "smoke_detector", "zone": zid, "heartbeat_s": 60},
                {**_zigbee(name), "siren": f"siren-{zid}"},
            )
        for k, location in enumerate(("ceiling", "strip")):
            ctx.add(
                edge,
                {
                    "id": f"temp-{zid}-{k + 1:02d}",
                    "kind": "temp_sensor",
                    "zone": zid,
                    "location_type": location,
                    "reporting_interval_s": 60,
                },
                _zigbee(f"{fid}_{short}_temp_{k + 1}"),
            )
        ctx.add(
            edge,
            {"id": f"siren-{zid}", "kind": "siren", "zone": zid, "reporting_interval_s": 600},
            _zigbee(f"{fid}_{short}_siren"),
        )
    for key in ("lobby", "stair", "wc", "mr"):
        zid = f"{fid}-{key}"
        ctx.add(
            edge,
            {"id": f"smoke-{zid}-01", "kind": "smoke_detector", "zone": zid, "heartbeat_s": 60},
            {**_zigbee(f"{fid}_{key}_smoke_1"), "siren": f"siren-{fid}-lobby"},
        )
    ctx.add(
        edge,
        {
            "id": f"temp-{fid}-lobby-01",
            "kind": "temp_sensor",
            "zone": f"{fid}-lobby",
            "location_type": "ceiling",
            "reporting_interval_s": 60,
        },
        _zigbee(f"{fid}_lobby_temp_1"),
    )
    ctx.add(
        edge,
        {"id": f"siren-{fid}-lobby", "kind": "siren", "zone": f"{fid}-lobby", "reporting_interval_s": 600},
        _zigbee(f"{fid}_lobby_siren"),
    )
    # --- machine room
    mr = f"{fid}-mr"
    for k in (1, 2):
        ctx.add(
            edge,
            {"id": f"mr-{fid}-probe-{k}", "kind": "mr_probe", "zone": mr, "reporting_interval_s": 30},
            {"vendor": "generic", "address": f"{fid}-mr-inlet-{k}"},
        )
    ctx.add(
        edge,
        {"id": f"leak-{fid}-mr-1", "kind": "leak_sensor", "zone": mr, "reporting_interval_s": 60},
        _zigbee(f"{fid}_mr_leak_ups"),
    )
    # --- doors and call points
    doors = [
        (f"door-{fid}-main", f"{fid}-lobby", "egress", "generic", f"acu-{fid}-main"),
        (f"door-{fid}-exit-e", office_zones[-1], "egress", "generic", f"acu-{fid}-exit-e"),
        (f"door-{fid}-stair", f"{fid}-stair", "fire_door", "zigbee2mqtt", f"{fid}_stair_firedoor"),
        (f"door-{fid}-office-1", office_zones[0], "office", "generic", f"acu-{fid}-office-1"),
        (f"door-{fid}-office-2", office_zones[1], "office", "generic", f"acu-{fid}-office-2"),
        (f"door-{fid}-mr", mr, "machine_room", "generic", f"acu-{fid}-mr"),
    ]
    for did, zid, door_type, vendor, address in doors:
        ctx.add(
            edge,
            {
                "id": did,
                "kind": "door_controller",
                "zone": zid,
                "door_type": door_type,
                "essential": door_type == "egress",
                "reporting_interval_s": 60,
            },
            {"vendor": vendor, "address": address},
        )
    for did, zid in ((f"mcp-{fid}-main", f"{fid}-lobby"), (f"mcp-{fid}-exit-e", office_zones[-1])):
        ctx.add(
            edge,
            {"id": did, "kind": "manual_call_point", "zone": zid, "reporting_interval_s": 300},
            {"vendor": "generic", "address": did},
        )

    # --- people and roster: agents share seats across the three shifts
    shares = (("day", 0.70), ("evening", 0.30), ("night", 0.10))
    for shift, share in shares:
        for seat, zid in seat_ids[: round(len(seat_ids) * share)]:
            pid = ctx.person("p", ["operator"])
            ctx.roster.append({"person": pid, "shift": shift, "seat": seat, "zone": zid})
    for shift, _share in shares:
        for zid in office_zones:
            pid = ctx.person("p", ["shift_lead"])
            ctx.roster.append({"person": pid, "shift": shift, "zone": zid, "lead": True})
        sup = ctx.person("p", ["supervisor"])
        ctx.roster.append({"person": sup, "shift": shift, "zone": office_zones[0]})
        duty = ctx.person("p", ["mr_duty", "it"], mr_access=True)  # machine-room duty is IT: the backup check
        ctx.roster.append({"person": duty, "shift": shift, "zone": mr})
    for shift in ("day", "evening"):
        rec = ctx.person("p", ["reception"])  # the role name the escort rule knows
        ctx.roster.append({"person": rec, "shift": shift, "zone": f"{fid}-lobby"})
    return edge


def generate(seats: int, seed: int = 1, site_id: str = "hq", day: date = date(2026, 11, 30)) -> Output:
    """Build the floor files for `seats` seats; pure function of its arguments."""
    if seats < 8:
        raise ValueError("at least 8 seats")
    ctx = _Ctx(random.Random(f"floorgen:{seed}:{seats}"), site_id, day)
    n_floors = math.ceil(seats / SEATS_PER_FLOOR)
    floors: list[dict[str, Any]] = []
    zones: list[dict[str, Any]] = []
    edges: list[str] = []
    remaining = seats
    for i in range(n_floors):
        count = remaining // (n_floors - i)
        remaining -= count
        floors.append({"id": f"f{3 + i}", "name": f"{3 + i}F"})
        edges.append(_floor(ctx, 3 + i, count, zones))

    # --- site-wide people: management, safety, facilities, visitors, leavers
    manager = ctx.person("p", ["manager", "department_head", "emergency_command"])
    heads = [ctx.person("p", ["department_head"]) for _ in range(2)]
    safety = [ctx.person("p", ["safety_officer", "on_site_command"]) for _ in range(2)]
    ctx.person("p", ["facilities", "logistics"])
    ctx.person("p", ["facilities", "electrician", "facility_manager"])  # the facility inspections are theirs
    ctx.person("p", ["information_reporting"])
    hosts = [manager, *heads]
    for k in range(max(4, seats // 20)):
        host = hosts[k % len(hosts)]
        visitor = ctx.person("v", [], visitor=True, host=host)
        start_h = 9 + k % 6  # local wall-clock times, written without offset like the site's shifts
        ctx.approvals.append(
            {
                "visitor": visitor,
                "approved_by": host,
                "from": f"{day.isoformat()}T{start_h:02d}:00:00",
                "until": f"{day.isoformat()}T{start_h + 3:02d}:00:00",
            }
        )
    for _k in range(max(2, seats // 60)):
        leaver = ctx.person("p", ["operator"])
        left = day - timedelta(days=3)
        left_at = f"{left.isoformat()}T18:00:00"
        ctx.leavers.append({"person": leaver, "left_at": left_at, "badge_collected": False})

    site: dict[str, Any] = {
        "site": {"id": site_id, "name": "Floorwatch demo contact center", "timezone": "Asia/Shanghai"},
        "floors": floors,
        "zones": zones,
        "devices": ctx.devices,
        "people": ctx.people,
        "roles": {"emergency_command": [manager, *safety[:1]]},
        # The demo inbox that `floorwatch demo` runs on loopback; a real site puts its own apprise
        # URLs here (wecombot://, dingtalk://, feishu://, mailto://, ntfy://...). Nothing leaves the machine.
        # Every role the catalog pages has a channel, so the demo shows each page a real site would send
        # (facilities, the emergency command and its groups, the fallback for undeliverable critical pushes).
        "contacts": {
            role: [f"json://127.0.0.1:8099/{role.replace('_', '-')}"]
            for role in ("shift_lead", "supervisor", "mr_duty", "safety_officer", "facilities", "facility_manager",
                         "it", "manager", "emergency_command", "on_site_command", "security_evacuation",
                         "information_reporting", "logistics", "department_head", "hr", "reception", "fallback")
        },
        "shifts": [
            {"id": "night", "start": "00:00", "end": "08:00"},
            {"id": "day", "start": "08:00", "end": "16:00"},
            {"id": "evening", "start": "16:00", "end": "00:00"},
        ],
        "roster": ctx.roster,
    }
    edge_files: dict[str, dict[str, Any]] = {}
    shared_broker = {} if len(edges) == 1 else {"report_unknown_devices": False}
    for edge in edges:
        # edge/config.py EdgeConfig: every key below is one of its fields (unknown keys are errors there)
        edge_files[edge] = {
            "site": site_id,
            "edge": edge,
            "uplink": {"host": "127.0.0.1", "port": 1883, "username": edge},
            "floor_broker": {"host": "127.0.0.1", "port": 1883},
            "buffer": {"path": f"var/{edge}-buffer.sqlite", "max_messages": 100_000},
            "batch": {"max_readings": 200, "max_age_ms": 500},
            # All generated floors share one floor broker (127.0.0.1:1883), so each edge would take the
            # other floors' devices for strangers; one floor keeps the unknown-device report on.
            "supervision": {"silent_after_intervals": 3, **shared_broker},
            "interlocks": {
                "plug_overload": {"enabled": True, "ratio": 1.25, "hold_s": 10},
                "smoke_siren": {"enabled": True, "duration_s": 300},
            },
            "devices": ctx.edge_devices[edge],
        }
    hr = {"leavers": ctx.leavers, "visitor_approvals": ctx.approvals}
    return Output(site, edge_files, hr)


# --------------------------------------------------------------------------------------------------
# YAML output: block sections, one flow mapping per list item (diff-friendly, one device per line)
# --------------------------------------------------------------------------------------------------


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, sort_keys=False, width=10_000)
    return text.strip().removesuffix("...").strip()


def dump(doc: dict[str, Any], header: str) -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for key, value in doc.items():
        lines.append("")
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines += [f"  - {_flow(item)}" for item in value]
        elif isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {_flow({k: v})[1:-1]}" for k, v in value.items()]
        else:
            lines.append(_flow({key: value})[1:-1])
    return "\n".join(lines) + "\n"


def write(out: Output, directory: Path, seats: int, seed: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    note = f"Generated by `python -m simulators.floorgen --seats {seats} --seed {seed}`; do not edit by hand."
    files = {directory / "site.yaml": dump(out.site, f"Floorwatch site model (server/domain/site.py).\n{note}")}
    for edge, config in out.edges.items():
        files[directory / f"{edge}.yaml"] = dump(config, f"Edge agent configuration for {edge}.\n{note}")
    files[directory / "hr.yaml"] = dump(
        out.hr, f"HR leaver feed and visitor approvals (not in the site model).\n{note}"
    )
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return sorted(files)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.floorgen", description=__doc__.splitlines()[0])
    parser.add_argument("--seats", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--site", default="hq")
    parser.add_argument(
        "--date",
        type=date.fromisoformat,
        default=date(2026, 11, 30),
        help="reference day for visitor approvals and leave dates",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    out = generate(args.seats, args.seed, args.site, args.date)
    paths = write(out, args.out, args.seats, args.seed)
    devices = len(out.site["devices"])
    print(
        f"{args.seats} seats, {devices} devices, {len(out.site['people'])} people -> "
        + ", ".join(str(p) for p in paths),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
