"""The site model: the example parses, errors name file, line and field, roster queries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.domain.site import DeviceKind, SiteError, parse_site
from tests.domain.harness import DAY, EVENING, EXAMPLE, load_site

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
            "site.yaml:13: devices[0].colour: Extra inputs",
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
    assert "devices[1]: Value error, a smart_plug needs rated_a 10 or 16" in error(MINIMAL + bad_rating)
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
