"""`floorwatch site --check` and the server's start with a bad site file: the problem list at
file:line: field, exit 2, never a traceback. Run as the installed command, as an installer would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from server.site_check import check
from tests.support.contacts import MACHINE_ROOM_FLOOR, every_role_reachable

DEMO = Path(__file__).resolve().parents[2] / "simulators" / "floors" / "demo"

BAD_SITE = """\
site: {id: hq}
floors: [{id: f1}]
zones: [{id: z1, floor: f1}]
devices:
  - {id: strip-1, kind: strip_meter, zone: z1, edge: e1}
  - {id: plug-1, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, strip: strip-9}
  - {id: plug-2, kind: smart_plug, zone: z1, edge: e1, rated_a: 13}
  - {id: plug-3, kind: smart_plug, zone: z1, zone: z2, edge: e1, rated_a: 10}
"""
BAD_SITE_PROBLEMS = [
    "site.yaml:8: devices[3].zone: key appears twice; keep one (YAML would silently use the last)",
    "site.yaml:7: devices[2]: a smart_plug needs rated_a 10 or 16",
    "site.yaml:6: devices[1].strip: unknown device 'strip-9' (did you mean 'strip-1'?): declare it under `devices` "
    "or correct the id",
    "site.yaml:8: devices[3].zone: unknown zone 'z2': declare it under `zones` or correct the id",
]


def floorwatch(*args: str, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def test_site_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(BAD_SITE)
    done = floorwatch("site", "--check", "site.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        *BAD_SITE_PROBLEMS, "4 problem(s); fix them and run `floorwatch site --check` again"]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_site_check_ok_summary_with_the_edge_file() -> None:
    done = floorwatch("site", "--check", str(DEMO / "site.yaml"), "--edge", str(DEMO / "edge-f3.yaml"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(
        "ok: 355 devices (6 door_controller, 1 leak_sensor, 2 manual_call_point, 2 mr_probe, 5 siren, 242 smart_plug, "
        "36 smoke_detector, 52 strip_meter, 9 temp_sensor), 8 zones on 1 floor(s), 261 people, edges edge-f3; "
        "1 edge file(s) agree with it")


EDGE = """\
site: hq2
edge: e2
devices:
  - {id: strip-1, kind: strip_meter, zone: z1, vendor: tasmota, address: strip-1}
  - {id: plug-9, kind: smart_plug, zone: z1, vendor: tasmota, address: plug-9}
"""
GOOD_SITE = """\
site: {id: hq}
floors: [{id: f1}]
zones: [{id: z1, floor: f1}, {id: z2, floor: f1}]
devices:
  - {id: strip-1, kind: strip_meter, zone: z2, edge: e1}
  - {id: plug-1, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, strip: strip-1}
