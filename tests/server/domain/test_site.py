"""The site model: the example parses, errors name file, line and field, roster queries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.domain.site import DeviceKind, SiteError, parse_site
from tests.server.domain.harness import DAY, EVENING, EXAMPLE, load_site

MINIMAL = """\
site:
  id: hq
floors:
  - id: f1
zones:
  - id: z1
    floor: f1
devices:
  - id: strip-1
    kind: strip_meter
    zone: z1
    edge: e1
"""


def error(text: str) -> str:
    with pytest.raises(SiteError) as caught:
        parse_site(text, "site.yaml")
    return str(caught.value)


def test_example_parses_with_indexes() -> None:
    site = load_site()
    assert site.id == "hq"
    assert {d.id for d in site.plugs_of_strip("strip-a1")} == {"plug-s001", "plug-s002", "plug-prn1"}
    assert site.devices["strip-b1"].rating_a == 10.0  # strips default to 10 A (RULES.md §0.4)
    assert {d.id for d in site.egress_doors("ops-a")} == {"door-main"}
    assert {d.id for d in site.egress_doors_on_floor("f1")} == {"door-main", "door-exit-b"}
    assert DeviceKind.MR_PROBE in {d.kind for d in site.devices_in_zone("mr")}
    assert [p.id for p in site.people_with_role("emergency_command")] == ["p-chen", "p-zhou"]
    assert site.contacts_of("p-li") == ["wecom://lead-li"]


def test_roster_queries() -> None:
    site = load_site()
    assert (entry := site.on_duty_at_seat("s-001", DAY)) is not None and entry.person == "p-wang"
    assert site.on_duty_at_seat("s-001", EVENING) is None
    night = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # 07:00 local next day: night shift still on
    assert (entry := site.on_duty_at_seat("s-002", night)) is not None and entry.person == "p-zhao"
    lead = site.shift_lead("ops-a", DAY)
    assert lead is not None and lead.id == "p-li"
    assert site.shift_lead("ops-a", EVENING) is None
    saturday = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
    assert site.shift_lead("ops-b", saturday) is None  # p-chen leads ops-b on weekdays only
    assert site.seat_shift_ended_within(
        "s-001",
        datetime(2026, 11, 30, 12, 10, tzinfo=UTC),
        EVENING - datetime(2026, 11, 30, 12, 30, tzinfo=UTC),
    )


def test_overrides_zone_then_device() -> None:
    site = load_site()
    assert site.overrides(site.devices["mr-probe1"]) == {"mr.temp_low": {"low_c": 17}}
    assert site.overrides(site.devices["strip-b1"]) == {"elec.strip_load_high": {"hold_s": 120}}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    zone: z1\n    edge: e1",
            "    zone: z9\n    edge: e1",
            "site.yaml:11: devices[0].zone: unknown zone 'z9'",
        ),
        (
            "    edge: e1\n",
            "    edge: e1\n    colour: red\n",
            "site.yaml:13: devices[0].colour: unknown key (typo?)",
        ),
        ("    kind: strip_meter", "    kind: toaster", "site.yaml:10: devices[0].kind: Input should be"),
        ("    floor: f1\n", "    floor: f2\n", "site.yaml:7: zones[0].floor: unknown floor 'f2'"),
    ],
)
def test_errors_name_file_line_and_field(old: str, new: str, expected: str) -> None:
    assert old in MINIMAL
    assert expected in error(MINIMAL.replace(old, new))


def test_cross_checks() -> None:
    plug = "  - {id: plug-1, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, strip: strip-9}\n"
    assert "site.yaml:13: devices[1].strip: unknown device 'strip-9'" in error(MINIMAL + plug)
    dup = "  - {id: strip-1, kind: strip_meter, zone: z1, edge: e1}\n"
    assert "site.yaml:13: devices[1].id: duplicate id 'strip-1'" in error(MINIMAL + dup)
    bad_rating = "  - {id: plug-1, kind: smart_plug, zone: z1, edge: e1, rated_a: 13}\n"
    assert "devices[1]: a smart_plug needs rated_a 10 or 16" in error(MINIMAL + bad_rating)
    override = "thresholds:\n  devices:\n    strip-1:\n      elec.strip_load_high: {hold_minutes: 3}\n"
    message = error(MINIMAL + override)
    assert (
        "site.yaml:16: thresholds.devices.strip-1.elec.strip_load_high.hold_minutes: unknown parameter"
        in message
    )
    unknown_rule = "thresholds:\n  zones:\n    z1:\n      elec.toaster: {x: 1}\n"
    assert "thresholds.zones.z1.elec.toaster: unknown rule" in error(MINIMAL + unknown_rule)
    roster = "roster:\n  - {person: p-x, shift: day, zone: z1}\n"
    message = error(MINIMAL + roster)
    assert (
        "roster[0].person: unknown person 'p-x'" in message
        and "roster[0].shift: unknown shift 'day'" in message
    )


def test_yaml_syntax_error_has_a_line() -> None:
    assert error("site:\n  id: hq\n  name: [unclosed\n").startswith("site.yaml:")
    assert "a site file is a mapping" in error("- just a list\n")


def test_reduced_supervision_warning() -> None:
    text = MINIMAL + "  - {id: smoke-1, kind: smoke_detector, zone: z1, edge: e1, heartbeat_s: 7200}\n"
    assert parse_site(text, "x.yaml").warnings == ["smoke-1: heartbeat 7200 s > 3600 s: reduced supervision"]


def test_example_file_is_documented_shape() -> None:
    assert "site:" in EXAMPLE.read_text(encoding="utf-8")


ROUTES = """\
site: {id: hq}
floors: [{id: f1}, {id: f2}]
zones:
  - {id: seats-a, floor: f1, adjacent: [seats-b]}
  - {id: seats-b, floor: f1}
  - {id: lobby, floor: f1, adjacent: [seats-b]}
  - {id: east, floor: f1, adjacent: [seats-a]}
  - {id: quiet, floor: f1}
  - {id: upstairs, floor: f2, adjacent: [seats-a]}
