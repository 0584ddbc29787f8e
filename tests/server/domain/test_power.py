"""The overload cut-off decision (RULES.md §2.1): largest non-essential loads first, never essential."""

from pathlib import Path

from server.domain.power import plan_cut, plan_delayed_cut
from server.domain.site import parse_site

SITE = """
site: {id: hq, name: HQ, timezone: Asia/Shanghai}
floors: [{id: f1, name: 1F}]
zones: [{id: z1, name: Z1, floor: f1, kind: office, polygon: [[0, 0], [1, 0], [1, 1]]}]
devices:
  - {id: strip-1, kind: strip_meter, zone: z1, edge: e, rated_a: 10}
  - {id: pc, kind: smart_plug, zone: z1, edge: e, rated_a: 10, strip: strip-1, essential: true}
  - {id: heater, kind: smart_plug, zone: z1, edge: e, rated_a: 10, strip: strip-1, cuttable: true}
  - {id: kettle, kind: smart_plug, zone: z1, edge: e, rated_a: 10, strip: strip-1, cuttable: true}
  - {id: fan, kind: smart_plug, zone: z1, edge: e, rated_a: 10, strip: strip-1, cuttable: true}
  - {id: printer, kind: smart_plug, zone: z1, edge: e, rated_a: 10, strip: strip-1}
"""
site = parse_site(SITE, str(Path("site.yaml")))


def test_a_critical_strip_overload_cuts_the_largest_cuttable_loads_until_below_80_percent() -> None:
    loads = {"pc": 1.5, "heater": 9.0, "kettle": 6.0, "fan": 0.4, "printer": 0.5}
    plan = plan_cut("elec.strip_overload", "strip-1", 16.9, site, loads)
    assert plan is not None and plan.devices == ("heater",)  # 16.9 − 9.0 = 7.9 A < 8 A
    plan = plan_cut("elec.strip_overload", "strip-1", 17.5, site, loads)
    assert plan is not None and plan.devices == ("heater", "kettle")


def test_essential_and_unmarked_plugs_are_never_cut_and_the_shortfall_is_reported() -> None:
    loads = {"pc": 12.0, "printer": 3.0, "fan": 0.5}
    plan = plan_cut("elec.strip_overload", "strip-1", 15.5, site, loads)
    assert plan is not None and plan.devices == ("fan",) and plan.short_by_a == 15.5 - 0.5 - 8.0
    assert plan_cut("elec.strip_overload", "strip-1", 13.0, site, {"pc": 13.0}) is None


def test_a_plug_over_its_rating_cuts_itself_only_when_cuttable() -> None:
    assert plan_cut("elec.plug_overcurrent", "heater", 10.5, site, {}).devices == ("heater",)  # type: ignore[union-attr]
    assert plan_cut("elec.plug_overcurrent", "pc", 10.5, site, {}) is None
    assert plan_cut("elec.strip_load_high", "strip-1", 9.0, site, {"heater": 9.0}) is None


CLASS_ESSENTIAL = SITE + """  - {id: pc-class, kind: smart_plug, zone: z1, edge: e, rated_a: 10, strip: strip-1,
     class: essential, cuttable: true, seat: s1}
"""


def test_a_plug_of_class_essential_is_never_cut_even_when_marked_cuttable() -> None:
    """RULES.md §2.1: auto-cut only non-essential end loads. `class: essential` says what is plugged in
    (the seat's PC), so a `cuttable: true` beside it must not let a rule switch it off."""
    s = parse_site(CLASS_ESSENTIAL, str(Path("site.yaml")))
    plan = plan_cut("elec.strip_overload", "strip-1", 16.0, s, {"pc-class": 12.0, "heater": 4.0})
    assert plan is not None and plan.devices == ("heater",)
    assert plan_cut("elec.plug_overcurrent", "pc-class", 10.5, s, {}) is None
    assert plan_delayed_cut("elec.high_power_appliance", "pc-class", s, 9.0) is None  # strip at 90 %