"""


NOT_IN_SITE = ("edge.yaml:5: devices[1].id: 'plug-9' is not in the site file; add it under the site file's devices "
               "(the server ignores unknown devices)")


def test_site_check_compares_edge_files_with_the_site_each_at_its_own_line(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(GOOD_SITE)
    (tmp_path / "edge.yaml").write_text(EDGE)
    done = floorwatch("site", "--check", "site.yaml", "--edge", "edge.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines()[:-1] == [
        "edge.yaml:1: site: 'hq2' is not the site file's id 'hq'; use the same site id in both files",
        "edge.yaml:2: edge: no device of the site file names edge 'e2' (edges there: e1); set `edge: e2` on its "
        "devices in the site file, or fix this id",
        "edge.yaml:2: edge: device 'strip-1': edge 'e2' here but 'e1' in the site file; make them the same",
        "edge.yaml:4: devices[0].zone: device 'strip-1': zone 'z1' here but 'z2' in the site file; make them the same",
        NOT_IN_SITE,
    ]
    # The right edge id: the site's e1 devices missing from the edge file are named at the site's lines.
    fixed = EDGE.replace("hq2", "hq").replace("e2", "e1").replace("strip_meter, zone: z1", "strip_meter, zone: z2")
    (tmp_path / "edge.yaml").write_text(fixed)
    done = floorwatch("site", "--check", "site.yaml", "--edge", "edge.yaml", cwd=tmp_path)
    assert done.stderr.splitlines()[:-1] == [
        NOT_IN_SITE,
        "site.yaml:6: devices[1].edge: 'plug-1' is on edge 'e1' but not in edge.yaml; add it there (nothing would "
        "report it) or change its edge",
    ]


def test_server_start_with_a_bad_site_file_prints_the_list_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(BAD_SITE)
    done = floorwatch("server", cwd=tmp_path, env={"FLOORWATCH_SITE_FILE": "site.yaml",
                                                   "FLOORWATCH_DATA_DIR": str(tmp_path / "data")})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("site.yaml:")]
    assert errors == BAD_SITE_PROBLEMS
    assert "4 problem(s) in the site file (FLOORWATCH_SITE_FILE); nothing started" in done.stderr


def test_a_missing_site_file_is_named_by_check_and_by_the_server(tmp_path: Path) -> None:
    done = floorwatch("site", "--check", "nowhere.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == "nowhere.yaml:1: (document): cannot read: No such file or directory"
    started = floorwatch("server", cwd=tmp_path, env={"FLOORWATCH_SITE_FILE": "nowhere.yaml",
                                                      "FLOORWATCH_DATA_DIR": str(tmp_path / "data")})
    assert started.returncode == 2 and "Traceback" not in started.stderr
    assert "nowhere.yaml:1: (document): cannot read: No such file or directory" in started.stderr.splitlines()


def test_a_strip_rated_beyond_any_power_strip_is_refused_at_its_line(tmp_path: Path) -> None:
    """A typo of 100 for 10 A would make the strip's overload 10 times its real rating: the load rules quiet.
    A 63 A rack PDU (the largest common IEC 60309 rating) is accepted: a deployed site with one keeps starting."""
    rated = "strip_meter, zone: z2, rated_a: {},"
    (tmp_path / "site.yaml").write_text(GOOD_SITE.replace("strip_meter, zone: z2,", rated.format(100)))
    done = floorwatch("site", "--check", "site.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stdout
    assert done.stderr.splitlines() == [
        "site.yaml:5: devices[0].rated_a: 100 A is more than a power strip carries (at most 63 A, a rack PDU; GB 2099 "
        "strips are 10 A or 16 A) and would keep its load rules quiet: give the rating on the strip's label, or "
        "remove the key for 10 A",
        "1 problem(s); fix them and run `floorwatch site --check` again"]
    (tmp_path / "site.yaml").write_text(GOOD_SITE.replace("strip_meter, zone: z2,", rated.format(63)))
    assert floorwatch("site", "--check", "site.yaml", cwd=tmp_path).returncode == 0


def test_site_check_prints_warnings_and_still_exits_0(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(
        'site: {id: hq}\nfloors: [{id: f1}]\nzones: [{id: z1, floor: f1}]\n'
        'shifts: [{id: d, start: "08:00", end: "17:00"}]\npeople: [{id: p1}]\n'
        "roster: [{person: p1, shift: d, zone: z1, seat: s99}]\n"
        "devices:\n  - {id: smoke-1, kind: smoke_detector, zone: z1, edge: e1, heartbeat_s: 7200}\n"
        + every_role_reachable())
    done = floorwatch("site", "--check", "site.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "site.yaml: warning: smoke-1: heartbeat 7200 s > 3600 s: reduced supervision",
        "warning: site.yaml:6: roster[0].seat: no device has seat 's99': its plug rules and operator pages do not "
        "apply; correct it if misspelt, or give the seat's smart plug `seat: s99`",
        "site.yaml: ok: 1 devices (1 smoke_detector), 1 zones on 1 floor(s), 1 people, edges e1",
    ]


def test_site_check_warns_of_a_role_the_rules_page_that_nobody_can_be_reached_as(tmp_path: Path) -> None:
    """机房值班 with no contact: its pages (a leak, smoke in the machine room) would only be recorded as
    undeliverable at the first alarm. A warning, not a refusal: the other pages still go."""
    (tmp_path / "site.yaml").write_text(MACHINE_ROOM_FLOOR + every_role_reachable("mr_duty"))
    done = floorwatch("site", "--check", "site.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [warning, summary] = done.stdout.splitlines()
    assert warning.startswith("warning: site.yaml: contacts: nobody can be reached as 'mr_duty' (no contact for "
                              "the role or for a person with it): pages of "), warning
    assert warning.endswith("would reach nobody; add `mr_duty:` under contacts, or give a person with role mr_duty "
                            "a contact"), warning
    assert "pages of sup.probe_offline, door.held_open, access.mr_unlisted, mr.temp_high," in warning, warning
    assert re.search(r" and \d+ more \(GET /api/health lists them\) would reach nobody", warning), warning
    assert summary.startswith("site.yaml: ok: 2 devices")
    # without a machine room nobody pages 机房值班: no warning
    (tmp_path / "site.yaml").write_text(GOOD_SITE + every_role_reachable("mr_duty"))
    assert floorwatch("site", "--check", "site.yaml", cwd=tmp_path).stdout.splitlines()[0].startswith(
        "site.yaml: ok: 2 devices")


def cuttable_plug_edge_file(rated_a: int) -> str:
    """An edge file of GOOD_SITE's edge e1 whose plug-1 (line 5) the edge may cut."""
    return ("site: hq\nedge: e1\ndevices:\n"
            "  - {id: strip-1, kind: strip_meter, zone: z2, vendor: tasmota, address: strip-1}\n"
            f"  - {{id: plug-1, kind: smart_plug, zone: z1, vendor: shelly, address: plug-1, rated_a: {rated_a}, "
            "cuttable: true,\n     strip: strip-1}\n")