devices:
  - {id: door-lobby, kind: door_controller, zone: lobby, edge: e1, door_type: egress}
  - {id: door-east, kind: door_controller, zone: east, edge: e1, door_type: egress}
  - {id: door-up, kind: door_controller, zone: upstairs, edge: e1, door_type: egress}
  - {id: door-mr, kind: door_controller, zone: quiet, edge: e1, door_type: machine_room}
"""


def test_a_zone_without_a_door_leaves_by_the_nearest_exits_through_its_neighbours() -> None:
    site = parse_site(ROUTES, "site.yaml")
    # seats-a: east is one boundary away (listed by east, not by seats-a: neighbours go both ways);
    # the lobby is two away; upstairs is another floor
    assert [d.id for d in site.egress_doors("seats-a")] == ["door-east"]
    assert [d.id for d in site.egress_doors("seats-b")] == ["door-lobby"]
    assert [d.id for d in site.egress_doors("lobby")] == ["door-lobby"]
    assert site.egress_doors("quiet") == [], "no neighbour, no exit named: nothing to release"
    assert {d.id for d in site.egress_doors_on_floor("f1")} == {"door-lobby", "door-east"}, "own doors only"

    named = parse_site(ROUTES.replace("- {id: quiet, floor: f1}", "- {id: quiet, floor: f1, exits: [door-lobby]}")
                       .replace("{id: seats-b, floor: f1}", "{id: seats-b, floor: f1, exits: [door-east]}"),
                       "site.yaml")
    assert [d.id for d in named.egress_doors("quiet")] == ["door-lobby"]
    assert [d.id for d in named.egress_doors("seats-b")] == ["door-east"], "named exits replace the search"


def test_the_demo_floors_seat_zones_release_their_ways_out() -> None:
    demo = Path(__file__).resolve().parents[3] / "simulators/floors/demo/site.yaml"
    site = parse_site(demo.read_text(encoding="utf-8"), str(demo))
    assert {d.id for d in site.egress_doors("f3-z2")} == {"door-f3-main", "door-f3-exit-e"}
    assert [d.id for d in site.egress_doors("f3-z4")] == ["door-f3-exit-e"]


@pytest.mark.parametrize(("exits", "expected"), [
    ("[door-mr]", "site.yaml:8: zones[4].exits[0]: 'door-mr' is not an egress door controller"),
    ("[door-nowhere]", "site.yaml:8: zones[4].exits[0]: 'door-nowhere' is not an egress door controller"),
    ("[door-up]", "site.yaml:8: zones[4].exits[0]: exit 'door-up' is on another floor"),
])
def test_exits_must_be_egress_doors_of_the_same_floor(exits: str, expected: str) -> None:
    assert expected in error(ROUTES.replace("- {id: quiet, floor: f1}", f"- {{id: quiet, floor: f1, exits: {exits}}}"))


SHIFT = MINIMAL + "shifts:\n  - id: day\n    start: {start}\n    end: {end}\n"


def test_quoted_shift_times_are_read_as_times() -> None:
    site = parse_site(SHIFT.format(start="'8:30'", end="'16:00'"), "site.yaml")
    shift = site.config.shifts[0]
    assert (shift.start.hour, shift.start.minute, shift.end.hour, shift.end.minute) == (8, 30, 16, 0)


@pytest.mark.parametrize(("start", "end", "line", "field", "number"), [
    ("'08:00'", "16:00", 16, "end", "960"),  # base-60 to YAML 1.1: once read as 00:16, silently
    ("8:30", "'16:00'", 15, "start", "510"),
    ("7", "'16:00'", 15, "start", "7"),
])
def test_an_unquoted_shift_time_is_refused_with_its_line(start: str, end: str, line: int, field: str,
                                                          number: str) -> None:
    message = error(SHIFT.format(start=start, end=end))
    assert message.startswith(f"site.yaml:{line}: shifts[0].{field}: ")
    assert f"{number} is a number, not a time" in message and "write the time in quotes, e.g. '16:00'" in message


@pytest.mark.parametrize(("section", "key", "rule", "name"), [
    ("zones", "z1", "sup.gateway_offline", "fraction"),
    ("devices", "strip-1", "sup.gateway_offline", "window_s"),
    ("zones", "z1", "sup.notify_channel", "failures"),
    ("zones", "z1", "elec.voltage_out_of_range", "hold_s"),
    ("zones", "z1", "elec.voltage_out_of_range", "clear_hold_s"),
    ("devices", "strip-1", "elec.voltage_out_of_range", "major_after_s"),
    ("zones", "z1", "elec.voltage_out_of_range", "major_fraction"),
    ("devices", "strip-1", "sup.smoke_offline_lpwan", "max_heartbeat_s"),
    ("zones", "z1", "access.visitor_overstay", "grace_s"),
])
def test_an_override_the_rules_would_ignore_is_refused_as_site_wide_only(section: str, key: str, rule: str,
                                                                         name: str) -> None:
    text = MINIMAL + f"thresholds:\n  {section}:\n    {key}:\n      {rule}:\n        {name}: 7\n"
    message = error(text)
    assert message.startswith(f"site.yaml:17: thresholds.{section}.{key}.{rule}.{name}: site-wide only: ")
    assert f"cannot be set per {section[:-1]}; remove it (the catalog default" in message


def test_a_per_plug_voltage_band_is_still_accepted() -> None:
    text = MINIMAL + "thresholds:\n  zones:\n    z1:\n      elec.voltage_out_of_range: {low_v: 200, high_v: 240}\n"
    site = parse_site(text, "site.yaml")
    assert site.overrides(site.devices["strip-1"]) == {"elec.voltage_out_of_range": {"low_v": 200, "high_v": 240}}


PLUG = "  - {id: plug-1, kind: smart_plug, zone: z1, edge: e1, rated_a: 10, seat: s-1}\n"
PEOPLE = MINIMAL.replace("    edge: e1\n", "    edge: e1\n" + PLUG) + """\
people:
  - {id: p-li, roles: [shift_lead]}
shifts:
  - {id: day, start: '08:00', end: '16:00'}
"""


@pytest.mark.parametrize(("extra", "expected"), [
    ("contacts:\n  p-lee: ['mailto://lead@example.com']\n",
     "site.yaml:19: contacts.p-lee: unknown person or role 'p-lee': a contacts key is a person id of `people`, "
     "a role name ("),
    ("contacts:\n  supervisr: ['mailto://sup@example.com']\n",
     "site.yaml:19: contacts.supervisr: unknown person or role"),
    ("roles:\n  shiftlead: [p-li]\n", "site.yaml:19: roles.shiftlead: unknown role 'shiftlead' (known: "),
])
def test_names_are_checked_against_the_rest_of_the_file(extra: str, expected: str) -> None:
    assert expected in error(PEOPLE + extra)


def test_an_unknown_role_of_a_person_names_the_person_and_the_role() -> None:
    message = error(PEOPLE.replace("roles: [shift_lead]", "roles: [shift_lead, receptionist]"))
    assert message.startswith("site.yaml:15: people[0].roles[1]: unknown role 'receptionist' (known: ")
    assert "reception," in message


def test_a_roster_seat_no_device_has_is_a_warning_with_its_line() -> None:
    """A seat without a plug still gets its self-check, so it loads; a misspelt one is named at start."""
    site = parse_site(PEOPLE + "roster:\n  - {person: p-li, shift: day, zone: z1, seat: s-9}\n", "site.yaml")
    assert site.warnings == [
        "site.yaml:19: roster[0].seat: no device has seat 's-9': its plug rules and operator pages do not apply; "
        "correct it if misspelt, or give the seat's smart plug `seat: s-9`"]


def test_known_names_pass() -> None:
    site = parse_site(PEOPLE + """\