def test_what_the_edge_acts_on_by_itself_must_match_the_site_file(tmp_path: Path) -> None:
    """The edge's overload interlock cuts the plugs its own file calls cuttable, at its own rated_a: a plug
    the site file calls essential must not be cuttable there, nor rated otherwise."""
    site = GOOD_SITE.replace("rated_a: 10, strip: strip-1}", "rated_a: 10, strip: strip-1, essential: true}")
    (tmp_path / "site.yaml").write_text(site)
    (tmp_path / "edge.yaml").write_text(cuttable_plug_edge_file(rated_a=16))
    problems, _ = check(tmp_path / "site.yaml", [tmp_path / "edge.yaml"])
    edge = tmp_path / "edge.yaml"
    suffix = "make them the same (the edge's interlocks act on this file, the server's rules on the site file)"
    assert problems == [
        f"{edge}:5: devices[1].rated_a: device 'plug-1': rated_a 16 here but 10 in the site file; {suffix}",
        f"{edge}:5: devices[1].essential: device 'plug-1': essential false here but true in the site file; {suffix}",
        f"{edge}:5: devices[1].cuttable: device 'plug-1': cuttable true here but false in the site file; {suffix}",
    ]


def test_an_edge_may_not_cut_a_plug_whose_site_class_is_essential(tmp_path: Path) -> None:
    """`class: essential` in the site file wins over `cuttable: true` for the server; the edge file has no
    class, so an edge entry `cuttable: true` agreeing with the site's raw flag would still let the edge's
    overload interlock switch the plug off."""
    site = GOOD_SITE.replace("rated_a: 10, strip: strip-1}", "rated_a: 10, strip: strip-1, class: essential,\n"
                             "     cuttable: true}")
    (tmp_path / "site.yaml").write_text(site)
    (tmp_path / "edge.yaml").write_text(cuttable_plug_edge_file(rated_a=10))
    problems, _ = check(tmp_path / "site.yaml", [tmp_path / "edge.yaml"])
    assert problems == [
        f"{tmp_path / 'edge.yaml'}:5: devices[1].cuttable: device 'plug-1': cuttable true here, but its class is "
        "essential in the site file, which forbids any cut (the edge's overload interlock would switch it off); "
        "set cuttable: false here and in the site file"]
    # Not cuttable on the edge either: the pair agrees.
    (tmp_path / "site.yaml").write_text(site.replace("cuttable: true}", "cuttable: false}"))
    edge = tmp_path / "edge.yaml"
    edge.write_text(edge.read_text().replace("cuttable: true", "cuttable: false"))
    assert check(tmp_path / "site.yaml", [tmp_path / "edge.yaml"])[0] == []