roles:
  emergency_command: [p-li]
contacts:
  p-li: ['mailto://lead@example.com']
  supervisor: ['mailto://sup@example.com']
  zone:z1: ['mailto://z1@example.com']
  fallback: ['mailto://fallback@example.com']
roster:
  - {person: p-li, shift: day, zone: z1, seat: s-1}
""", "site.yaml")
    assert site.contacts_of("fallback") == ["mailto://fallback@example.com"]
    assert site.warnings == []


def test_every_role_name_the_code_uses_is_a_known_role() -> None:
    """The list the parser checks against must not fall behind the code that reads roles."""
    from server.domain import inspections, notify, policy
    from server.domain.site import ROLE_NAMES
    used = {r.value for r in policy.Role} - {"admin"}
    used |= set(notify.GROUPS) | set(notify.GROUP_FALLBACK_ROLE.values()) | set(notify.ROSTERED_ROLES)
    used |= {notify.LEAD, "reception"}
    for schedule in inspections.SCHEDULES:
        used |= {schedule.role, *schedule.completer_roles}
    for rule in (*inspections.OVERDUE_RULES, inspections.TRAIN_FIRE, inspections.TRAIN_NEW):
        used |= set(rule.notify)
    used |= {role for steps in inspections.ESCALATION.values() for _, role in steps if role}
    assert used <= ROLE_NAMES, sorted(used - ROLE_NAMES)


@pytest.mark.parametrize(("contacts", "expected"), [
    ("p-li: [42]", ["site.yaml:19: contacts.p-li[0]: a contacts entry is an apprise URL ('mailto://…', "
                    "'wecom://…') or a mapping {url, zones, min_severity}"]),
    ("p-li: [[a, b]]", ["site.yaml:19: contacts.p-li[0]: a contacts entry is an apprise URL"]),
    ("p-li: [{url: 'mailto://x', min_severity: high}]",
     ["site.yaml:19: contacts.p-li[0].min_severity: Input should be 'warning', 'minor', 'major' or 'critical'"]),
    ("p-li: [{uri: 'mailto://x'}]",
     ["site.yaml:19: contacts.p-li[0].url: missing: this key is required",
      "site.yaml:19: contacts.p-li[0].uri: unknown key (typo?)"]),
    ("p-li: mailto://x", ["site.yaml:19: contacts.p-li: a contacts key takes a list of channels: write them in [ ]"]),
])
def test_a_bad_contacts_entry_says_what_an_entry_may_be(contacts: str, expected: list[str]) -> None:
    lines = error(PEOPLE + "contacts:\n  " + contacts + "\n").splitlines()
    assert len(lines) == len(expected)
    assert all(line.startswith(want) for line, want in zip(lines, expected, strict=True)), lines
    assert not any(".str" in line or ".Contact" in line for line in lines)


def test_two_badges_that_differ_only_in_case_are_one_card() -> None:
    people = PEOPLE.replace("  - {id: p-li, roles: [shift_lead]}\n",
                            "  - {id: p-li, badge: '04A1B2C3', roles: [shift_lead]}\n"
                            "  - {id: p-wu, badge: 04a1b2c3}\n")
    assert error(people).startswith("site.yaml:16: people[1].badge: badge already used by another person")


def test_an_unknown_reference_names_what_it_resembles_and_where_to_declare_it() -> None:
    assert "site.yaml:11: devices[0].zone: unknown zone 'z1x' (did you mean 'z1'?): declare it under `zones` or " \
           "correct the id" in error(MINIMAL.replace("    zone: z1\n", "    zone: z1x\n"))
    dup = MINIMAL + "  - {id: strip-1, kind: strip_meter, zone: z1, edge: e1}\n"
    assert "site.yaml:13: devices[1].id: duplicate id 'strip-1': ids are unique within `devices`; rename one" \
           in error(dup)


def test_an_edge_file_given_as_the_site_file_is_one_line() -> None:
    edge_file = "site: hq\nedge: edge-f3\nuplink: {host: mqtt}\ndevices:\n  - {id: p, kind: smart_plug}\n"
    with pytest.raises(SiteError) as caught:
        parse_site(edge_file, "edge-f3.yaml")
    assert caught.value.problems == [
        "edge-f3.yaml:1: (document): this is an edge agent's file (edge:, uplink:, devices: with vendors), not a site "
        "file: give the site file, the one with site:, floors:, zones:"]
